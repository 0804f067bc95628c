// Where one run's arrays sit in the region: named blocks of the region's heap. Rank 0
// allocates them before the start, every worker finds them by name. They are never
// freed: a run never gets memory another run used, so no run finds another's pages
// cached (the benchmark sizes the region for all its runs and removes it afterwards).
import type { Region } from '../../src/index.js';
import { metadataBytes } from '../../src/api/heap-table.js';

const align = (bytes: number, pageSize: number) => Math.ceil(bytes / pageSize) * pageSize;

/** Heap bytes a run with blocks of these sizes takes (blocks of a page or more are whole pages). */
export function blocksSpan(bytes: number[], pageSize: number): number {
  return bytes.reduce((sum, b) => sum + align(b, pageSize), 0);
}

/** The smallest region whose heap holds `heapBytes` after its metadata. */
export function regionBytesFor(heapBytes: number, pageSize: number): number {
  let size = align(heapBytes, pageSize);
  while (size - metadataBytes(size, pageSize) < heapBytes) size += pageSize;
  return size;
}

/** The run's blocks as float64 views (no copy); `meet` is a barrier of all the run's workers. */
export async function runBlocks(region: Region, run: number, rank: number, bytes: number[], meet: () => Promise<void>): Promise<Float64Array[]> {
  const names = bytes.map((_, i) => `apps.${run}.${i}`);
  if (rank === 0) for (const [i, b] of bytes.entries()) await region.malloc(b, { name: names[i]! });
  await meet();
  return Promise.all(names.map(async (name) => new Float64Array((await region.lookup(name)).buffer)));
}

/**
 * Slot `index` of a block cut into page-sized slots: one page per writer, because a
 * page written from several nodes moves between them on every write.
 */
export function slot(block: Float64Array, index: number, pageSize: number): Float64Array {
  const per = pageSize / 8;
  return block.subarray(index * per, (index + 1) * per);
}
