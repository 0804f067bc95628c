// The cache side of one region on one node: this node's state of every page, the
// requests it has made, and its answers to its homes. Page data and app mappings are
// the CacheMemory's business; this class decides when they change.
//
// States (MESI, with the directory at the home): Invalid; Shared (a read-only copy);
// Exclusive (the only copy, clean: its bytes are in the master copy; mapped read-only,
// so the first write after a synchronization faults, and only then turns it Modified,
// with no message); Modified (the only copy, dirty).
//
// Rules that keep it correct:
// - Write permission is taken from the apps (protect) before a dirty page is copied
//   out, so no store lands after the copy that goes home.
// - A dirty page goes home through the segment when the home shares our host (no page
//   data on the wire), in the message otherwise.
// - A synchronization (release) writes every Modified page home and makes it Exclusive;
//   it is done once every one of them is in its master copy, so what an app wrote before
//   a barrier, an unlock or a flush survives the loss of this node.
// - A page granted a moment ago is kept for `holdMs` before an Inv or Down takes it
//   away, so the app whose fault was just served gets to make its access: without
//   this, two nodes contending for a page can take it from each other forever without
//   either app ever getting its store in (livelock). Deferring is safe: a home sends
//   nothing else about a page until this node has acknowledged.
// - When a home is unreachable, requests for its pages wait (parked) for it to come
//   back, for at most `graceMs`; then the faults fail (the app gets SIGBUS), so nothing
//   hangs forever.
// - A home whose process died (it restarts on its segment) forgot nothing that matters:
//   read copies are dropped, but the pages this node holds exclusively are kept, and
//   reported to the new process when it is up (Held), which takes them as this node's
//   again; so no write is lost with a home. A home that is only cut off (stopped,
//   partitioned) goes back to its master copies once its quarantine is over: every copy
//   of its pages is dropped here, and a dirty one is *lost* (the apps are told, with
//   SIGBUS at their next access, rather than left to read older bytes).
import { Flag, Op, type Access, type CacheMemory, type Clock, type Completion, type Homes, type Msg, type Topology, type Wire } from '../protocol.js';
import type { Logger } from '../../log.js';
import type { LossLog } from '../loss-log.js';
import type { FaultSource } from '../../trace/fault-event.js';

/** This node's state of a page. */
export const enum PageState {
  Invalid = 0,
  Shared = 1,
  Exclusive = 2,
  Modified = 3,
}

const WANT_S = 1;
const WANT_M = 2;

export interface CacheOptions {
  /** How long a page granted to this node is kept before an Inv or Down is honoured. */
  holdMs: number;
  /** How long requests (and synchronizations) wait for an unreachable home before they fail. */
  graceMs: number;
}

export interface CacheCounters {
  /** Inv/Down answered late because the page had just been granted. */
  held: number;
  /** Dirty pages dropped because their home was cut off (their writes since the last synchronization are lost). */
  lostPages: number;
  /** Faults failed because the page's home stayed unreachable. */
  failedPages: number;
  /** Pages written home at synchronizations. */
  cleaned: number;
}

/** A synchronization waiting for its pages to reach their master copies. */
interface Release {
  pages: Set<number>;
  /** Fences sent for it and not answered yet. */
  fences: number;
  done: Completion;
  /** A grace timer runs (a home went away meanwhile). */
  expiring: boolean;
}

export class CacheController {
  /** This node's state of every page (PageState). */
  readonly state: Uint8Array;
  private readonly pending: Uint8Array;
  /** When each page's oldest pending request was made: it waits for an unreachable home at most the grace time from then. */
  private readonly askedAt: Float64Array;
  private readonly grantedAt: Float64Array;
  /** Inv/Down waiting for the hold time of their page, by page. */
  private readonly deferred = new Map<number, Msg>();
  /** Pages whose requests wait for their home to be reachable: home → page → since. */
  private readonly parked = new Map<number, Map<number, number>>();
  /** Homes whose parked requests have an expiry timer running, and when it fires. */
  private readonly expiring = new Map<number, number>();
  /**
   * Pages sent home by a Clean not yet answered (Cleaned), with how many are on their way:
   * a page written again may be cleaned again before the first answer, and only the last
   * answer says its latest bytes are home.
   */
  private readonly cleaning = new Map<number, number>();
  private releases: Release[] = [];
  /**
   * Homes on other hosts this node sent page data to (answering an Inv or Down, or
   * evicting) since its last synchronization: that data is durable only once the home has
   * taken it in, so a synchronization fences each of them (Fence, answered by Fenced).
   */
  private readonly handedOff = new Map<number, Set<number>>();
  /** Fences sent to each home and not answered yet, in the order sent: the release waiting, the pages covered. */
  private readonly fencing = new Map<number, Array<{ r: Release; pages: Set<number> }>>();

