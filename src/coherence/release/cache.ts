// The cache side of a release-consistent region on one node: this node's copy of each
// page, the twins of the pages its apps write, the diffs on their way home, and what the
// node knows of pages' versions (its write notices).
//
// States: Invalid; ReadOnly (a copy, write-protected in the apps); Writable (a copy the
// apps write, with a twin: the page as it was after the last release, or when the page
// arrived). A write fault on a ReadOnly page makes the twin here, with no message; a fault
// on an Invalid page fetches it: straight from the segment when its home shares this host,
// from its home otherwise. Each copy remembers the version it is (`have`).
//
// Rules that keep it correct:
// - A release (unlock, barrier arrival, flush) diffs every Writable page against its twin
//   and sends the diff to the page's home; it is done once every diff this node sent so
//   far is in its master copy (Diffed). So what an app wrote before a synchronization
//   survives the loss of this node, as in sequential mode. A page homed on this host needs
//   no message: this node puts its diff into the master copy in the segment itself, and
//   bumps the page's version there (atomically: the home, and the host's other nodes, do
//   the same). A page stays Writable across releases, the diffed copy its new twin, until
//   it has gone a few releases unwritten: the next write costs no fault (write-protecting
//   and faulting again every page of a grid written every other sweep dominated Jacobi).
// - Write permission is taken from the apps (protect) before a copy that is then dropped
//   is diffed, so no store lands between the diff and the drop.
// - Acquires (a lock granted, a barrier passed) bring write notices; every copy older
//   than its page's notice is dropped (a Writable one sends its diff first), so the next
//   access fetches a master copy that has the notified writes (fetched at once, in fact,
//   the page having been in use). Copies that no notice touches stay, however old: a
//   data-race-free program reads nothing it did not synchronize for.
// - A fetched copy older than a notice already heard (the answer crossed the acquire) is
//   fetched again. A copy straight from the segment is never older: a notice exists only
//   once its diff is in the master copy. But a page with a diff of ours on its way home
//   comes from the home (the Fetch follows the diff on the link), not the segment.
// - Diffs on their way to other hosts, and what a release waits for, are outbox.ts's
//   business (with what happens to them when their home goes down); a diff that will
//   never get home loses the page it came from here (apps get SIGBUS).
// - A home that restarts loses nothing it confirmed (master copies and versions are in
//   its segment), so copies and twins stay across it.
import { Flag, Op, type Access, type AtomicDoneFn, type AtomicRequest, type CacheMemory, type Completion, type Homes, type MasterStore, type Msg, type ProtocolContext, type Topology, type VersionStore, type Wire } from '../protocol.js';
import type { Logger } from '../../log.js';
import type { FaultSource } from '../../trace/fault-event.js';
import { applyDiff, makeDiff, WHOLE } from './diff.js';
import { VersionLog, Watermarks } from './notices.js';
import { Parking } from './parking.js';
import { DiffOutbox } from './outbox.js';
import { AtomicCalls } from './atomic-calls.js';

/**
 * Releases a Writable page may go unchanged before it is write-protected again; doubled
 * (up to the cap) each time a page so protected is written again: a page rewritten with
 * the same values (a grid's cells the computation has not reached yet) must not fault
 * every few releases.
 */
const IDLE_RELEASES = 3;
const MAX_IDLE_RELEASES = 192;
/** Most pages an acquire fetches again right away, of those its notices made stale. */
const REFRESH_PAGES = 256;

export const enum PageState {
  Invalid = 0,
  ReadOnly = 1,
  Writable = 2,
}

export interface ReleaseCacheCounters {
  twins: number;
  diffs: number;
  diffBytes: number;
  /** Copies dropped because a write notice made them stale. */
  invalidations: number;
  /** Copies fetched again: the first answer was older than a notice heard meanwhile. */
  refetches: number;
  /** Pages whose writes were lost here (a home given up on, a lock lost). */
  lostPages: number;
  /** Faults failed because the page's home stayed unreachable. */
  failedPages: number;
  /** Diffs confirmed in their master copies. */
  cleaned: number;
}

