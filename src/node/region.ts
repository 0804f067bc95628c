// One region as served by one node: the guest's single cached copy (a memfd), the apps
// that map it, and the fault service. Page data moves only through the node's own,
// unregistered mapping of the memfd; the node never touches an app's mapping, so it
// cannot fault on itself.
//
// Who decides what: the coherence protocol (a PageEngine: src/coherence) keeps this
// node's state of every page (I/S/M) and decides when it changes; this class carries
// out the effects (fill from segment, install bytes, write back, write-protect, drop)
// as its CacheMemory, and serves the apps: faults that the page's state already
// permits are resolved here at once, the others wait for the engine's grant.
import { Memfd, type Mapping, type UffdEvent, type Userfaultfd } from '../uffd/index.js';
import type { Segment } from './segment.js';
import type { Readahead } from './readahead.js';
import type { RegionConfig } from '../config.js';
import { PageState, type CacheMemory, type Homes, type MasterStore } from '../coherence/protocol.js';
import type { TraceLog, FaultSource } from './trace.js';
import { errnoOf } from '../errors.js';

export type Access = 'read' | 'write';

/** An app attached to this region: its userfaultfd and where it mapped the region. */
export interface AppLink {
  id: number;
  pid: number;
  uffd: Userfaultfd;
  base: number;
  /** The app's sequential streams of misses (see readahead.ts). */
  readahead: Readahead;
  /** Signals the app's process (through a pidfd, never a bare pid); never throws. */
  kill(signal: NodeJS.Signals): void;
}

/** Decides how a page gets its data and permission; calls back through CacheMemory. */
export interface PageEngine {
  /** This node's state of every page (PageState); only the engine changes it. */
  readonly state: Uint8Array;
  request(page: number, access: Access): void;
  /** Cache pressure: give `page` up (dirty data goes home first); false if it cannot go now. */
  evict(page: number): boolean;
}

interface Waiter {
  app: AppLink;
  access: Access;
  wp: boolean;
  kind: 'read' | 'write' | 'minor';
  /** process.hrtime.bigint() when the fault was read. */
  since: bigint;
  /** Readahead pages have no thread waiting: map ahead, trace nothing. */
  prefetch: boolean;
}

/** Kinds of mapping work, merged into ranges before the ioctls. */
const enum Fix {
  MapReadOnly = 0,
  MapWritable = 1,
  Unprotect = 2,
}

/** Default largest readahead window, in pages. */
export const DEFAULT_READAHEAD = 64;

export interface RegionCounters {
  /** Faults read from the apps' userfaultfds. */
  faults: number;
  /** Faults resolved, by where the page was: already in this node's cache (no copy),
   *  copied from this host's segment, or fetched from another host. */
  servedFromCache: number;
  servedFromSegment: number;
  servedFromRemote: number;
  /** Faults on pages already in the memfd (mapped without a copy). */
  minor: number;
  /** Pages brought into the cache, faulted or read ahead, by source. */
  pagesFromSegment: number;
  pagesFromRemote: number;
  writeUpgrades: number;
  evictions: number;
  writebacks: number;
  wireBytes: number;
  prefetched: number;
}

export class RegionService implements CacheMemory, MasterStore {
  readonly pageSize: number;
  readonly pages: number;
  readonly memfd: Memfd;
  /** The node's own, unregistered mapping of the memfd. */
  readonly cache: Mapping;
  private state!: Uint8Array;
  private engine!: PageEngine;
  private homes!: Homes;
  readonly apps = new Map<number, AppLink>();
  readonly counters: RegionCounters = {
    faults: 0, servedFromCache: 0, servedFromSegment: 0, servedFromRemote: 0, minor: 0, pagesFromSegment: 0, pagesFromRemote: 0,
    writeUpgrades: 0, evictions: 0, writebacks: 0, wireBytes: 0, prefetched: 0,
  };
  private waiters = new Map<number, Waiter[]>();
  /** Pages to write into the memfd (data, or undefined: from the segment). */
  private fills: Array<{ page: number; data: Uint8Array | undefined }> = [];
  /** Master copies read() handed out, to fill before anything is sent (settle). */
  private reads: Array<{ page: number; into: Buffer }> = [];
  private pending = new Map<AppLink, Array<[number, Fix]>>();
  private flushQueued = false;
  /** Resident pages in arrival order, for FIFO eviction (stale entries skipped). */
  private residentQueue: number[] = [];
  private residentHead = 0;
  private resident = 0;

