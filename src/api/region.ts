// The public face of a region: what an application programmer uses.
//
//   const region = await attach('data');
//   const block = await region.malloc(1 << 20, { name: 'matrix' });
//   new Float64Array(block.buffer)[0] = 1;          // plain loads and stores
//   await region.withLock('queue', async () => { … });
//   await region.barrier('step-1', 4);
//
// Consistency: sequential consistency. Every load sees the latest store to that
// address by any node, in one global order; Atomics work across nodes. Single writer /
// multiple readers per page: pages written by several nodes at once bounce between
// them (correct, but slow), so give each node its own pages where you can.
import { NaplusError } from '../errors.js';
import { attachRegion, type AttachOptions, type AttachedRegion } from '../client/attach.js';

export interface RegionStats {
  nodeId: number;
  faults: number;
  /** Faults resolved from: the node's cache (no copy), the host segment, another host. */
  bySource: { cache: number; segment: number; remote: number };
  writeUpgrades: number;
  prefetched: number;
  evictions: number;
  writebacks: number;
  wireBytes: number;
  residentPages: number;
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
  constructor(readonly attached: AttachedRegion) {}

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

  /** An ArrayBuffer over [offset, offset+length) of the shared memory, without copying. */
  view(offset: number, length: number): ArrayBuffer {
    return this.attached.view(offset, length);
  }

  /**
   * Takes a cluster-wide lock (FIFO-fair). Rejects with EOWNERDEAD if the holder died
   * while this app waited (the lock is then free: take it again, and check the data it
   * protects), EDEADLK if this app holds it already.
   */
  async lock(name: string): Promise<Lock> {
    checkName(name, 'lock name');
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
    checkName(name, 'barrier name');
    if (!Number.isSafeInteger(parties) || parties < 1) {
      throw new NaplusError('EINVAL', `Expected a positive integer for parties but received ${String(parties)}`);
    }
    await this.attached.call('barrier', { name, parties });
  }

  async stats(): Promise<RegionStats> {
    const s = await this.attached.call<{ node: number; regions: Record<string, Record<string, number>> }>('stats');
    const r = s.regions[this.name]!;
    return {
      nodeId: s.node,
      faults: r.faults!,
      bySource: { cache: r.servedFromCache!, segment: r.servedFromSegment!, remote: r.servedFromRemote! },
      writeUpgrades: r.writeUpgrades!,
      prefetched: r.prefetched!,
      evictions: r.evictions!,
      writebacks: r.writebacks!,
      wireBytes: r.wireBytes!,
      residentPages: r.residentPages!,
    };
  }

  /** Detaches; ArrayBuffers made earlier stay readable but are no longer kept coherent. */
  detach(): Promise<void> {
    return this.attached.detach();
  }
}

function checkName(name: unknown, what: string): void {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > 200) {
    throw new NaplusError('EINVAL', `Expected a non-empty string of at most 200 bytes for ${what} but received ${JSON.stringify(name)}`);
  }
}

/**
 * Attaches this process to a region through the local node. Fails with ENOTCONN (and
 * the command that starts a node) when no node runs there, ENOENT for an unknown region.
 */
export async function attach(name: string, options: AttachOptions = {}): Promise<Region> {
  checkName(name, 'region name');
  return new Region(await attachRegion(name, options));
}