  private readonly host: string;
  readonly counters: CacheCounters = { held: 0, lostPages: 0, failedPages: 0, cleaned: 0 };

  constructor(
    private readonly region: number,
    readonly pages: number,
    private readonly topology: Topology,
    private readonly wire: Wire,
    private readonly memory: CacheMemory,
    private readonly clock: Clock,
    private readonly options: CacheOptions,
    /** Where writes lost before they were durable are noted (every app's next synchronization fails). */
    private readonly losses: LossLog,
    private readonly log: Logger,
  ) {
    this.state = new Uint8Array(pages);
    this.pending = new Uint8Array(pages);
    this.askedAt = new Float64Array(pages);
    this.grantedAt = new Float64Array(pages).fill(-Infinity);
    this.host = topology.hostOf(wire.self);
  }

  permits(page: number, access: Access): boolean {
    const s = this.state[page]!;
    return access === 'read' ? s !== PageState.Invalid : s === PageState.Modified;
  }

  /** A fault needs `page` readable or writable; the memory hears back through granted/failed. */
  request(page: number, access: Access): void {
    const s = this.state[page]!;
    const p = this.pending[page]!;
    if (p === 0) this.askedAt[page] = this.clock.now();
    if (access === 'read') {
      if (s !== PageState.Invalid || p !== 0) return; // an M request satisfies reads too
      this.pending[page] = WANT_S;
    } else if (s === PageState.Exclusive) {
      // The only copy, clean: writing it makes it dirty, and nobody needs to be asked.
      this.state[page] = PageState.Modified;
      this.memory.granted(page, { source: 'cache', wireBytes: 0, arrived: false, upgrade: false });
      return;
    } else {
      if (s === PageState.Modified || p & WANT_M) return;
      this.pending[page] = p | WANT_M;
    }
    this.ask(page, access === 'read' ? Op.GetS : Op.GetM);
  }

  private ask(page: number, op: Op.GetS | Op.GetM): void {
    const home = this.homes.homeOf(page);
    if (home === undefined) {
      this.homes.resolve(page, () => this.ask(page, op), (reason) => this.giveUp(page, reason));
      return;
    }
    if (this.wire.isUp(home)) this.toHome(page, op, 0);
    else this.park(home, page);
  }

  /** Sends `op` about `page` to its home, with the page's slot (which first-touch homes need). */
  private toHome(page: number, op: Op, flags: number, data?: Uint8Array): void {
    this.wire.send(this.homes.homeOf(page)!, { op, flags, region: this.region, page, data, slot: this.homes.slotOf(page) });
  }

  private get homes(): Homes {
    return this.topology.homes;
  }

  private homedWith(page: number): boolean {
    return this.topology.hostOf(this.homes.homeOf(page)!) === this.host;
  }

  /** Handles a message from a page's home. */
  receive(from: number, msg: Msg): void {
    const { page } = msg;
    if (msg.op !== Op.Fenced && this.homes.homeOf(page) !== from) {
      this.log('warn', `region #${this.region}: node ${from} sent op ${msg.op} for page ${page}, which it does not home; ignored`);
      return;
    }
    switch (msg.op) {
      case Op.GrantS:
      case Op.GrantM:
        this.grant(msg);
        return;
      case Op.Inv:
      case Op.Down:
        if (this.held(msg)) return;
        this.answer(msg);
        return;
      case Op.Cleaned:
        this.cleaned(page);
        return;
      case Op.Fenced:
        this.fenced(from);
        return;
      case Op.Disown:
        this.disowned(from, page);
        return;
      default:
        this.log('warn', `region #${this.region}: node ${from} sent op ${msg.op} to a cache; ignored`);
    }
  }

