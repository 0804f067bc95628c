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
import { Op, type AtomicDoneFn, type AtomicRequest, type NoticeExchange, type NoticeStore, type ProtocolContext, type ProtocolCounters, type RegionProtocol, type VersionStore } from '../protocol.js';
import { CacheAndHome } from '../cache-and-home.js';
import { ReleaseCache } from './cache.js';
import { ReleaseHome } from './home.js';
import { decodeNotices, VersionLog, Watermarks } from './notices.js';

/** Messages a page's home handles; the others go to caches. */
function isHomeOp(op: Op): boolean {
  return op === Op.Fetch || op === Op.Diff || op === Op.Atomic || op === Op.Stat;
}

/** The stores release consistency keeps in the segment; a region without them is a setup error. */
function stores(c: ProtocolContext): { versions: VersionStore; notices: NoticeStore } {
  const { versions, notices } = c;
  if (!versions || !notices) throw new NaplusError('EINVAL', `region #${c.region} runs release consistency but has no page versions or notice store in its segment`);
  return { versions, notices };
}

export class ReleaseProtocol extends CacheAndHome<ReleaseCache, ReleaseHome> implements RegionProtocol, NoticeExchange {
  /** As a home of locks and barriers: the newest version of each page released to it. */
  readonly board: VersionLog;
  private readonly boardTold: Watermarks;
  readonly notices: NoticeExchange = this;
  onIdle: (() => void) | undefined;

  constructor(private readonly c: ProtocolContext) {
    super(new ReleaseCache(c, stores(c).versions), new ReleaseHome(c, stores(c).versions), isHomeOp);
    this.board = new VersionLog(c.pages, stores(c).notices);
    this.boardTold = new Watermarks(this.board);
    this.cache.onIdle = () => this.onIdle?.();
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
