// Cluster-wide malloc/free and named blocks, kept in the region's own shared memory.
// The allocator runs in the app: every operation takes the region's heap lock (a
// cluster-wide lock), reads the metadata at the start of the region (heap-table.ts),
// decides with first fit (heap-space.ts), commits with one 32-bit store and lets go.
// Sequential consistency and the lock make every node see the same heap; a holder that
// dies mid-operation leaves nothing to repair.
import { NaplusError, checkName, checkUint, invalidArgument } from '../errors.js';
import type { AttachedRegion } from '../client/attach.js';
import { HeapTable, NAME_BYTES, RecordState, type BlockRecord, type Home } from './heap-table.js';
import { extentOf, firstFit, gaps, intersect, longest, total, type Range } from './heap-space.js';

export type { Home };

/** What the heap needs of an attached region. */
export type HeapRegion = Pick<AttachedRegion, 'name' | 'info' | 'buffer' | 'localRanges' | 'view' | 'call'>;

export interface MallocOptions {
  /** A name, unique in the region, by which any app on any node finds the block (lookup). */
  name?: string;
  /** 'spread' (default): memory anywhere in the region; 'local': homed on this node's host. */
  home?: Home;
}

export interface HeapStats {
  /** First byte of the heap: [0, start) of the region holds its metadata. */
  start: number;
  /** Bytes the heap hands out: [start, region size). */
  bytes: number;
  /** Bytes held by live blocks, each rounded up as allocated. */
  used: number;
  free: number;
  largestFree: number;
  /** Free extents between blocks (1 when the whole heap is free). */
  freeExtents: number;
  blocks: number;
  /** Live blocks the metadata has room for. */
  maxBlocks: number;
}

/** A block of the region from malloc or lookup: the same bytes for every app on every node. */
export class Block {
  readonly region: string;
  /** Byte offset in the region. */
  readonly offset: number;
  /** Bytes asked for at malloc; `buffer` covers exactly these. */
  readonly length: number;
  readonly name: string | undefined;
  readonly home: Home;
  /** Which allocation this is (its record and serial), so that free() spots a stale Block. */
  readonly slot: number;
  readonly serial: number;
  /** The block's bytes in the shared memory, without copying (as region.view). */
  readonly buffer: ArrayBuffer;

  constructor(region: HeapRegion, record: BlockRecord) {
    this.region = region.name;
    this.offset = record.offset;
    this.length = record.length;
    this.name = record.name;
    this.home = record.home;
    this.slot = record.slot;
    this.serial = record.serial;
    this.buffer = region.view(record.offset, record.length);
  }
}

/** The cluster-wide lock that guards the heap of `region` (lock names are cluster-wide). */
export function heapLockName(region: string): string {
  return `naplus.heap:${region}`;
}

/**
 * Takes the heap lock. A holder that died mid-operation left the metadata consistent
 * (see heap-table.ts), so EOWNERDEAD only means: take it again.
 */
export async function lockHeap(region: HeapRegion): Promise<void> {
  for (;;) {
    try {
      await region.call('lock', { name: heapLockName(region.name) });
      return;
    } catch (err) {
      if ((err as NaplusError).code !== 'EOWNERDEAD') throw err;
    }
  }
}

function describe(b: { offset: number; length: number; name: string | undefined }): string {
  return `${b.name === undefined ? 'block' : `block '${b.name}'`} at offset ${b.offset} (${b.length} bytes)`;
}