  private grant(msg: Msg): void {
    const { page } = msg;
    this.confirmHandoff(this.homes.homeOf(page)!, page);
    const before = this.state[page]! as PageState;
    let source: FaultSource = 'cache';
    let wireBytes = 0;
    if (msg.flags & Flag.Data) {
      this.memory.install(page, msg.data!);
      source = 'remote';
      wireBytes = msg.wireBytes ?? msg.data!.length;
    } else if (msg.flags & Flag.Segment) {
      this.memory.fillFromSegment(page);
      source = 'segment';
    } else if (before === PageState.Invalid) {
      // The home thought we had a copy; we do not. Cannot happen with FIFO links and
      // Puts for every drop; ask again rather than map garbage.
      this.log('error', `region #${this.region}: page ${page} granted without data to a node that has no copy; asking again`);
      this.ask(page, msg.op === Op.GrantS ? Op.GetS : Op.GetM);
      return;
    }
    let level: PageState;
    if (msg.op === Op.GrantS) {
      // A copy we held exclusively stays ours (the home answers an owner's GetS with GrantM).
      if (before >= PageState.Exclusive) this.memory.protect(page);
      level = PageState.Shared;
      this.pending[page]! &= ~WANT_S;
    } else {
      level = PageState.Modified;
      this.pending[page] = 0;
    }
    this.state[page] = level;
    this.grantedAt[page] = this.clock.now();
    this.memory.granted(page, { source, wireBytes, arrived: before === PageState.Invalid, upgrade: before === PageState.Shared && level === PageState.Modified });
  }

  private held(msg: Msg): boolean {
    const wait = this.grantedAt[msg.page]! + this.options.holdMs - this.clock.now();
    if (wait <= 0) return false;
    this.counters.held++;
    this.deferred.set(msg.page, msg);
    this.clock.after(wait, () => {
      // Gone if the home was lost meanwhile (its copy was dropped then).
      if (this.deferred.get(msg.page) !== msg) return;
      this.deferred.delete(msg.page);
      this.answer(msg);
    });
    return true;
  }

  private answer(msg: Msg): void {
    const { page } = msg;
    const s = this.state[page]!;
    let flags = 0;
    let data: Uint8Array | undefined;
    // An Exclusive page is write-protected in the apps already, and clean: nothing to save.
    if (s === PageState.Modified) ({ flags, data } = this.saveDirty(page));
    if (msg.op === Op.Down) {
      if (s !== PageState.Invalid) {
        this.state[page] = PageState.Shared;
        flags |= Flag.Kept;
      }
    } else if (s !== PageState.Invalid) {
      this.memory.drop(page);
      this.state[page] = PageState.Invalid;
    }
    this.handOff(page, Op.Ack, flags, data);
  }

  /** Sends `op` home; with data, the home is one a synchronization must fence. */
  private handOff(page: number, op: Op, flags: number, data: Uint8Array | undefined): void {
    if (data) {
      const home = this.homes.homeOf(page)!;
      let pages = this.handedOff.get(home);
      if (!pages) this.handedOff.set(home, (pages = new Set()));
      pages.add(page);
    }
    this.toHome(page, op, flags, data);
  }

  /** A grant of `page` from its home: it took in all we sent before (FIFO), the page's data we handed it too. */
  private confirmHandoff(home: number, page: number): void {
    this.handedOff.get(home)?.delete(page);
    for (const f of this.fencing.get(home) ?? []) f.pages.delete(page);
  }

  /** A dirty page's bytes on their way home (apps may no longer write it): through the shared segment, or in the message. */
  private saveDirty(page: number): { flags: number; data?: Uint8Array } {
    this.memory.protect(page);
    if (this.homedWith(page)) {
      this.memory.writeBack(page);
      return { flags: 0 };
    }
    return { flags: Flag.Data, data: this.memory.copyOut(page) };
  }

