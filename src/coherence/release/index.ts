// Release consistency: home-based lazy release consistency (HLRC) with multiple writers.
// A page may be written on several nodes at once; each writer keeps a twin, and at each
// release (unlock, barrier arrival, flush) sends its page's home a diff against the twin,
// which the home puts into the master copy. Write notices (page, version) travel with
// synchronizations, releaser → lock or barrier home → next acquirer, so an acquirer drops
// exactly the copies written since it last synchronized with their writers: no broadcast,
// no invalidation at write time. Programs free of data races that synchronize through
// Naplus locks and barriers see sequential consistency; Atomics on the mapped memory are
// atomic only within a node, so cross-node atomics go to the word's home (atomic()).
//
// This node's side of it in three parts: the cache (cache.ts), the home (home.ts), and the
// notice board it keeps as a home of locks and barriers (here: what it was told by
// releasers, kept in a NoticeStore so that a restarted lock home still tells the next
// holder what the last one wrote).
import { NaplusError } from '../../errors.js';
import { Op, type Access, type AtomicDoneFn, type AtomicRequest, type Completion, type Msg, type NoticeExchange, type ProtocolContext, type ProtocolCounters, type RegionProtocol } from '../protocol.js';
import { ReleaseCache } from './cache.js';
import { ReleaseHome } from './home.js';
import { decodeNotices, VersionLog, Watermarks } from './notices.js';

/** Messages a page's home handles; the others go to caches. */
function isHomeOp(op: Op): boolean {
  return op === Op.Fetch || op === Op.Diff || op === Op.Atomic || op === Op.Stat;
}

export class ReleaseProtocol implements RegionProtocol, NoticeExchange {
  readonly cache: ReleaseCache;
  readonly home: ReleaseHome;
  /** As a home of locks and barriers: the newest version of each page released to it. */
  readonly board: VersionLog;
  private readonly boardTold: Watermarks;
  readonly notices: NoticeExchange = this;
  onIdle: (() => void) | undefined;

  constructor(private readonly c: ProtocolContext) {
    const { versions, notices } = c;
    if (!versions || !notices) throw new NaplusError('EINVAL', `region #${c.region} runs release consistency but has no page versions or notice store in its segment`);
    this.cache = new ReleaseCache(c.region, c.pages, c.pageSize, c.topology, c.wire, c.memory, c.master, versions, c.clock, c.graceMs, c.log);
    this.home = new ReleaseHome(c.region, c.pages, c.topology, c.wire, c.master, versions, c.log);
    this.board = new VersionLog(c.pages, notices);
    this.boardTold = new Watermarks(this.board);
    this.cache.onIdle = () => this.onIdle?.();
  }

  permits(page: number, access: Access): boolean {
    return this.cache.permits(page, access);
  }

  request(page: number, access: Access): void {
    this.cache.request(page, access);
  }

  evict(page: number): boolean {
    return this.cache.evict(page);
  }

  receive(from: number, msg: Msg): void {
    if (isHomeOp(msg.op)) this.home.receive(from, msg);
    else this.cache.receive(from, msg);
  }

  release(done: Completion): void {
    this.cache.release(done);
  }

  atomic(request: AtomicRequest, done: AtomicDoneFn): void {
    this.cache.atomic(request, done);
  }

  // ---- write notices (NoticeExchange) ---------------------------------------------------

  outgoing(home: number): Uint8Array | undefined {
    return this.cache.outgoing(home);
  }

  absorb(_from: number, notices: Uint8Array): void {
    for (const [page, version] of decodeNotices(notices, this.c.pages)) this.board.raise(page, version);
  }

  incoming(to: number): Uint8Array | undefined {
    return this.boardTold.take(to);
  }

  acquire(notices: Uint8Array): void {
    this.cache.acquire(decodeNotices(notices, this.c.pages));
  }

  lockLost(reason: string): void {
    this.cache.lockLost(reason);
  }

  // ---- peers, stops, counters ----------------------------------------------------------

  peerDown(peer: number): void {
    this.boardTold.forget(peer);
    this.home.peerDown(peer);
    this.cache.peerDown(peer);
  }

  peerUp(peer: number): void {
    this.cache.peerUp(peer);
  }

  stop(): number {
    return this.cache.flush();
  }

  get openTransactions(): number {
    return this.cache.unconfirmed;
  }

  get counters(): ProtocolCounters {
    const { lostPages, failedPages, cleaned, twins, diffs, diffBytes, invalidations } = this.cache.counters;
    return { grants: this.home.counters.merged, recalls: 0, held: 0, lostPages, failedPages, cleaned, busyPages: 0, twins, diffs, diffBytes, invalidations };
  }
}
