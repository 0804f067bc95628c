// Fault intake of one region on one node: the faults read from the apps' userfaultfds,
// the ones waiting for their page, and how each ends. A fault the protocol already
// permits is resolved at once (the page is in the memfd: no copy); the others wait,
// and the protocol is asked once per page and access. When the protocol grants, every
// waiter it now permits is resolved (mapped, counted, traced); when it cannot, they fail.
import type { UffdEvent } from '../uffd/index.js';
import type { Access, Grant, Homes, PageProtocol } from '../coherence/protocol.js';
import type { Logger } from '../log.js';
import type { FaultKind, FaultSource } from '../trace/fault-event.js';
import type { TraceLog } from './trace.js';
import { Fix, poison, type AppLink, type Mapper } from './mapper.js';

/** Faults that waited longer than this are logged. */
const LONG_WAIT_US = 1_000_000;

interface Waiter {
  app: AppLink;
  access: Access;
  /** The fault was on a write-protected page (the app has it mapped read-only). */
  wp: boolean;
  kind: FaultKind;
  /** process.hrtime.bigint() when the fault was read. */
  since: bigint;
  /** Readahead pages have no thread waiting: map ahead, trace nothing. */
  prefetch: boolean;
}

export interface IntakeCounters {
  /** Faults read from the apps' userfaultfds. */
  faults: number;
  /** Faults resolved, by where the page was: already in this node's cache (no copy),
   *  copied from this host's segment, or fetched from another host. */
  servedFromCache: number;
  servedFromSegment: number;
  servedFromRemote: number;
  /** Faults on pages already in the memfd (mapped without a copy). */
  minor: number;
  prefetched: number;
}

export class FaultIntake {
  readonly counters: IntakeCounters = { faults: 0, servedFromCache: 0, servedFromSegment: 0, servedFromRemote: 0, minor: 0, prefetched: 0 };
  private readonly waiters = new Map<number, Waiter[]>();

  constructor(
    private readonly region: { name: string; pages: number; pageSize: number; consistency: 'sequential' | 'release' },
    private readonly nodeId: number,
    private readonly protocol: PageProtocol,
    private readonly homes: Homes,
    private readonly mapper: Mapper,
    private readonly trace: TraceLog,
    private readonly log: Logger,
  ) {}

  /** Handles one batch of events from an app's userfaultfd. */
  onEvents(app: AppLink, events: UffdEvent[]): void {
    for (const e of events) {
      if (e.kind !== 'fault') continue; // remove/unmap: the app gave pages up; nothing to undo here
      const page = Math.floor((e.address - app.base) / this.region.pageSize);
      if (page < 0 || page >= this.region.pages) continue;
      this.counters.faults++;
      const access: Access = e.write ? 'write' : 'read';
      const kind = e.write ? 'write' : e.minor ? 'minor' : 'read';
      this.add(page, { app, access, wp: e.wp, kind, since: process.hrtime.bigint(), prefetch: false });
      if (!e.minor) this.readahead(app, page, access);
    }
  }

  private add(page: number, w: Waiter): void {
    if (this.protocol.permits(page, w.access)) {
      if (w.kind === 'read' && !w.prefetch) w.kind = 'minor'; // data was here: no copy
      this.resolve(page, w, 'cache', 0);
      return;
    }
    let list = this.waiters.get(page);
    const first = !list;
    if (!list) this.waiters.set(page, (list = []));
    const alreadyAsked = !first && list.some((x) => x.access === w.access || x.access === 'write');
    list.push(w);
    if (first || !alreadyAsked) this.protocol.request(page, w.access);
  }

  /**
   * Sequential misses grow a window (doubling to the readahead cap) of following pages
   * fetched and mapped ahead, so a scan costs a fraction of a fault per page. A run of
   * write faults (filling an array, or writing again rows others have read) takes the
   * following pages writable: they would be asked for one fault at a time otherwise,
   * each a round trip to their home.
   */
  private readahead(app: AppLink, page: number, access: Access): void {
    const end = Math.min(this.region.pages, page + app.readahead.miss(page));
    // Pages this node can already use that way are skipped (the run ends there). Under
    // first-touch placement a page nobody has touched yet is not taken either: that
    // would make this node its home by a guess, not by a touch.
    for (let p = page + 1; p < end && !this.protocol.permits(p, access) && !this.waiters.has(p) && this.homes.homeOf(p) !== undefined && !app.poisoned.has(p); p++) {
      this.counters.prefetched++;
      // A page readable here may be mapped read-only in the app: once writable, lifting
      // write-protect is what makes it so there (mapping it again would not).
      const wp = this.protocol.permits(p, 'read');
      this.add(p, { app, access, wp, kind: access, since: process.hrtime.bigint(), prefetch: true });
    }
  }

  private resolve(page: number, w: Waiter, source: FaultSource, wireBytes: number): void {
    const fix = w.wp ? Fix.Unprotect : this.protocol.permits(page, 'write') ? Fix.MapWritable : Fix.MapReadOnly;
    this.mapper.queue(w.app, page, fix);
    if (w.kind === 'minor') this.counters.minor++;
    if (w.prefetch) return;
    const waitUs = Number(process.hrtime.bigint() - w.since) / 1000;
    // A fault that waited seconds waited for a failure to be dealt with: say which.
    if (waitUs > LONG_WAIT_US) this.log('info', `app ${w.app.pid}: a ${w.kind} fault on page ${page} of region ${this.region.name} waited ${Math.round(waitUs / 1000)} ms (${source})`);
    if (source === 'cache') this.counters.servedFromCache++;
    else if (source === 'segment') this.counters.servedFromSegment++;
    else this.counters.servedFromRemote++;
    this.trace.record({
      t: Date.now(),
      node: this.nodeId,
      region: this.region.name,
      app: w.app.pid,
      page,
      kind: w.kind,
      source,
      waitUs,
      wireBytes,
      consistency: this.region.consistency,
    });
  }

  /**
   * The protocol permits more on `page`: resolve every waiter it now permits; the rest wait
   * on. A page the protocol fetched ahead is mapped into the apps no fault came from, as
   * readahead is, so that their next access costs no fault at all.
   */
  granted(page: number, grant: Grant): void {
    const list = this.waiters.get(page) ?? [];
    if (grant.ahead) {
      for (const app of this.mapper.apps.values()) {
        if (!list.some((w) => w.app === app)) this.resolve(page, { app, access: 'read', wp: false, kind: 'read', since: 0n, prefetch: true }, grant.source, 0);
      }
    }
    if (list.length === 0) return;
    const rest = list.filter((w) => !this.protocol.permits(page, w.access));
    for (const w of list) if (!rest.includes(w)) this.resolve(page, w, grant.source, grant.wireBytes);
    if (rest.length > 0) this.waiters.set(page, rest);
    else this.waiters.delete(page);
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
      this.log('warn', `app ${w.app.pid}: access to page ${page} of region ${this.region.name} fails with SIGBUS: ${reason}`);
      poison(w.app, page, this.region.pageSize);
    }
  }

  /** Faults in flight on `page`. */
  busy(page: number): boolean {
    return this.waiters.has(page);
  }

  /** Waiting faults not yet granted, for tests and stats. */
  get waiting(): number {
    let n = 0;
    for (const l of this.waiters.values()) n += l.length;
    return n;
  }

  /** An app went away: its faults no longer wait for anything. */
  forget(app: AppLink): void {
    for (const [page, list] of this.waiters) {
      const rest = list.filter((w) => w.app !== app);
      if (rest.length === 0) this.waiters.delete(page);
      else this.waiters.set(page, rest);
    }
  }
}
