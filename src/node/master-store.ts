// The master copies of a region's pages homed on this host, in the host segment (each
// at its slot: Homes.slotOf). Any node of the host reads and writes them: a page's home
// when it serves other hosts, and every co-resident cache that fills from or writes
// back to the segment directly.
import type { Homes, MasterStore } from '../coherence/protocol.js';
import type { Segment } from './segment.js';
import { runs } from './runs.js';

export class SegmentMasters implements MasterStore {
  private homes!: Homes;
  /** Pages written into the segment (write-backs from caches and from other hosts). */
  writes = 0;
  /** The whole area, for changes made in place (made when first needed). */
  private area: Uint8Array | undefined;

  constructor(
    private readonly segment: Segment,
    /** This region's area in the segment. */
    private readonly areaOffset: number,
    private readonly areaLength: number,
    private readonly pageSize: number,
  ) {}

  /** Where pages are homed: known once the region's protocol is set up. */
  placeBy(homes: Homes): void {
    this.homes = homes;
  }

  private offsetOf(page: number): number {
    return this.areaOffset + this.homes.slotOf(page)! * this.pageSize;
  }

  /** Each run of consecutive slots in one positional read. */
  read(pages: readonly number[]): Uint8Array[] {
    const reads = pages.map((page) => ({ page, into: Buffer.allocUnsafe(this.pageSize) }));
    for (const run of runs([...reads], (r) => this.homes.slotOf(r.page)!)) this.segment.readvAt(this.offsetOf(run[0]!.page), run.map((r) => r.into));
    return reads.map((r) => r.into);
  }

  write(page: number, data: Uint8Array): void {
    this.segment.writeAt(this.offsetOf(page), data);
    this.writes++;
  }

  view(page: number): Uint8Array {
    this.area ??= new Uint8Array(this.segment.mapping.view(this.areaOffset, this.areaLength));
    const at = this.homes.slotOf(page)! * this.pageSize;
    this.writes++;
    return this.area.subarray(at, at + this.pageSize);
  }
}