  constructor(
    readonly config: RegionConfig,
    readonly nodeId: number,
    /** The host segment and this region's area offset in it. */
    private readonly segment: { store: Segment; offset: number },
    readonly cacheLimitPages: number,
    /** Largest readahead window in pages; 0 turns readahead off. */
    readonly maxReadahead: number,
    private readonly trace: TraceLog,
    private readonly log: (msg: string) => void,
  ) {
    this.pageSize = config.pageSize;
    this.pages = config.size / config.pageSize;
    this.memfd = Memfd.create(`naplus:${config.name}`, config.size);
    this.cache = this.memfd.map();
  }

  /** Plugs in the coherence engine and the pages' homes; faults are served from then on. */
  useEngine(engine: PageEngine, homes: Homes): void {
    this.engine = engine;
    this.state = engine.state;
    this.homes = homes;
  }

  get residentPages(): number {
    return this.resident;
  }

  // ---- faults -------------------------------------------------------------------

  /** Handles one batch of events from an app's userfaultfd. */
  onEvents(app: AppLink, events: UffdEvent[]): void {
    for (const e of events) {
      if (e.kind !== 'fault') continue; // remove/unmap: the app gave pages up; nothing to undo here
      const page = Math.floor((e.address - app.base) / this.pageSize);
      if (page < 0 || page >= this.pages) continue;
      this.counters.faults++;
      const access: Access = e.write ? 'write' : 'read';
      const kind = e.write ? 'write' : e.minor ? 'minor' : 'read';
      this.addWaiter(page, { app, access, wp: e.wp, kind, since: process.hrtime.bigint(), prefetch: false });
      if (!e.minor) this.readahead(app, page, access);
    }
    this.flush();
  }

  private addWaiter(page: number, w: Waiter): void {
    const have = this.state[page]!;
    if (have === PageState.Modified || (have === PageState.Shared && w.access === 'read')) {
      if (w.kind === 'read' && !w.prefetch) w.kind = 'minor'; // data was here: no copy
      this.resolve(page, w, 'cache', 0);
      return;
    }
    let list = this.waiters.get(page);
    const first = !list;
    if (!list) this.waiters.set(page, (list = []));
    const alreadyAsked = !first && list.some((x) => x.access === w.access || x.access === 'write');
    list.push(w);
    if (first || !alreadyAsked) this.engine.request(page, w.access);
  }

  /**
   * Sequential misses grow a window (doubling to maxReadahead) of following pages
   * fetched and mapped ahead, so a scan costs a fraction of a fault per page. A run of
   * write faults (filling an array, or writing again rows others have read) takes the
   * following pages writable: they would be asked for one fault at a time otherwise,
   * each a round trip to their home.
   */
  private readahead(app: AppLink, page: number, access: Access): void {
    const end = Math.min(this.pages, page + app.readahead.miss(page));
    // Pages this node can already use that way are skipped (the run ends there). Under
    // first-touch placement a page nobody has touched yet is not taken either: that
    // would make this node its home by a guess, not by a touch.
    const usable = access === 'write' ? PageState.Modified : PageState.Shared;
    for (let p = page + 1; p < end && this.state[p]! < usable && !this.waiters.has(p) && this.homes.homeOf(p) !== undefined; p++) {
      this.counters.prefetched++;
      // A page this node holds Shared may be mapped read-only in the app: once writable,
      // clearing write-protect is what makes it so there (mapping it again would not).
      const wp = this.state[p] === PageState.Shared;
      this.addWaiter(p, { app, access, wp, kind: access, since: process.hrtime.bigint(), prefetch: true });
    }
  }

  private resolve(page: number, w: Waiter, source: FaultSource, wireBytes: number): void {
    const writable = this.state[page] === PageState.Modified;
    const fix = w.wp ? Fix.Unprotect : writable ? Fix.MapWritable : Fix.MapReadOnly;
    let list = this.pending.get(w.app);
    if (!list) this.pending.set(w.app, (list = []));
    list.push([page, fix]);
    if (w.kind === 'minor') this.counters.minor++;
    if (w.prefetch) return;
    if (source === 'cache') this.counters.servedFromCache++;
    else if (source === 'segment') this.counters.servedFromSegment++;
    else this.counters.servedFromRemote++;
    this.trace.record({
      t: Date.now(),
      node: this.nodeId,
      region: this.config.name,
      app: w.app.pid,
      page,
      kind: w.kind,
      source,
      waitUs: Number(process.hrtime.bigint() - w.since) / 1000,
      wireBytes,
    });
  }

