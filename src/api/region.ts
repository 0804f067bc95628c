// The public face of a region: what an application programmer uses.
//
//   const region = await attach('data');
//   const block = await region.malloc(1 << 20, { name: 'matrix' });
//   new Float64Array(block.buffer)[0] = 1;          // plain loads and stores
//   await region.withLock('queue', async () => { … });
//   await region.barrier('step-1', 4);
//
// Consistency, per region (the cluster file's `consistency`):
// - 'sequential' (the default): every load sees the latest store to that address by any
//   node, in one global order; Atomics work across nodes. Single writer / multiple readers
//   per page: pages written by several nodes at once bounce between them (correct, but
//   slow), so give each node its own pages where you can.
// - 'release': a program free of data races that synchronizes through these locks and
//   barriers sees the same; several nodes may write one page at once, and writes travel
//   at synchronizations. Atomics on the memory are atomic within a node only: use
//   region.atomics for counters and flags shared across nodes (either mode).
import { NaplusError, checkName } from '../errors.js';
import { attachRegion, type AttachOptions, type AttachedRegion } from '../client/attach.js';
import { Heap, type Block, type HeapStats, type MallocOptions } from './heap.js';
import { regionFigures, type RegionFigures, type StatsReply } from '../stats.js';
import { RegionAtomics } from './atomics.js';

/** A region's counters on the node this app attached through (vocabulary: src/stats.ts). */
export interface RegionStats extends Omit<RegionFigures, 'apps' | 'cacheLimitPages'> {
  nodeId: number;
}

/** A lock held by this app; release it exactly once. */
export class Lock {
  private held = true;

  constructor(
    private readonly region: Region,
    readonly name: string,
  ) {}

  async release(): Promise<void> {
    if (!this.held) throw new NaplusError('EPERM', `Lock '${this.name}' is not held: it was released already`);
    this.held = false;
    await this.region.attached.call('unlock', { name: this.name });
  }
}

export class Region {
  private readonly heap: Heap;
  /** Read-modify-write operations on 32- and 64-bit words, atomic across every node (see atomics.ts). */
  readonly atomics: RegionAtomics;

  constructor(readonly attached: AttachedRegion) {
    this.heap = new Heap(attached);
    this.atomics = new RegionAtomics(attached);
  }

  get name(): string {
    return this.attached.name;
  }

  /** Bytes in the region. */
  get size(): number {
    return this.attached.info.size;
  }

  get pageSize(): number {
    return this.attached.info.pageSize;
  }

  /** The node this app is attached through. */
  get nodeId(): number {
    return this.attached.info.nodeId;
  }

  get host(): string {
    return this.attached.info.host;
  }

  /**
   * Byte ranges [from, to) of the region homed on this node's host, merged, in order
   * (none for placement 'first-touch', where homes are chosen as pages are touched).
   */
  get localRanges(): ReadonlyArray<readonly [number, number]> {
    return this.attached.localRanges;
  }

  /**
   * An ArrayBuffer over [offset, offset+length) of the shared memory, without copying.
   * Raw access to any range: the heap's metadata is at the start of the region
   * (heapStats().start bytes), and keeping raw views apart from malloc'd blocks is up to you.
   */
  view(offset: number, length: number): ArrayBuffer {
    return this.attached.view(offset, length);
  }

  /**
   * Allocates `bytes` of the region, for every app on every node. A block below a page
   * takes whole 64-byte units and stays within one page; from a page up it is
   * page-aligned, whole pages. `name` makes it findable with lookup(); `home: 'local'`
   * takes memory homed on this node's host only. Rejects with ENOMEM (no free extent
   * fits), EEXIST (name taken), EINVAL (bad arguments, or a 'local' block larger than any
   * run of pages homed here).
   */
  malloc(bytes: number, options?: MallocOptions): Promise<Block> {
    return this.heap.malloc(bytes, options);
  }

  /**
   * Frees a block, given as a Block or its offset. Rejects with EDOUBLEFREE if it was
   * freed already, ERANGE if the offset is not the start of a live block.
   */
  free(block: Block | number): Promise<void> {
    return this.heap.free(block);
  }

  /** The live block named `name`, allocated by any app; rejects with ENOENT if there is none. */
  lookup(name: string): Promise<Block> {
    return this.heap.lookup(name);
  }

  /** Every live block of the region, by offset. */
  blocks(): Promise<Block[]> {
    return this.heap.blocks();
  }

  /** The heap's metadata area, bytes used and free, and its largest free extent. */
  heapStats(): Promise<HeapStats> {
    return this.heap.stats();
  }

  /**
   * Takes a cluster-wide lock (FIFO-fair). Rejects with EOWNERDEAD if the holder died
   * while this app waited (the lock is then free: take it again, and check the data it
   * protects), EDEADLK if this app holds it already.
   */
  async lock(name: string): Promise<Lock> {
    checkName('lock name', name);
    if (name.startsWith('naplus.')) throw new NaplusError('EINVAL', `Lock name '${name}' is reserved: names starting with 'naplus.' belong to Naplus itself (its heap, say); pick another`);
    await this.attached.call('lock', { name });
    return new Lock(this, name);
  }

  /** Runs `fn` holding the lock, releasing it however `fn` ends. */
  async withLock<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    const lock = await this.lock(name);
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }

  /** Waits until `parties` apps (on any nodes) have arrived at barrier `name`. */
  async barrier(name: string, parties: number): Promise<void> {
    checkName('barrier name', name);
    if (!Number.isSafeInteger(parties) || parties < 1) {
      throw new NaplusError('EINVAL', `Expected a positive integer for parties but received ${String(parties)}`);
    }
    await this.attached.call('barrier', { name, parties });
  }

  /**
   * A synchronization point on its own: resolves once every write this app's node made
   * so far (to any region) is in its page's master copy, in the home host's segment, so
   * that it survives the loss of any one node. `barrier()` and releasing a lock do the
   * same before they go on. Rejects with EPEERLOST when a home stays unreachable for
   * `peerTimeoutMs`, or when writes made since the last synchronization were lost.
   */
  async flush(): Promise<void> {
    await this.attached.call('flush');
  }

  /**
   * Faults of this region on this node: `faults` is bySource.cache + bySource.segment +
   * bySource.remote; `upgrades` (writes to pages held read-only) are among them;
   * `readahead` counts pages mapped ahead, which never faulted.
   */
  async stats(): Promise<RegionStats> {
    const s = await this.attached.call<StatsReply>('stats');
    const { apps: _apps, cacheLimitPages: _limit, ...figures } = regionFigures(s.regions[this.name]!);
    return { nodeId: s.node, ...figures };
  }

  /** Detaches; ArrayBuffers made earlier stay readable but are no longer kept coherent. */
  detach(): Promise<void> {
    return this.attached.detach();
  }
}

/**
 * Attaches this process to a region through the local node. Fails with ENOTCONN (and
 * the command that starts a node) when no node runs there, ENOENT for an unknown region.
 */
export async function attach(name: string, options: AttachOptions = {}): Promise<Region> {
  checkName('region name', name);
  return new Region(await attachRegion(name, options));
}