export class Heap {
  private readonly table: HeapTable;
  /** This app's heap operations, one after the other: the node grants the lock once per app. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly region: HeapRegion) {
    this.table = new HeapTable(region.buffer, region.info.size, region.info.pageSize);
  }

  async malloc(bytes: number, options: MallocOptions = {}): Promise<Block> {
    if (!Number.isSafeInteger(bytes) || bytes < 1) throw invalidArgument('bytes', 'a positive integer', bytes);
    const name = options.name === undefined ? undefined : checkName('name', options.name, NAME_BYTES);
    const home = options.home ?? 'spread';
    if (home !== 'spread' && home !== 'local') throw invalidArgument('home', "'local' or 'spread'", home);
    if (home === 'local' && this.region.info.placement === 'first-touch') {
      throw new NaplusError('EINVAL', `Region '${this.region.name}' has placement 'first-touch': a page gets its home when a node first touches it, so no memory is homed on host '${this.region.info.host}' in advance. Use home: 'spread' (pages this node writes first become homed here)`);
    }
    return this.locked((records) => {
      const record = this.prepare(records, bytes, home, name);
      this.table.commit(record.slot);
      return new Block(this.region, record);
    });
  }

  /**
   * Places a block and writes its record, uncommitted (malloc commits it at once). Hold
   * the heap lock; `records` is a scan taken under it.
   */
  prepare(records: readonly BlockRecord[], bytes: number, home: Home, name: string | undefined): BlockRecord {
    const live = records.filter((r) => r.state === RecordState.Live);
    const taken = name === undefined ? undefined : live.find((r) => r.name === name);
    if (taken) {
      throw new NaplusError('EEXIST', `A ${describe(taken)} exists already in region '${this.region.name}': look it up with lookup('${name}'), or free it first`);
    }
    const { size, pageSize } = this.region.info;
    const extent = extentOf(bytes, pageSize);
    const heap: Range[] = [[this.table.start, size]];
    const allowed = home === 'local' ? intersect(this.region.localRanges, heap) : heap;
    if (extent > longest(allowed)) throw this.neverFits(bytes, extent, home, longest(allowed));
    const free = intersect(this.freeExtents(live), allowed);
    const offset = firstFit(free, extent, pageSize);
    if (offset === undefined) throw this.outOfMemory(bytes, extent, home, free);
    const slot = this.table.freeSlot(records);
    if (slot === undefined) {
      throw new NaplusError('ENOMEM', `The heap of region '${this.region.name}' has no free block record: all ${this.table.capacity} hold live blocks. Free some blocks, or allocate fewer, larger ones`);
    }
    const block = { offset, length: bytes, home, name };
    const serial = this.table.write(slot, block);
    return { slot, state: RecordState.Empty, serial, ...block };
  }

  /** No free extent fits the block now; `free` are the free extents it may take. */
  private outOfMemory(bytes: number, extent: number, home: Home, free: readonly Range[]): NaplusError {
    const { name, info } = this.region;
    const local = home === 'local';
    const where = local ? ` homed on host '${info.host}'` : '';
    return new NaplusError(
      'ENOMEM',
      `Out of memory${where} in region '${name}': malloc(${bytes}${local ? ", { home: 'local' }" : ''}) needs ${extent} bytes` +
        `${extent >= info.pageSize ? ' of whole pages' : ''}, but the largest free extent${where} is ${longest(free)} bytes ` +
        `(${total(free)} bytes free${where}). ${local ? "Free blocks homed there, or use home: 'spread' to take memory anywhere" : 'Free some blocks, or use a larger region'}`,
    );
  }

  /** A block larger than the heap, or than any run of local pages in it, can never be placed. */
  private neverFits(bytes: number, extent: number, home: Home, run: number): NaplusError {
    const { name, info } = this.region;
    if (home === 'spread') {
      return new NaplusError('ENOMEM', `Out of memory in region '${name}': malloc(${bytes}) needs ${extent} bytes, more than the whole heap (${run} bytes after the metadata); use a larger region`);
    }
    const why = info.placement === 'interleave' ? ` (placement 'interleave' puts consecutive pages on different nodes)` : '';
    const longestRun = run === 0 ? 'no page of the heap is homed there' : `the longest run of heap pages homed there is ${run} bytes${why}`;
    return new NaplusError(
      'EINVAL',
      `A 'local' block of ${bytes} bytes cannot exist in region '${name}': it needs ${extent} bytes of consecutive pages homed on host '${info.host}', ` +
        `but ${longestRun}. Use home: 'spread'${run > 0 ? `, or 'local' blocks of at most ${run} bytes` : ''}`,
    );
  }

  /** What the live blocks leave of the heap, in order. */
  private freeExtents(live: readonly BlockRecord[]): Range[] {
    const used = live.map((r): Range => [r.offset, r.offset + extentOf(r.length, this.region.info.pageSize)]);
    return gaps(used.sort((a, b) => a[0] - b[0]), this.table.start, this.region.info.size);
  }