export class ReleaseCache {
  readonly state: Uint8Array;
  /** The version each copy is (valid while the page is not Invalid). */
  readonly have: Uint32Array;
  /** Bumped whenever a page arrives: tells a copy from a later one. */
  private readonly copyGen: Uint32Array;
  private readonly fetching: Uint8Array;
  private readonly wantWrite: Uint8Array;
  /** Fetched with no fault waiting (an acquire's refresh): mapped into the apps on arrival. */
  private readonly ahead: Uint8Array;
  /** Releases each Writable page has gone unchanged, how many it may (see IDLE_RELEASES), and whether it was last protected for that. */
  private readonly idle: Uint8Array;
  private readonly idleLimit: Uint8Array;
  private readonly idled: Uint8Array;
  /** Where a release copies each page it diffs. */
  private readonly scratch: Uint8Array;
  private readonly twins = new Map<number, Uint8Array>();
  /** What this node knows of pages' versions: its own diffs' and those acquires brought. */
  readonly known: VersionLog;
  /** Per lock or barrier home: what it has been told of `known`. */
  private readonly told: Watermarks;
  /** Diffs on their way to other hosts. */
  private readonly outbox: DiffOutbox;
  /** Fetches waiting for their home to be reachable. */
  private readonly parking: Parking;
  private readonly atomics: AtomicCalls;
  /** Why writes were lost since the last synchronization: the next one fails, saying so. */
  private losses: string[] = [];
  private readonly host: string;
  readonly counters: ReleaseCacheCounters = { twins: 0, diffs: 0, diffBytes: 0, invalidations: 0, refetches: 0, lostPages: 0, failedPages: 0, cleaned: 0 };

  private readonly region: number;
  readonly pages: number;
  private readonly topology: Topology;
  private readonly wire: Wire;
  private readonly memory: CacheMemory;
  private readonly master: MasterStore;
  private readonly log: Logger;

  constructor(c: ProtocolContext, private readonly versions: VersionStore) {
    ({ region: this.region, pages: this.pages, topology: this.topology, wire: this.wire, memory: this.memory, master: this.master, log: this.log } = c);
    const { region, pages, pageSize, topology, wire, clock, graceMs, log } = c;
    this.state = new Uint8Array(pages);
    this.have = new Uint32Array(pages);
    this.copyGen = new Uint32Array(pages);
    this.fetching = new Uint8Array(pages);
    this.wantWrite = new Uint8Array(pages);
    this.ahead = new Uint8Array(pages);
    this.idle = new Uint8Array(pages);
    this.idleLimit = new Uint8Array(pages).fill(IDLE_RELEASES);
    this.idled = new Uint8Array(pages);
    this.scratch = new Uint8Array(pageSize);
    this.known = new VersionLog(pages);
    this.told = new Watermarks(this.known);
    this.host = topology.hostOf(wire.self);
    this.parking = new Parking(clock, graceMs, (page, home, waited) => this.giveUp(page, `its home, node ${home}, has been unreachable for ${Math.round(waited)} ms`));
    this.outbox = new DiffOutbox(region, pages, topology.homes, wire, clock, graceMs, log, {
      confirmed: (page, version, current, copy) => this.confirmed(page, version, current, copy),
      learnt: (page, version) => this.known.raise(page, version),
      lost: (page, copy, why) => this.loseCopy(page, copy, why),
      loss: (why) => this.losses.push(why),
    });
    this.atomics = new AtomicCalls(region, pageSize, topology.homes, wire, clock, graceMs, log);
  }

  /** Called when the last diff on its way home is confirmed (a stop waits for this). */
  set onIdle(fn: (() => void) | undefined) {
    this.outbox.onIdle = fn;
  }

  private get homes(): Homes {
    return this.topology.homes;
  }

  private homedWith(page: number): boolean {
    return this.topology.hostOf(this.homes.homeOf(page)!) === this.host;
  }

  /** Diffs on their way home (a stop waits for them). */
  get unconfirmed(): number {
    return this.outbox.unconfirmed;
  }

  permits(page: number, access: Access): boolean {
    const s = this.state[page]!;
    return access === 'read' ? s !== PageState.Invalid : s === PageState.Writable;
  }

  request(page: number, access: Access): void {
    const s = this.state[page]!;
    if (access === 'write') {
      if (s === PageState.Writable) return;
      if (s === PageState.ReadOnly) {
        this.makeTwin(page, this.memory.copyOut(page));
        this.memory.granted(page, { source: 'cache', wireBytes: 0, arrived: false, upgrade: true });
        return;
      }
      this.wantWrite[page] = 1;
    } else if (s !== PageState.Invalid) {
      return;
    }
    if (this.fetching[page]) return;
    this.fetching[page] = 1;
    this.fetch(page);
  }

