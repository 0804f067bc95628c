// Diffs of a page against its twin, in 32-bit words: what a writer changed since its last
// release, and nothing else. Two nodes that write different words of one page (false
// sharing) both send diffs, and the page's home puts each into the master copy: a diff
// that also carried unchanged words would put back, in those words, what the other
// writer changed. So a word goes only if it differs from the twin.
//
// Encoding, little-endian u32s, whichever of two is shorter:
//   0 | runs, each first word | word count | the words                   (few, long runs)
//   1 | a bitmap of the page's words (bit set: changed) | the changed words, in order
//                                         (scattered words: a float64 array whose values
//                                          changed only in their low halves)
// A page whose every word changed goes whole instead (as page data, which the transport
// zero-marks and compresses). A release diffs every page its node wrote, so this runs on
// typed arrays over whole words.
import { NaplusError } from '../../errors.js';

/** Every word of the page changed: send the page itself. */
export const WHOLE = 'whole';

const RUNS = 0;
const BITMAP = 1;

const bytes = (u8: Uint8Array): Buffer => Buffer.from(u8.buffer, u8.byteOffset, u8.length);

/** 32-bit words over `u8` (copied first if they are not 4-byte aligned). */
function words(u8: Uint8Array): Uint32Array {
  const aligned = u8.byteOffset % 4 === 0 ? u8 : Uint8Array.from(u8);
  return new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.length >>> 2);
}

/** The diff of `page` against `twin` (same length, a multiple of 4): undefined when nothing changed. */
export function makeDiff(twin: Uint8Array, page: Uint8Array): Uint8Array | typeof WHOLE | undefined {
  // Most pages a release looks at are unchanged: a native compare says so fastest.
  if (bytes(twin).equals(bytes(page))) return undefined;
  const a = words(twin);
  const b = words(page);
  const n = a.length;
  let runs = 0;
  let changed = 0;
  let inRun = false;
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) {
      changed++;
      if (!inRun) runs++;
      inRun = true;
    } else {
      inRun = false;
    }
  }
  if (changed === n) return WHOLE;
  const bitmapWords = Math.ceil(n / 32);
  return runs * 2 <= bitmapWords ? encodeRuns(a, b, runs, changed) : encodeBitmap(a, b, bitmapWords, changed);
}

function encodeRuns(a: Uint32Array, b: Uint32Array, runs: number, changed: number): Uint8Array {
  const out = new Uint32Array(1 + runs * 2 + changed);
  out[0] = RUNS;
  let at = 1;
  for (let i = 0; i < a.length; ) {
    if (a[i] === b[i]) {
      i++;
      continue;
    }
    const from = i;
    while (i < a.length && a[i] !== b[i]) i++;
    out[at] = from;
    out[at + 1] = i - from;
    out.set(b.subarray(from, i), at + 2);
    at += 2 + i - from;
  }
  return new Uint8Array(out.buffer);
}

function encodeBitmap(a: Uint32Array, b: Uint32Array, bitmapWords: number, changed: number): Uint8Array {
  const out = new Uint32Array(1 + bitmapWords + changed);
  out[0] = BITMAP;
  let at = 1 + bitmapWords;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    out[1 + (i >>> 5)]! |= 1 << (i & 31);
    out[at++] = b[i]!;
  }
  return new Uint8Array(out.buffer);
}

/**
 * Puts the words of `diff` into `page` (in place).
 * Throws EPROTO, changing nothing, if the diff is malformed or reaches past the page: it
 * came from another node.
 */
export function applyDiff(page: Uint8Array, diff: Uint8Array): void {
  if (page.byteOffset % 4 !== 0) {
    const copy = Uint8Array.from(page);
    applyDiff(copy, diff);
    return page.set(copy);
  }
  if (diff.length < 4 || diff.length % 4 !== 0) throw malformed(`of ${diff.length} bytes, not whole words`);
  const d = words(diff);
  const into = words(page);
  if (d[0] === BITMAP) return applyBitmap(into, d);
  if (d[0] !== RUNS) throw malformed(`of format ${d[0]}`);
  for (let at = 1; at < d.length; ) {
    const [from, count] = [d[at]!, d[at + 1]];
    if (count === undefined || !(count > 0) || from + count > into.length || at + 2 + count > d.length) throw malformed(`whose run at word ${at} does not fit a page of ${into.length} words`);
    at += 2 + count;
  }
  for (let at = 1; at < d.length; ) {
    const [from, count] = [d[at]!, d[at + 1]!];
    into.set(d.subarray(at + 2, at + 2 + count), from);
    at += 2 + count;
  }
}

function applyBitmap(into: Uint32Array, d: Uint32Array): void {
  const bitmapWords = Math.ceil(into.length / 32);
  let changed = 0;
  for (let w = 1; w <= bitmapWords && w < d.length; w++) changed += popcount(d[w]!);
  if (d.length !== 1 + bitmapWords + changed || (into.length % 32 !== 0 && d[bitmapWords]! >>> (into.length % 32) !== 0)) {
    throw malformed(`of ${d.length} words where its bitmap calls for ${1 + bitmapWords + changed}`);
  }
  let at = 1 + bitmapWords;
  for (let w = 0; w < bitmapWords; w++) {
    let bits = d[1 + w]!;
    while (bits !== 0) {
      const bit = 31 - Math.clz32(bits & -bits);
      into[w * 32 + bit] = d[at++]!;
      bits &= bits - 1;
    }
  }
}

function popcount(x: number): number {
  let n = 0;
  for (let v = x >>> 0; v !== 0; v &= v - 1) n++;
  return n;
}

function malformed(what: string): NaplusError {
  return new NaplusError('EPROTO', `sent a diff ${what}`);
}