  /** Frees a block, given as the Block or its offset. */
  async free(target: Block | number): Promise<void> {
    if (target instanceof Block) {
      if (target.region !== this.region.name) {
        throw invalidArgument('block', `a block of region '${this.region.name}'`, `a block of region '${target.region}'`);
      }
      return this.locked((records) => {
        const r = records[target.slot];
        if (r?.state !== RecordState.Live || r.serial !== target.serial) throw this.doubleFree(target);
        this.table.release(r.slot);
      });
    }
    const offset = checkUint('offset', target);
    return this.locked((records) => this.table.release(this.liveAt(records, offset).slot));
  }

  private doubleFree(b: { offset: number; length: number; name: string | undefined }): NaplusError {
    return new NaplusError('EDOUBLEFREE', `The ${describe(b)} in region '${this.region.name}' was freed already (double free); its memory may belong to another block by now`);
  }

  /** The live record that starts at `offset`, or the reason there is none. */
  private liveAt(records: readonly BlockRecord[], offset: number): BlockRecord {
    const { name, info } = this.region;
    if (offset >= info.size) throw new NaplusError('ERANGE', `Bad offset: ${offset} is outside region '${name}' of ${info.size} bytes; free() takes the offset of a block from malloc()`);
    if (offset < this.table.start) throw new NaplusError('ERANGE', `Bad offset: ${offset} is in the heap's metadata area [0, ${this.table.start}) of region '${name}', not a block`);
    const live = records.filter((r) => r.state === RecordState.Live);
    const exact = live.find((r) => r.offset === offset);
    if (exact) return exact;
    const around = live.find((r) => r.offset < offset && offset < r.offset + extentOf(r.length, info.pageSize));
    if (around) throw new NaplusError('ERANGE', `Bad offset: ${offset} is inside the ${describe(around)}, not at its start; free(${around.offset}) frees that block`);
    const freed = records.find((r) => r.state === RecordState.Freed && r.offset === offset);
    if (freed) throw this.doubleFree(freed);
    throw new NaplusError('ERANGE', `Bad offset: no live block starts at offset ${offset} of region '${name}'`);
  }

  /** The live block named `name`; rejects with ENOENT if there is none. */
  async lookup(name: string): Promise<Block> {
    checkName('name', name, NAME_BYTES);
    return this.locked((records) => {
      const named = records.filter((r) => r.state === RecordState.Live && r.name !== undefined);
      const found = named.find((r) => r.name === name);
      if (found) return new Block(this.region, found);
      const known = named.length === 0 ? 'it has no named blocks' : `its named blocks are ${named.slice(0, 8).map((r) => `'${r.name}'`).join(', ')}${named.length > 8 ? ', …' : ''}`;
      throw new NaplusError('ENOENT', `No block named '${name}' in region '${this.region.name}' (${known}); name a block with malloc(bytes, { name })`);
    });
  }

  /** Every live block, by offset. */
  async blocks(): Promise<Block[]> {
    return this.locked((records) => records
      .filter((r) => r.state === RecordState.Live)
      .sort((a, b) => a.offset - b.offset)
      .map((r) => new Block(this.region, r)));
  }

  async stats(): Promise<HeapStats> {
    return this.locked((records) => {
      const live = records.filter((r) => r.state === RecordState.Live);
      const free = this.freeExtents(live);
      const bytes = this.region.info.size - this.table.start;
      return {
        start: this.table.start, bytes, used: bytes - total(free), free: total(free), largestFree: longest(free),
        freeExtents: free.length, blocks: live.length, maxBlocks: this.table.capacity,
      };
    });
  }

  /** Runs `op` on a fresh scan of the table, holding the heap lock, after this app's earlier operations. */
  private locked<T>(op: (records: BlockRecord[]) => T): Promise<T> {
    const run = async (): Promise<T> => {
      await lockHeap(this.region);
      try {
        return op(this.scan());
      } finally {
        await this.region.call('unlock', { name: heapLockName(this.region.name) });
      }
    };
    const result = this.tail.then(run);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Opens (formatting on first use) and reads the table. Hold the heap lock. */
  scan(): BlockRecord[] {
    this.table.open(this.region.name);
    return this.table.scan();
  }
}