  private makeTwin(page: number, twin: Uint8Array): void {
    this.twins.set(page, twin);
    this.state[page] = PageState.Writable;
    this.idle[page] = 0;
    if (this.idled[page]) this.idleLimit[page] = Math.min(MAX_IDLE_RELEASES, this.idleLimit[page]! * 2);
    this.idled[page] = 0;
    this.counters.twins++;
  }

  private fetch(page: number): void {
    const home = this.homes.homeOf(page);
    if (home === undefined) {
      this.homes.resolve(page, () => this.fetch(page), (reason) => this.giveUp(page, reason));
      return;
    }
    if (this.homedWith(page) && this.outbox.inflight(page) === 0) {
      const version = this.versions.read(page);
      if (version >= this.known.get(page)) {
        this.memory.fillFromSegment(page);
        this.arrive(page, version, 'segment', 0, undefined);
        return;
      }
      this.log('warn', `region #${this.region}: page ${page} is at version ${version} in the segment, older than notice ${this.known.get(page)}; asking its home`);
    }
    if (this.wire.isUp(home)) this.toHome(page, Op.Fetch);
    else this.parking.park(home, page);
  }

  private toHome(page: number, op: Op): void {
    this.wire.send(this.homes.homeOf(page)!, { op, flags: 0, region: this.region, page, slot: this.homes.slotOf(page) });
  }

  private arrive(page: number, version: number, source: FaultSource, wireBytes: number, data: Uint8Array | undefined): void {
    this.fetching[page] = 0;
    this.have[page] = version;
    this.copyGen[page]++;
    if (this.wantWrite[page]) {
      this.wantWrite[page] = 0;
      this.makeTwin(page, data ?? this.memory.copyOut(page));
    } else {
      this.state[page] = PageState.ReadOnly;
    }
    const ahead = this.ahead[page] === 1;
    this.ahead[page] = 0;
    this.memory.granted(page, { source, wireBytes, arrived: true, upgrade: false, ahead });
  }

  receive(from: number, msg: Msg): void {
    if (this.homes.homeOf(msg.page) !== from) {
      this.log('warn', `region #${this.region}: node ${from} sent op ${msg.op} for page ${msg.page}, which it does not home; ignored`);
      return;
    }
    switch (msg.op) {
      case Op.Page:
        return this.page(msg);
      case Op.Diffed:
        return this.outbox.diffed(from, msg);
      case Op.AtomicDone:
        return this.atomics.answered(msg);
      case Op.Stated:
        return this.outbox.stated(msg);
      default:
        this.log('warn', `region #${this.region}: node ${from} sent op ${msg.op} to a cache; ignored`);
    }
  }

  private page(msg: Msg): void {
    const { page } = msg;
    if (!this.fetching[page]) {
      this.log('debug', `region #${this.region}: page ${page} arrived unasked; ignored`);
      return;
    }
    const segment = (msg.flags & Flag.Segment) !== 0;
    // Copied from the segment now, so at least the version the segment says now.
    const version = segment ? Math.max(msg.version ?? 0, this.versions.read(page)) : (msg.version ?? 0);
    if (version < this.known.get(page)) {
      this.counters.refetches++;
      this.fetch(page);
      return;
    }
    if (segment) {
      this.memory.fillFromSegment(page);
      this.arrive(page, version, 'segment', 0, undefined);
    } else if (msg.flags & Flag.Data) {
      this.memory.install(page, msg.data!);
      this.arrive(page, version, 'remote', msg.wireBytes ?? msg.data!.length, msg.data);
    } else {
      this.log('warn', `region #${this.region}: page ${page} arrived without its data; asking again`);
      this.fetch(page);
    }
  }

  // ---- releases ----------------------------------------------------------------------

  /**
   * Diffs every Writable page home; `done` once every diff sent so far is in its master
   * copy. It fails if writes were lost since the last one, but does its work all the same:
   * the lock it is for passes on anyway, and what it covers must be home before.
   */
  release(done: Completion): void {
    const lost = this.losses;
    this.losses = [];
    const end: Completion = (err) => done(err ?? (lost.length > 0 ? lost.join('; ') : undefined));
    for (const page of [...this.twins.keys()]) this.publish(page, true);
    this.outbox.waitFor(end);
  }

