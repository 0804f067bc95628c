// Release consistency's records in the host segment (see layout.ts), so that they outlive
// the node's process: each page's version beside its master copy (read by every node of
// the host: a co-resident fetch copies the page straight from the segment, at the version
// it reads here first), and this node's notices as a home of locks and barriers. Both are
// aligned u32s in the shared mapping: a read never sees half a write.
import type { Homes, NoticeStore, VersionStore } from '../coherence/protocol.js';
import type { Segment } from './segment.js';
import { noticesAreaName, versionsAreaName } from './layout.js';

export class SegmentVersions implements VersionStore {
  private readonly versions: Uint32Array;
  private homes!: Homes;

  constructor(segment: Segment, region: string) {
    const area = segment.area(versionsAreaName(region));
    this.versions = new Uint32Array(segment.mapping.view(area.offset, area.length));
  }

  /** Where pages are homed: known once the region's protocol is set up. */
  placeBy(homes: Homes): void {
    this.homes = homes;
  }

  read(page: number): number {
    return this.versions[this.homes.slotOf(page)!]!;
  }

  write(page: number, version: number): void {
    this.versions[this.homes.slotOf(page)!] = version;
  }

  bump(page: number): number {
    // Atomic across the processes that map the segment (every node of the host).
    return Atomics.add(this.versions, this.homes.slotOf(page)!, 1) + 1;
  }
}

export class SegmentNotices implements NoticeStore {
  private readonly notices: Uint32Array;

  constructor(segment: Segment, region: string, pages: number, bytesPerNode: number, coresidentIndex: number) {
    const area = segment.area(noticesAreaName(region));
    this.notices = new Uint32Array(segment.mapping.view(area.offset + coresidentIndex * bytesPerNode, pages * 4));
  }

  read(page: number): number {
    return this.notices[page]!;
  }

  write(page: number, version: number): void {
    this.notices[page] = version;
  }
}