  /**
   * Gives `page` up under cache pressure (dirty data goes home first). Returns false
   * when the page is in a transaction and cannot go now.
   */
  evict(page: number): boolean {
    if (this.pending[page] !== 0 || this.deferred.has(page) || this.cleaning.has(page)) return false;
    const s = this.state[page]!;
    if (s === PageState.Invalid) return true;
    // A page held for a home that is away stays: its home must hear of it, its data must reach it.
    if (s >= PageState.Exclusive && !this.wire.isUp(this.homes.homeOf(page)!)) return false;
    let flags = 0;
    let data: Uint8Array | undefined;
    if (s === PageState.Modified) ({ flags, data } = this.saveDirty(page));
    this.memory.drop(page);
    this.state[page] = PageState.Invalid;
    // The home must hear that its owner gave the page up, dirty or clean.
    this.handOff(page, s >= PageState.Exclusive ? Op.PutM : Op.PutS, flags, data);
    return true;
  }

  // ---- synchronization ---------------------------------------------------------------

  /**
   * Writes every Modified page home, keeping it Exclusive, and fences every home that
   * was handed data since the last synchronization; `done` once all of it is in the
   * master copies (or with why not, should a home stay away past the grace time).
   */
  release(done: Completion): void {
    const r: Release = { pages: new Set(), fences: 0, done, expiring: false };
    for (let page = 0; page < this.pages; page++) {
      if (this.state[page] !== PageState.Modified) continue;
      if (this.homedWith(page)) {
        this.memory.protect(page);
        this.memory.writeBack(page);
        this.state[page] = PageState.Exclusive;
        this.counters.cleaned++;
      } else {
        // Sent now, or once its home is back (peerUp); the release fails if it is not in time.
        if (this.wire.isUp(this.homes.homeOf(page)!)) this.clean(page);
        r.pages.add(page);
      }
    }
    for (const page of this.cleaning.keys()) r.pages.add(page); // sent by an earlier release: this one waits for it too
    // A home an earlier release's fence has not come back from is fenced again: its answer
    // comes after that one's, so this release, too, waits for the data it covers.
    const unanswered = [...this.fencing].filter(([, q]) => q.length > 0).map(([home]) => home);
    for (const home of new Set([...this.handedOff.keys(), ...unanswered])) {
      this.wire.send(home, { op: Op.Fence, flags: 0, region: this.region, page: 0 });
      const q = this.fencing.get(home);
      const fence = { r, pages: this.handedOff.get(home) ?? new Set<number>() };
      if (q) q.push(fence);
      else this.fencing.set(home, [fence]);
      r.fences++;
    }
    this.handedOff.clear();
    if (r.pages.size === 0 && r.fences === 0) return done();
    this.releases.push(r);
    for (const page of r.pages) if (!this.wire.isUp(this.homes.homeOf(page)!)) this.expireLater(r);
  }

  /** Sends a Modified page's bytes to its home on another host; the page is Exclusive from now on. */
  private clean(page: number): void {
    this.memory.protect(page);
    this.toHome(page, Op.Clean, Flag.Data, this.memory.copyOut(page));
    this.state[page] = PageState.Exclusive;
    this.cleaning.set(page, (this.cleaning.get(page) ?? 0) + 1);
  }

  private cleaned(page: number): void {
    const n = this.cleaning.get(page);
    if (n === undefined) return;
    if (n > 1) return void this.cleaning.set(page, n - 1);
    this.cleaning.delete(page);
    this.counters.cleaned++;
    this.settleReleases(page);
  }

  /** `page` needs no more waiting for (it is home, or it failed): completes the releases it held up. */
  private settleReleases(page: number, error?: string): void {
    for (const r of [...this.releases]) {
      if (!r.pages.has(page)) continue;
      if (error !== undefined) this.finish(r, error);
      else {
        r.pages.delete(page);
        this.finishIfDone(r);
      }
    }
  }

  private fenced(home: number): void {
    const f = this.fencing.get(home)?.shift();
    if (!f) return;
    f.r.fences--;
    this.finishIfDone(f.r);
  }