  /**
   * Sends `page`'s diff home. `keep`: the page stays Writable, its new twin the copy just
   * diffed, unless it has gone unwritten for IDLE_RELEASES (apps go on writing unhindered:
   * a store that lands during the copy is in the copy or in the next diff, never lost);
   * otherwise it is write-protected first and goes back to ReadOnly.
   */
  private publish(page: number, keep: boolean): void {
    const twin = this.twins.get(page)!;
    if (!keep) this.memory.protect(page);
    const copy = this.scratch;
    this.memory.copyInto(page, copy);
    let diff = makeDiff(twin, copy);
    if (keep && diff === undefined && ++this.idle[page]! >= this.idleLimit[page]!) {
      // Unchanged for a while: it need not stay writable.
      keep = false;
      this.idled[page] = 1;
      this.memory.protect(page);
      this.memory.copyInto(page, copy);
      diff = makeDiff(twin, copy);
    }
    if (diff !== undefined) {
      this.idle[page] = 0;
      this.sendDiff(page, diff, copy);
    }
    if (keep) {
      if (diff !== undefined) twin.set(copy);
    } else {
      this.twins.delete(page);
      this.state[page] = PageState.ReadOnly;
    }
  }

  /** `copy`: the page as diffed (the scratch buffer: copied if it must outlive the call). */
  private sendDiff(page: number, diff: Uint8Array | typeof WHOLE, copy: Uint8Array): void {
    const whole = diff === WHOLE;
    this.counters.diffs++;
    this.counters.diffBytes += whole ? copy.length : diff.length;
    if (this.homedWith(page)) return this.putHome(page, diff, copy);
    const home = this.homes.homeOf(page)!;
    const msg: Msg = {
      op: Op.Diff, flags: whole ? Flag.Data : 0, region: this.region, page, slot: this.homes.slotOf(page), version: this.have[page],
      ...(whole ? { data: copy.slice() } : { extra: diff }),
    };
    this.outbox.send(home, page, this.copyGen[page]!, msg);
  }

  /** A diff of a page homed on this host goes straight into its master copy (see the header). */
  private putHome(page: number, diff: Uint8Array | typeof WHOLE, copy: Uint8Array): void {
    const master = this.master.view(page);
    if (diff === WHOLE) master.set(copy);
    else applyDiff(master, diff);
    const version = this.versions.bump(page);
    this.counters.cleaned++;
    this.known.raise(page, version);
    // Nobody else's diff came in between: this copy is that version.
    if (version - 1 === this.have[page] && this.state[page] !== PageState.Invalid) this.have[page] = version;
  }

  /** A diff of `page`, made from copy `copy`, is in its master copy at `version`. */
  private confirmed(page: number, version: number, current: boolean, copy: number): void {
    this.counters.cleaned++;
    this.known.raise(page, version);
    // The master copy is now exactly this copy (as it was diffed): it is that version.
    if (current && this.state[page] !== PageState.Invalid && this.copyGen[page] === copy) this.have[page] = Math.max(this.have[page]!, version);
  }

  /**
   * Writes of ours to `page` will not reach home: the apps are told (SIGBUS at their next
   * access), whether the copy they were made in is still here (copy `copy`) or was dropped
   * meanwhile (it would be fetched again without them). Writes made to it since the diff
   * that failed are lost too, and no failed synchronization covered them: the next one fails.
   */
  private loseCopy(page: number, copy: number, why: string): void {
    // A later copy came from the home after the diff (links are FIFO): nothing of ours is missing there.
    if (this.state[page] !== PageState.Invalid && this.copyGen[page] !== copy) return;
    const twin = this.twins.get(page);
    if (twin) {
      this.memory.protect(page);
      if (makeDiff(twin, this.memory.copyOut(page)) !== undefined) this.losses.push(`writes to page ${page} of region #${this.region} since the last synchronization were lost: ${why}`);
    }
    this.twins.delete(page);
    this.state[page] = PageState.Invalid;
    this.counters.lostPages++;
    this.memory.lose(page, why);
  }

  // ---- acquires ----------------------------------------------------------------------

