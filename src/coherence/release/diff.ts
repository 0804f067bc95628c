// Diffs of a page against its twin, in 32-bit words: what a writer changed since its last
// release, and nothing else. Two nodes that write different words of one page (false
// sharing) both send diffs, and the page's home puts each into the master copy: a diff
// that also carried unchanged words would put back, in those words, what the other
// writer changed. So a word goes only if it differs from the twin.
//
// Encoding, little-endian: runs of changed words, each
//   u32 first word | u32 word count | the words
// A page whose every word changed goes whole instead (as page data, which the transport
// zero-marks and compresses).
import { NaplusError } from '../../errors.js';

/** Every word of the page changed: send the page itself. */
export const WHOLE = 'whole';

/** 32-bit words over `bytes` (copied first if they are not 4-byte aligned). */
function words(bytes: Uint8Array): Int32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : Uint8Array.from(bytes);
  return new Int32Array(aligned.buffer, aligned.byteOffset, aligned.length >>> 2);
}

/** The diff of `page` against `twin` (same length, a multiple of 4): undefined when nothing changed. */
export function makeDiff(twin: Uint8Array, page: Uint8Array): Uint8Array | typeof WHOLE | undefined {
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
  const out = new Uint8Array(runs * 8 + changed * 4);
  const view = new DataView(out.buffer);
  let at = 0;
  for (let i = 0; i < n; ) {
    if (a[i] === b[i]) {
      i++;
      continue;
    }
    const from = i;
    while (i < n && a[i] !== b[i]) i++;
    view.setUint32(at, from, true);
    view.setUint32(at + 4, i - from, true);
    out.set(page.subarray(from * 4, i * 4), at + 8);
    at += 8 + (i - from) * 4;
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
  for (let at = 0; at < diff.length; ) {
    const from = at + 8 <= diff.length ? view.getUint32(at, true) : NaN;
    const count = at + 8 <= diff.length ? view.getUint32(at + 4, true) : NaN;
    if (!(count > 0) || from + count > pageWords || at + 8 + count * 4 > diff.length) {
      throw new NaplusError('EPROTO', `sent a diff whose run at byte ${at} does not fit a page of ${pageWords} words`);
    }
    at += 8 + count * 4;
  }
  for (let at = 0; at < diff.length; ) {
    const from = view.getUint32(at, true);
    const count = view.getUint32(at + 4, true);
    page.set(diff.subarray(at + 8, at + 8 + count * 4), from * 4);
    at += 8 + count * 4;
  }
}