  private finishIfDone(r: Release): void {
    if (r.pages.size === 0 && r.fences === 0) this.finish(r);
  }

  private finish(r: Release, error?: string): void {
    const i = this.releases.indexOf(r);
    if (i < 0) return;
    this.releases.splice(i, 1);
    r.done(error);
  }

  /** A release waits at most the grace time for homes that went away. */
  private expireLater(r: Release): void {
    if (r.expiring) return;
    r.expiring = true;
    this.clock.after(this.options.graceMs, () => {
      const page = r.pages.values().next().value;
      if (page === undefined) return;
      this.finish(r, `page ${page} of region #${this.region} could not be written home: its home, node ${this.homes.homeOf(page)}, has been unreachable for ${this.options.graceMs} ms`);
    });
  }

  /** Clean stop: every page held exclusively goes home. Returns how many did. */
  flush(): number {
    let n = 0;
    for (let page = 0; page < this.pages; page++) {
      if (this.state[page]! < PageState.Exclusive || !this.wire.isUp(this.homes.homeOf(page)!)) continue;
      const held = this.deferred.get(page);
      if (held) {
        // No more holding: the Inv or Down it waited with takes the page home now.
        this.deferred.delete(page);
        this.answer(held);
      }
      if (this.cleaning.delete(page)) this.settleReleases(page, 'this node is stopping');
      if (this.state[page]! >= PageState.Exclusive) this.evict(page);
      n++;
    }
    return n;
  }

  // ---- homes lost and back -------------------------------------------------------------

  /**
   * `node` is unreachable. If its process is gone, it comes back on its segment
   * and asks who holds what: the pages held exclusively here stay (reported when it is
   * back), read copies go. If it is only cut off, it goes back to its master copies after
   * its quarantine: every copy goes, and dirty ones are lost (their apps told). Requests
   * wait for it (parked) for at most the grace time.
   */
  peerDown(node: number, gone: boolean): void {
    let lost = 0;
    for (let page = 0; page < this.pages; page++) {
      if (this.homes.homeOf(page) !== node) continue;
      this.deferred.delete(page);
      const s = this.state[page]!;
      const unconfirmed = this.cleaning.delete(page); // its Clean may never have arrived
      if (gone && s >= PageState.Exclusive) {
        if (unconfirmed) this.state[page] = PageState.Modified; // not known to be home: dirty still
      } else if (s === PageState.Modified || unconfirmed) {
        lost++;
        this.lose(page, `its home, node ${node}, was cut off while this node held the page dirty; the writes made since the last synchronization are lost`);
        this.settleReleases(page, `page ${page} of region #${this.region} could not be written home: its home, node ${node}, was cut off`);
      } else if (s !== PageState.Invalid) {
        this.memory.drop(page);
        this.state[page] = PageState.Invalid;
      }
      if (this.pending[page] !== 0) this.park(node, page);
    }
    for (const r of this.releases) for (const page of r.pages) if (this.homes.homeOf(page) === node) this.expireLater(r);
    // Data it was handed and had not confirmed (no fence answered since, no grant of the
    // page again) may be lost: those pages are lost here too, so that no app rereads them
    // from the master copy unknowing, and every app hears of it at its next synchronization.
    const why = `node ${node}, which was sent data of this node's, was lost before it said it had taken it in`;
    const unconfirmed = new Set([...(this.handedOff.get(node) ?? []), ...(this.fencing.get(node) ?? []).flatMap((f) => [...f.pages])]);
    if (this.handedOff.delete(node) || this.fencing.has(node)) this.losses.note(why);
    for (const f of this.fencing.get(node) ?? []) this.finish(f.r, why);
    this.fencing.delete(node);
    for (const page of unconfirmed) if (this.state[page]! < PageState.Exclusive) this.lose(page, `${why} (this page's writes)`);
    if (lost > 0) {
      this.counters.lostPages += lost;
      this.losses.note(`node ${node} was cut off while this node held ${lost} of its page(s) dirty`);
      this.log('error', `region #${this.region}: node ${node} was cut off while this node held ${lost} of its page(s) dirty; the writes since the last synchronization are lost (apps get SIGBUS at their next access)`);
    }
  }