  /** Carries out pending work: pages into the memfd, then mappings, merged into runs of consecutive pages. */
  flush(): void {
    this.flushQueued = false;
    this.writeFills();
    const pending = this.pending;
    if (pending.size === 0) return;
    this.pending = new Map();
    for (const [app, list] of pending) {
      if (!this.apps.has(app.id)) continue; // detached meanwhile
      list.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
      let i = 0;
      while (i < list.length) {
        const [first, fix] = list[i]!;
        let last = first;
        while (i + 1 < list.length && list[i + 1]![1] === fix && list[i + 1]![0] <= last + 1) last = list[++i]![0];
        i++;
        this.applyFix(app, first, last - first + 1, fix);
      }
    }
  }

  private applyFix(app: AppLink, page: number, count: number, fix: Fix, refilled = false): void {
    const start = app.base + page * this.pageSize;
    const length = count * this.pageSize;
    try {
      if (fix === Fix.Unprotect) app.uffd.writeProtect(start, length, false);
      else app.uffd.continue(start, length, { wp: fix === Fix.MapReadOnly });
    } catch (err) {
      if (fix !== Fix.Unprotect && errnoOf(err) === 'EFAULT' && !refilled) {
        // CONTINUE finds no page where an app punched a hole in the memfd (fallocate,
        // MADV_REMOVE). Reading the range through the node's own mapping puts zero pages
        // in the holes, as every other mapping reads them now; then no fault waits forever.
        this.cache.read(page * this.pageSize, Buffer.allocUnsafe(length));
        this.log(`pages ${page}..${page + count - 1} of region ${this.config.name} were punched out of its memfd by an app; they read as zeros now`);
        return this.applyFix(app, page, count, fix, true);
      }
      this.log(`app ${app.pid}: mapping pages ${page}..${page + count - 1} failed: ${(err as Error).message}`);
    }
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  // ---- effects the engine carries out (CacheMemory, MasterStore) -----------------

  /** Offset of `page`'s master copy in the host segment (page must be homed on this host). */
  segmentOffset(page: number): number {
    return this.segment.offset + this.homes.slotOf(page)! * this.pageSize;
  }

  // Pages come into the memfd by positional writes, gathered per tick into one system
  // call per run of consecutive pages (a readahead window is one): writing through the
  // node's mapping would cost a page fault per page first touched (~4 µs here). They
  // are written before anything maps, reads, protects or drops a page (writeFills).

  fillFromSegment(page: number): void {
    this.queueFill(page, undefined);
  }

  /** Stores bytes received from another node as this node's copy of `page`. */
  install(page: number, data: Uint8Array): void {
    this.queueFill(page, data);
  }

  private queueFill(page: number, data: Uint8Array | undefined): void {
    this.fills.push({ page, data });
    this.scheduleFlush();
  }

  /** Writes the queued pages into the memfd: each run of consecutive pages in one write. */
  private writeFills(): void {
    const fills = this.fills;
    if (fills.length === 0) return;
    this.fills = [];
    const fromSegment = fills.filter((f) => !f.data).map((f) => ({ page: f.page, into: (f.data = Buffer.allocUnsafe(this.pageSize)) }));
    this.readMasters(fromSegment);
    for (const run of runs(fills, (f) => f.page)) this.memfd.writev(run[0]!.page * this.pageSize, run.map((f) => f.data!));
  }

  /** Fills each `into` with its page's master copy: each run of consecutive slots in one read. */
  private readMasters(reads: Array<{ page: number; into: Buffer }>): void {
    const store = this.segment.store;
    for (const run of runs(reads, (r) => this.homes.slotOf(r.page)!)) store.readvAt(this.segmentOffset(run[0]!.page), run.map((r) => r.into));
  }

  writeBack(page: number): void {
    this.segment.store.writeAt(this.segmentOffset(page), this.copyOut(page));
    this.counters.writebacks++;
  }

  copyOut(page: number): Uint8Array {
    this.writeFills();
    const out = Buffer.allocUnsafe(this.pageSize);
    this.cache.read(page * this.pageSize, out);
    return out;
  }

  /** The master copy of a page homed on this node (filled by settle()). */
  read(page: number): Uint8Array {
    const into = Buffer.allocUnsafe(this.pageSize);
    this.reads.push({ page, into });
    return into;
  }

  settle(): void {
    const reads = this.reads;
    this.reads = [];
    if (reads.length > 0) this.readMasters(reads);
  }

  /** A page homed on this node comes home from another host. */
  write(page: number, data: Uint8Array): void {
    this.segment.store.writeAt(this.segmentOffset(page), data);
    this.counters.writebacks++;
  }

  /**
   * The engine gave this node `level` on `page` (its data is in the memfd): resolve
   * every waiter that level satisfies; the rest wait for more.
   */
  granted(page: number, before: PageState, level: PageState, source: FaultSource, wireBytes: number): void {
    if (before === PageState.Invalid) this.noteResident(page);
    if (level === PageState.Modified && before === PageState.Shared) this.counters.writeUpgrades++;
    if (source === 'segment') this.counters.pagesFromSegment++;
    if (source === 'remote') this.counters.pagesFromRemote++;
    this.counters.wireBytes += wireBytes;
    const list = this.waiters.get(page);
    if (list) {
      const rest = list.filter((w) => w.access === 'write' && level !== PageState.Modified);
      for (const w of list) if (!rest.includes(w)) this.resolve(page, w, source, wireBytes);
      if (rest.length > 0) {
        this.waiters.set(page, rest);
      } else {
        this.waiters.delete(page);
      }
    }
    this.scheduleFlush();
    this.enforceCacheLimit();
  }

  /** No app may write `page` until it is granted M again. */
  protect(page: number): void {
    this.flush(); // mapping work queued before this must not land after it
    for (const app of this.apps.values()) {
      try {
        app.uffd.writeProtect(app.base + page * this.pageSize, this.pageSize, true);
      } catch (err) {
        this.log(`app ${app.pid}: write-protect of page ${page} failed: ${(err as Error).message}`);
      }
    }
  }

  /** Invalidate: drop this node's copy; every app loses the page at once. */
  drop(page: number): void {
    this.flush();
    this.memfd.punchHole(page * this.pageSize, this.pageSize);
    this.resident--;
  }

  /**
   * The page cannot be had (its home is unreachable, say). Each app waiting on it takes
   * SIGBUS on that access: the page is poisoned in its address space (or, on kernels
   * before 6.6, the app is sent SIGBUS), and the node logs why. Nothing waits forever.
   */
  failed(page: number, reason: string): void {
    const list = this.waiters.get(page) ?? [];
    this.waiters.delete(page);
    for (const w of list) {
      if (w.prefetch) continue;
      this.log(`app ${w.app.pid}: access to page ${page} of region ${this.config.name} fails with SIGBUS: ${reason}`);
      try {
        w.app.uffd.poison(w.app.base + page * this.pageSize, this.pageSize);
      } catch {
        w.app.kill('SIGBUS');
      }
    }
  }

  /** Waiting faults not yet granted, for tests and stats. */
  get waiting(): number {
    let n = 0;
    for (const l of this.waiters.values()) n += l.length;
    return n;
  }

  // ---- cache limit ---------------------------------------------------------------

  private noteResident(page: number): void {
    this.resident++;
    this.residentQueue.push(page);
  }

  private enforceCacheLimit(): void {
    let scanned = 0;
    const max = this.residentQueue.length - this.residentHead;
    while (this.resident > this.cacheLimitPages && scanned++ < max) {
      const page = this.residentQueue[this.residentHead++]!;
      // Stale entries (dropped since) and pages with faults in flight are skipped;
      // a busy page goes to the back of the queue.
      if (this.state[page] === PageState.Invalid) continue;
      if (this.waiters.has(page)) {
        this.residentQueue.push(page);
        continue;
      }
      if (!this.engine.evict(page)) {
        this.residentQueue.push(page); // in a transaction: try it again later
        continue;
      }
      this.counters.evictions++;
    }
    if (this.residentHead > 4096 && this.residentHead * 2 > this.residentQueue.length) {
      this.residentQueue = this.residentQueue.slice(this.residentHead);
      this.residentHead = 0;
    }
  }

  // ---- apps ----------------------------------------------------------------------

  addApp(app: AppLink): void {
    this.apps.set(app.id, app);
  }

  /** Forgets an app (it exited or detached): its faults no longer wait for anything. */
  removeApp(app: AppLink): void {
    this.apps.delete(app.id);
    this.pending.delete(app);
    for (const [page, list] of this.waiters) {
      const rest = list.filter((w) => w.app !== app);
      if (rest.length === 0) this.waiters.delete(page);
      else this.waiters.set(page, rest);
    }
  }

  close(): void {
    this.cache.unmap();
    this.memfd.close();
  }
}

/** Sorts `items` by `key` and cuts them into runs of consecutive keys. */
function runs<T>(items: T[], key: (t: T) => number): T[][] {
  items.sort((a, b) => key(a) - key(b));
  const out: T[][] = [];
  let run: T[] = [];
  for (const item of items) {
    if (run.length > 0 && key(item) !== key(run[run.length - 1]!) + 1) {
      out.push(run);
      run = [];
    }
    run.push(item);
  }
  if (run.length > 0) out.push(run);
  return out;
}