  /** Notices an acquire brought: copies older than them go. */
  acquire(notices: Array<[number, number]>): void {
    let refresh = REFRESH_PAGES;
    for (const [page, version] of notices) {
      this.known.raise(page, version);
      if (this.state[page] === PageState.Invalid || this.have[page]! >= version) continue;
      this.invalidate(page);
      // It was in use here: most likely it is read again soon (a neighbour's edge row, a
      // result slot). Fetched now, it is on its way while the app goes on, and its fault
      // finds it in the cache (no round trip).
      if (refresh-- > 0 && !this.fetching[page]) {
        this.fetching[page] = 1;
        this.ahead[page] = 1;
        this.fetch(page);
      }
    }
  }

  private invalidate(page: number): void {
    if (this.state[page] === PageState.Writable) this.publish(page, false);
    this.memory.drop(page);
    this.state[page] = PageState.Invalid;
    this.counters.invalidations++;
  }

  /** What this node knows that sync home `home` has not had from it. */
  outgoing(home: number): Uint8Array | undefined {
    return this.told.take(home);
  }

  /**
   * An app of this node lost a lock with its home: the next holder may get it before this
   * node's next release, which would then put older words over the new holder's. So the
   * writes not published yet are lost instead (every app told: SIGBUS at its next access
   * to those pages, and the next synchronization fails). The node cannot tell which
   * writes the lock guarded.
   */
  lockLost(reason: string): void {
    let lost = 0;
    for (const [page, twin] of [...this.twins]) {
      this.memory.protect(page);
      const dirty = makeDiff(twin, this.memory.copyOut(page)) !== undefined;
      this.twins.delete(page);
      if (!dirty) {
        this.state[page] = PageState.ReadOnly;
        continue;
      }
      this.state[page] = PageState.Invalid;
      this.memory.lose(page, `${reason}; this node's writes not yet synchronized are lost`);
      lost++;
    }
    if (lost === 0) return;
    this.counters.lostPages += lost;
    this.losses.push(`${reason}, and the writes not yet synchronized in ${lost} page(s) of region #${this.region} were dropped`);
    this.log('error', `region #${this.region}: ${reason}; ${lost} page(s) with writes not yet synchronized are lost (apps get SIGBUS at their next access)`);
  }

  // ---- evictions and stops -----------------------------------------------------------

  /** Gives `page` up under cache pressure (a Writable page sends its diff first); false while it is being fetched. */
  evict(page: number): boolean {
    if (this.fetching[page]) return false;
    if (this.state[page] === PageState.Invalid) return true;
    if (this.state[page] === PageState.Writable) this.publish(page, false);
    this.memory.drop(page);
    this.state[page] = PageState.Invalid;
    return true;
  }

  /** Clean stop: every Writable page sends its diff. Returns how many did. */
  flush(): number {
    const pages = [...this.twins.keys()];
    for (const page of pages) this.publish(page, false);
    return pages.length;
  }

  // ---- atomics -----------------------------------------------------------------------

  atomic(request: AtomicRequest, done: AtomicDoneFn): void {
    this.atomics.call(request, done);
  }

  // ---- homes lost and back -------------------------------------------------------------

  /**
   * `node` is unreachable. Copies and twins of its pages stay (its master copies and their
   * versions are in its segment). Its diffs without an answer wait to be sent again (see
   * outbox.ts). Fetches wait for it, or come straight from the segment when it shares
   * this host. Atomic operations sent to it fail (see atomic-calls.ts).
   */
  peerDown(node: number): void {
    this.told.forget(node);
    this.outbox.peerDown(node);
    for (let page = 0; page < this.pages; page++) {
      if (this.fetching[page] && this.homes.homeOf(page) === node) {
        if (this.homedWith(page) && this.outbox.inflight(page) === 0) this.fetch(page);
        else this.parking.park(node, page);
      }
    }
    this.atomics.peerDown(node);
  }

  /** `node` is reachable: the diffs it did not confirm go first, then what waited for it. */
  peerUp(node: number): void {
    this.outbox.peerUp(node);
    this.atomics.peerUp(node);
    for (const page of this.parking.unpark(node)) if (this.fetching[page]) this.toHome(page, Op.Fetch);
  }

  private giveUp(page: number, reason: string): void {
    this.fetching[page] = 0;
    this.wantWrite[page] = 0;
    this.ahead[page] = 0;
    this.counters.failedPages++;
    this.memory.failed(page, reason);
  }
}
