// The node's single cached copy of a region: a memfd that every attached app maps, and
// the node's own, unregistered mapping of it. Page data moves only through this store;
// the node never touches an app's mapping, so it cannot fault on itself.
//
// Pages come in by positional writes, gathered per turn into one system call per run of
// consecutive pages (a readahead window is one): writing through the node's mapping
// would cost a page fault per page first touched (~4 µs here). Queued pages are written
// before anything reads or drops a page (writeFills), so nothing sees a stale byte.
import { Memfd, type Mapping } from '../uffd/index.js';
import type { MasterStore } from '../coherence/protocol.js';
import { runs } from './runs.js';

export class CacheStore {
  readonly memfd: Memfd;
  private readonly mapping: Mapping;
  /** Pages to write into the memfd: their bytes, or undefined to copy the master copy. */
  private fills: Array<{ page: number; data: Uint8Array | undefined }> = [];

  constructor(
    name: string,
    size: number,
    private readonly pageSize: number,
    /** Where pages filled "from the segment" come from. */
    private readonly masters: MasterStore,
  ) {
    this.memfd = Memfd.create(`naplus:${name}`, size);
    this.mapping = this.memfd.map();
  }

  /** Queues `page`'s bytes (received from another node), or its master copy when `data` is undefined. */
  fill(page: number, data: Uint8Array | undefined): void {
    this.fills.push({ page, data });
  }

  /** Writes the queued pages into the memfd: each run of consecutive pages in one write. */
  writeFills(): void {
    const fills = this.fills;
    if (fills.length === 0) return;
    this.fills = [];
    const fromMaster = fills.filter((f) => !f.data);
    if (fromMaster.length > 0) this.masters.read(fromMaster.map((f) => f.page)).forEach((data, i) => (fromMaster[i]!.data = data));
    for (const run of runs(fills, (f) => f.page)) this.memfd.writev(run[0]!.page * this.pageSize, run.map((f) => f.data!));
  }

  /** A copy of this node's copy of `page`. */
  copyOut(page: number): Uint8Array {
    const out = Buffer.allocUnsafe(this.pageSize);
    this.copyInto(page, out);
    return out;
  }

  /**
   * Puts zero pages where an app punched holes in [page, page+count) of the memfd (any app
   * with a writable mapping can): reading through the node's own mapping allocates them.
   */
  refill(page: number, count: number): void {
    this.mapping.read(page * this.pageSize, Buffer.allocUnsafe(count * this.pageSize));
  }

  /** Copies this node's copy of `page` into `into`. */
  copyInto(page: number, into: Uint8Array): void {
    this.writeFills();
    this.mapping.read(page * this.pageSize, into);
  }

  /** Drops `page` from the memfd: every app loses it at once (its next access faults). */
  drop(page: number): void {
    this.writeFills();
    this.memfd.punchHole(page * this.pageSize, this.pageSize);
  }

  close(): void {
    this.mapping.unmap();
    this.memfd.close();
  }
}
