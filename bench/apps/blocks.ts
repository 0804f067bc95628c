// Where one run's arrays sit in the region. The region has no malloc/named blocks yet,
// so a run gets page-aligned blocks laid end to end from a base offset that the
// benchmark hands out (a fresh range per run, so no run finds another's pages cached).
// This is the one place to change to region.malloc(…, { name }) when that lands.
import type { Region } from '../../src/index.js';

const align = (bytes: number, pageSize: number) => Math.ceil(bytes / pageSize) * pageSize;

/** Bytes of region a run with blocks of these sizes takes. */
export function blocksSpan(bytes: number[], pageSize: number): number {
  return bytes.reduce((sum, b) => sum + align(b, pageSize), 0);
}

/** The run's blocks, as float64 views over the shared memory (no copy). */
export function openBlocks(region: Region, base: number, bytes: number[]): Float64Array[] {
  let at = base;
  return bytes.map((b) => {
    const view = new Float64Array(region.view(at, b));
    at += align(b, region.pageSize);
    return view;
  });
}

/**
 * Slot `index` of a block cut into page-sized slots: one page per writer, because a
 * page written from several nodes moves between them on every write.
 */
export function slot(block: Float64Array, index: number, pageSize: number): Float64Array {
  const per = pageSize / 8;
  return block.subarray(index * per, (index + 1) * per);
}
