// Diffs of a page against its twin, in 32-bit words: what a writer changed since its last
// release, and nothing else. Two nodes that write different words of one page (false
// sharing) both send diffs, and the page's home puts each into the master copy: a diff
// that also carried unchanged words would put back, in those words, what the other
// writer changed. So a word goes only if it differs from the twin.
//
// Encoding, little-endian, whichever of two is shorter:
//   u8 0 | runs, each u32 first word | u32 word count | the words     (few, long runs)
//   u8 1 | a bitmap of the page's words (bit set: changed) | the changed words, in order
//                                                                    (scattered words: a
//                                                                     float64 array whose
//                                                                     values changed only
//                                                                     in their high halves)
// A page whose every word changed goes whole instead (as page data, which the transport
// zero-marks and compresses).
import { NaplusError } from '../../errors.js';

/** Every word of the page changed: send the page itself. */
export const WHOLE = 'whole';

const RUNS = 0;
const BITMAP = 1;

const bytes = (u8: Uint8Array): Buffer => Buffer.from(u8.buffer, u8.byteOffset, u8.length);

/** 32-bit words over `bytes` (copied first if they are not 4-byte aligned). */
function words(bytes: Uint8Array): Int32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : Uint8Array.from(bytes);
  return new Int32Array(aligned.buffer, aligned.byteOffset, aligned.length >>> 2);
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
  for (let i = 0; i < n; ) {
    if (a[i] === b[i]) {
      i++;
      continue;
    }
    const from = i;
    while (i < n && a[i] !== b[i]) i++;
    runs++;
    changed += i - from;
  }
  if (changed === 0) return undefined;
  if (changed === n) return WHOLE;
  const bitmap = Math.ceil(n / 8);
  return runs * 8 <= bitmap ? encodeRuns(a, b, page, runs, changed) : encodeBitmap(a, b, bitmap, changed);
}

function encodeRuns(a: Int32Array, b: Int32Array, page: Uint8Array, runs: number, changed: number): Uint8Array {
  const out = new Uint8Array(1 + runs * 8 + changed * 4);
  const view = new DataView(out.buffer);
  out[0] = RUNS;
  let at = 1;
  for (let i = 0; i < a.length; ) {
    if (a[i] === b[i]) {
      i++;
      continue;
    }
    const from = i;
    while (i < a.length && a[i] !== b[i]) i++;
    view.setUint32(at, from, true);
    view.setUint32(at + 4, i - from, true);
    out.set(page.subarray(from * 4, i * 4), at + 8);
    at += 8 + (i - from) * 4;
  }
  return out;
}

function encodeBitmap(a: Int32Array, b: Int32Array, bitmap: number, changed: number): Uint8Array {
  const out = new Uint8Array(1 + bitmap + changed * 4);
  const view = new DataView(out.buffer);
  out[0] = BITMAP;
  let at = 1 + bitmap;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    out[1 + (i >>> 3)]! |= 1 << (i & 7);
    view.setInt32(at, b[i]!, true);
    at += 4;
  }
  return out;
}

/**
 * Puts the words of `diff` into `page` (in place). Throws EPROTO, changing nothing, if
 * the diff is malformed or reaches past the page: it came from another node.
 */
export function applyDiff(page: Uint8Array, diff: Uint8Array): void {
  const view = new DataView(diff.buffer, diff.byteOffset, diff.length);
  const pageWords = page.length >>> 2;
  if (diff[0] === BITMAP) return applyBitmap(page, diff, view, pageWords);
  if (diff[0] !== RUNS) throw malformed(`of format ${diff[0]}`);
  for (let at = 1; at < diff.length; ) {
    const from = at + 8 <= diff.length ? view.getUint32(at, true) : NaN;
    const count = at + 8 <= diff.length ? view.getUint32(at + 4, true) : NaN;
    if (!(count > 0) || from + count > pageWords || at + 8 + count * 4 > diff.length) throw malformed(`whose run at byte ${at} does not fit a page of ${pageWords} words`);
    at += 8 + count * 4;
  }
  for (let at = 1; at < diff.length; ) {
    const from = view.getUint32(at, true);
    const count = view.getUint32(at + 4, true);
    page.set(diff.subarray(at + 8, at + 8 + count * 4), from * 4);
    at += 8 + count * 4;
  }
}

function applyBitmap(page: Uint8Array, diff: Uint8Array, view: DataView, pageWords: number): void {
  const bitmap = Math.ceil(pageWords / 8);
  let changed = 0;
  for (let i = 0; i < pageWords; i++) if (diff[1 + (i >>> 3)]! & (1 << (i & 7))) changed++;
  if (diff.length !== 1 + bitmap + changed * 4) throw malformed(`of ${diff.length} bytes where its bitmap calls for ${1 + bitmap + changed * 4}`);
  const into = new DataView(page.buffer, page.byteOffset, page.length);
  let at = 1 + bitmap;
  for (let i = 0; i < pageWords; i++) {
    if (!(diff[1 + (i >>> 3)]! & (1 << (i & 7)))) continue;
    into.setInt32(i * 4, view.getInt32(at, true), true);
    at += 4;
  }
}

function malformed(what: string): NaplusError {
  return new NaplusError('EPROTO', `sent a diff ${what}`);
}