  /**
   * `node` is reachable. First it hears which of its pages this node holds exclusively
   * (a restarted home takes them as ours again; any other ignores the report), then the
   * writes-back and requests that waited for it go out.
   */
  peerUp(node: number): void {
    for (let page = 0; page < this.pages; page++) {
      if (this.state[page]! >= PageState.Exclusive && this.homes.homeOf(page) === node) this.toHome(page, Op.Held, 0);
    }
    this.wire.send(node, { op: Op.Reported, flags: 0, region: this.region, page: 0 });
    for (const r of this.releases) {
      for (const page of r.pages) {
        if (this.homes.homeOf(page) === node && !this.cleaning.has(page) && this.state[page] === PageState.Modified) this.clean(page);
      }
    }
    const parked = this.parked.get(node);
    if (!parked) return;
    this.parked.delete(node);
    for (const page of parked.keys()) {
      const p = this.pending[page]!;
      if (p & WANT_S) this.ask(page, Op.GetS);
      if (p & WANT_M) this.ask(page, Op.GetM);
    }
  }

  /** Our report of `page` came after its restarted home had given up waiting for it: the page is lost here. */
  private disowned(home: number, page: number): void {
    if (this.state[page]! < PageState.Exclusive) return;
    const dirty = this.state[page] === PageState.Modified;
    this.cleaning.delete(page);
    if (dirty) {
      this.counters.lostPages++;
      this.losses.note(`node ${home} restarted and gave up page ${page} before this node could report it`);
      this.lose(page, `its home, node ${home}, restarted and stopped waiting for this node before it could report the page; the writes made since the last synchronization are lost`);
    } else {
      this.memory.drop(page);
      this.state[page] = PageState.Invalid;
    }
    this.settleReleases(page, `page ${page} of region #${this.region} could not be written home: its home, node ${home}, gave it up`);
  }

  /**
   * The request for `page` waits for its home to be reachable. The grace time counts from
   * when the request was made, not from now: a fault that already waited for a home
   * that went silent does not wait a second grace time.
   */
  /** Drops `page` (if held) and poisons it for every app: their next access takes SIGBUS. */
  private lose(page: number, reason: string): void {
    if (this.state[page] !== PageState.Invalid) this.memory.drop(page);
    this.state[page] = PageState.Invalid;
    this.memory.lose(page, reason);
  }

  private park(home: number, page: number): void {
    let parked = this.parked.get(home);
    if (!parked) this.parked.set(home, (parked = new Map()));
    if (!parked.has(page)) parked.set(page, this.pending[page] !== 0 ? this.askedAt[page]! : this.clock.now());
    this.expireAt(home, parked.get(page)! + this.options.graceMs);
  }

  /** Makes sure the parked requests for `home` are looked at by `at`. */
  private expireAt(home: number, at: number): void {
    if ((this.expiring.get(home) ?? Infinity) <= at) return;
    this.expiring.set(home, at);
    this.clock.after(Math.max(0, at - this.clock.now()), () => {
      if (this.expiring.get(home) === at) this.expire(home);
    });
  }

  /** The faults waiting on `page` fail: it cannot be had. */
  private giveUp(page: number, reason: string): void {
    this.pending[page] = 0;
    this.counters.failedPages++;
    this.memory.failed(page, reason);
  }

  /** Fails the requests that waited for `home` longer than the grace time. */
  private expire(home: number): void {
    this.expiring.delete(home);
    const parked = this.parked.get(home);
    if (!parked) return;
    const now = this.clock.now();
    let oldest = Infinity;
    for (const [page, since] of parked) {
      if (now - since < this.options.graceMs) {
        oldest = Math.min(oldest, since);
        continue;
      }
      parked.delete(page);
      this.giveUp(page, `its home, node ${home}, has been unreachable for ${Math.round(now - since)} ms`);
    }
    if (parked.size === 0) this.parked.delete(home);
    else this.expireAt(home, oldest + this.options.graceMs);
  }
}
