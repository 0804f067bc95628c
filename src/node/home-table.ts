// A first-touch manager's table (coherence/first-touch.ts) kept in its host's segment,
// so that which page went where survives node restarts. Entry i (8 bytes, LE):
//   u32 slot | u16 home node index | u16 COMMITTED
// An entry is written in two steps, the commit mark last: an entry a crash left half
// written reads as absent, and its slot (never handed out) is simply given again.
import type { Mapping } from '../uffd/index.js';
import type { HomeTable } from '../coherence/first-touch.js';
import { HOME_ENTRY_BYTES } from './layout.js';

const COMMITTED = 0xa55a;

export class SegmentHomeTable implements HomeTable {
  private readonly entry = Buffer.alloc(HOME_ENTRY_BYTES);

  constructor(
    private readonly mapping: Mapping,
    /** Byte offset of this manager's table in the segment. */
    private readonly offset: number,
  ) {}

  get(i: number): { home: number; slot: number } | undefined {
    this.mapping.read(this.offset + i * HOME_ENTRY_BYTES, this.entry);
    if (this.entry.readUInt16LE(6) !== COMMITTED) return undefined;
    return { slot: this.entry.readUInt32LE(0), home: this.entry.readUInt16LE(4) };
  }

  set(i: number, home: number, slot: number): void {
    const at = this.offset + i * HOME_ENTRY_BYTES;
    this.entry.writeUInt32LE(slot, 0);
    this.entry.writeUInt16LE(home, 4);
    this.mapping.write(at, this.entry.subarray(0, 6));
    this.entry.writeUInt16LE(COMMITTED, 6);
    this.mapping.write(at + 6, this.entry.subarray(6));
  }
}
