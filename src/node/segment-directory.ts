// Who owns which page homed on this host, recorded in the host segment (one 8-byte
// entry per slot of the region's area, LE):
//   u16 owner node index + 1 (0: no owner) | u16 home node index + 1 | u32 page
// A home writes its page's entry before it grants the page writable, and clears it
// when the master copy is current again. The segment outlives the node: a restarted
// home reads back which pages may be held dirty elsewhere (coherence/sequential/home.ts).
// Co-resident homes share the area (slots are per host), hence the home index.
import type { DirectoryStore } from '../coherence/protocol.js';
import type { Segment } from './segment.js';
import { DIRECTORY_ENTRY_BYTES, directoryAreaName } from './layout.js';

export class SegmentDirectory implements DirectoryStore {
  private readonly entries: DataView;
  private readonly selfIndex: number;

  constructor(
    segment: Segment,
    region: string,
    /** Every node of the cluster, in cluster-file order. */
    private readonly nodes: readonly number[],
    self: number,
  ) {
    const area = segment.area(directoryAreaName(region));
    this.entries = new DataView(segment.mapping.view(area.offset, area.length));
    this.selfIndex = nodes.indexOf(self);
  }

  owned(): Array<{ page: number; owner: number; slot: number }> {
    const out: Array<{ page: number; owner: number; slot: number }> = [];
    for (let slot = 0, at = 0; at < this.entries.byteLength; slot++, at += DIRECTORY_ENTRY_BYTES) {
      const owner = this.entries.getUint16(at, true);
      if (owner === 0 || this.entries.getUint16(at + 2, true) !== this.selfIndex + 1) continue;
      const node = this.nodes[owner - 1];
      if (node !== undefined) out.push({ page: this.entries.getUint32(at + 4, true), owner: node, slot });
    }
    return out;
  }

  record(page: number, slot: number, owner: number | undefined): void {
    const at = slot * DIRECTORY_ENTRY_BYTES;
    // Page and home first, the owner last: an entry with an owner is always whole.
    this.entries.setUint32(at + 4, page, true);
    this.entries.setUint16(at + 2, this.selfIndex + 1, true);
    this.entries.setUint16(at, owner === undefined ? 0 : this.nodes.indexOf(owner) + 1, true);
  }
}
