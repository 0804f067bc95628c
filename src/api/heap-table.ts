// The heap's metadata, at the start of the region it manages: a header and a table of
// block records. Only an app holding the region's heap lock reads or writes it, so under
// sequential consistency every node sees the same table; it lives in the region's pages,
// so it goes home with them and survives node restarts.
//
//   [ header (64 bytes) | record 0 | record 1 | … ]  metadataBytes(): 1/64 of the region,
//   whole pages; the heap proper is [start, size), start = metadataBytes().
//
//   header                          record (64 bytes, one per block)
//    0 u32 magic        (commit)      0 u32 state: 0 empty, 1 live (commit), 2 freed
//    4 u32 version                    4 u32 serial: which allocation this is
//    8 f64 region size                8 f64 offset
//   16 u32 page size                 16 f64 length, in bytes as asked
//   20 u32 capacity (records)        24 u32 home: 0 spread, 1 local
//   24 f64 start                     28 u32 name length in bytes (0: no name)
//   32 u32 high water (slots used)   32 name, UTF-8, up to 32 bytes
//   36 u32 last serial
//
// Crash consistency. An app may die (SIGKILL) at any instruction while it holds the heap
// lock; the next holder is told (EOWNERDEAD) and must find the metadata consistent with
// nothing to repair. So what the heap holds is defined by commit words alone, and every
// operation takes effect with one aligned 32-bit store (Atomics.store: indivisible, and
// ordered after the stores before it):
// - format: every header field, then `magic`. A header without the magic is no heap yet,
//   whatever its other bytes say, and is formatted again.
// - malloc: the record is written in a slot that is not live (a freed record there is
//   first marked empty), then its state flips to live. A record that is not live holds
//   no memory and no name, so a half-written one is ignored and its slot reused.
// - free: the state flips from live to freed.
// Free space is never stored: it is what the live records leave, so there is no free list
// to tear, and the memory of an unfinished malloc is free by construction. The counters
// written before a commit (high water, last serial) only grow; one too high costs one
// more slot to scan or a skipped serial, nothing else.
import { NaplusError } from '../errors.js';
import { UNIT, roundUp } from './heap-space.js';

export type Home = 'local' | 'spread';

export const enum RecordState {
  Empty = 0,
  Live = 1,
  Freed = 2,
}

export interface BlockRecord {
  slot: number;
  state: RecordState;
  serial: number;
  offset: number;
  length: number;
  home: Home;
  name: string | undefined;
}

/** Longest block name, in UTF-8 bytes. */
export const NAME_BYTES = 32;
const MAGIC = 0x5048504e; // "NPHP"
const VERSION = 1;
const HOMES: Home[] = ['spread', 'local'];
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** Bytes at the start of a region that hold the heap's metadata: 1/64 of it, whole pages. */
export function metadataBytes(size: number, pageSize: number): number {
  return Math.max(pageSize, roundUp(size / UNIT, pageSize));
}

export class HeapTable {
  /** First byte of the heap proper. */
  readonly start: number;
  /** Block records the table has room for. */
  readonly capacity: number;
  private readonly words: Int32Array;
  private readonly data: DataView;

  /** `memory` starts with the region's first byte (the whole region, usually). */
  constructor(
    private readonly memory: ArrayBuffer,
    readonly size: number,
    readonly pageSize: number,
  ) {
    this.start = metadataBytes(size, pageSize);
    this.capacity = this.start / UNIT - 1;
    this.words = new Int32Array(memory, 0, this.start / 4);
    this.data = new DataView(memory, 0, this.start);
  }

  /** Checks the header, formatting the heap if it has none. Hold the heap lock. */
  open(region: string): void {
    const d = this.data;
    if (Atomics.load(this.words, 0) !== MAGIC) {
      d.setUint32(4, VERSION, true);
      d.setFloat64(8, this.size, true);
      d.setUint32(16, this.pageSize, true);
      d.setUint32(20, this.capacity, true);
      d.setFloat64(24, this.start, true);
      d.setUint32(32, 0, true);
      d.setUint32(36, 0, true);
      Atomics.store(this.words, 0, MAGIC);
      return;
    }
    const version = d.getUint32(4, true);
    if (version !== VERSION) {
      throw new NaplusError('ENOTSUP', `The heap of region '${region}' has metadata version ${version}; this Naplus reads version ${VERSION}: use the Naplus version that made it`);
    }
    const found = [d.getFloat64(8, true), d.getUint32(16, true), d.getUint32(20, true), d.getFloat64(24, true)];
    if (found.join() !== [this.size, this.pageSize, this.capacity, this.start].join() || this.highWater > this.capacity) {
      throw new NaplusError(
        'EBADMSG',
        `The heap metadata at the start of region '${region}' (its first ${this.start} bytes) is damaged or belongs to another ` +
          `region shape (size, page size, capacity, start: ${found.join(', ')}); was it overwritten through view()?`,
      );
    }
  }

  /** Byte offset of the record in `slot` (slot -1 is the header). */
  private at(slot: number): number {
    return (slot + 1) * UNIT;
  }

  private get highWater(): number {
    return this.data.getUint32(32, true);
  }

  /** Every slot ever used, live or not, in slot order. */
  scan(): BlockRecord[] {
    const d = this.data;
    const records: BlockRecord[] = [];
    for (let slot = 0; slot < this.highWater; slot++) {
      const at = this.at(slot);
      const nameBytes = Math.min(d.getUint32(at + 28, true), NAME_BYTES);
      records.push({
        slot,
        state: Atomics.load(this.words, at / 4),
        serial: d.getUint32(at + 4, true),
        offset: d.getFloat64(at + 8, true),
        length: d.getFloat64(at + 16, true),
        home: HOMES[d.getUint32(at + 24, true)] ?? 'spread',
        name: nameBytes > 0 ? fromUtf8.decode(new Uint8Array(this.memory, at + 32, nameBytes)) : undefined,
      });
    }
    return records;
  }

  /** A slot that holds no live block (from `records`, the latest scan), if any. */
  freeSlot(records: readonly BlockRecord[]): number | undefined {
    const reusable = records.find((r) => r.state !== RecordState.Live);
    if (reusable) return reusable.slot;
    return this.highWater < this.capacity ? this.highWater : undefined;
  }

  /** Writes a record into `slot` without committing it; returns its serial. */
  write(slot: number, block: { offset: number; length: number; home: Home; name: string | undefined }): number {
    const d = this.data;
    const at = this.at(slot);
    if (slot >= this.highWater) d.setUint32(32, slot + 1, true); // before the record, so that scans cover it
    if (Atomics.load(this.words, at / 4) !== RecordState.Empty) Atomics.store(this.words, at / 4, RecordState.Empty);
    const serial = (d.getUint32(36, true) + 1) >>> 0;
    d.setUint32(36, serial, true);
    d.setUint32(at + 4, serial, true);
    d.setFloat64(at + 8, block.offset, true);
    d.setFloat64(at + 16, block.length, true);
    d.setUint32(at + 24, HOMES.indexOf(block.home), true);
    const name = new Uint8Array(this.memory, at + 32, NAME_BYTES);
    const encoded = utf8.encodeInto(block.name ?? '', name.fill(0));
    d.setUint32(at + 28, encoded.written, true);
    return serial;
  }

  /** The commit of a malloc: the record written in `slot` becomes a live block. */
  commit(slot: number): void {
    Atomics.store(this.words, this.at(slot) / 4, RecordState.Live);
  }

  /** The commit of a free. */
  release(slot: number): void {
    Atomics.store(this.words, this.at(slot) / 4, RecordState.Freed);
  }
}
