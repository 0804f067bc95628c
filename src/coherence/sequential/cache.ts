// The cache side of one region on one node: this node's state of every page (I/S/M),
// the requests it has made, and its answers to its homes. Page data and app mappings
// are the CacheMemory's business; this class decides when they change.
//
// Rules that keep it correct:
// - Write permission is taken from the apps (protect) before a dirty page is copied
//   out, so no store lands after the copy that goes home.
// - A dirty page goes home through the segment when the home shares our host (no page
//   data on the wire), in the message otherwise.
// - A page granted a moment ago is kept for `holdMs` before an Inv or Down takes it
//   away, so the app whose fault was just served gets to make its access: without
//   this, two nodes contending for a page can take it from each other forever without
//   either app ever getting its store in (livelock). Deferring is safe: a home sends
//   nothing else about a page until this node has acknowledged.
// - When a home is unreachable, requests for its pages wait (parked) for it to come
//   back, for at most `graceMs`; then the faults fail (the app gets SIGBUS), so nothing
//   hangs forever. Copies of its pages are dropped at once: its directory has
//   forgotten this node, so keeping them would break coherence.
import { Flag, Op, type Access, type CacheMemory, type Clock, type Homes, type Msg, type Topology, type Wire } from '../protocol.js';
import type { Logger } from '../../log.js';
import type { FaultSource } from '../../trace/fault-event.js';

/** This node's state of a page: no copy, a read-only copy, or the only (writable) copy. */
export const enum PageState {
  Invalid = 0,
  Shared = 1,
  Modified = 2,
}

const WANT_S = 1;
const WANT_M = 2;

export interface CacheOptions {
  /** How long a page granted to this node is kept before an Inv or Down is honoured. */
  holdMs: number;
  /** How long requests wait for an unreachable home before their faults fail. */
  graceMs: number;
}

export interface CacheCounters {
  /** Inv/Down answered late because the page had just been granted. */
  held: number;
  /** Dirty pages dropped because their home was lost (their writes are lost). */
  lostPages: number;
  /** Faults failed because the page's home stayed unreachable. */
  failedPages: number;
}

export class CacheController {
  /** This node's state of every page (PageState). */
  readonly state: Uint8Array;
  private readonly pending: Uint8Array;
  private readonly grantedAt: Float64Array;
  /** Inv/Down waiting for the hold time of their page, by page. */
  private readonly deferred = new Map<number, Msg>();
  /** Pages whose requests wait for their home to be reachable: home → page → since. */
  private readonly parked = new Map<number, Map<number, number>>();
  /** Homes whose parked requests have an expiry timer running. */
  private readonly expiring = new Set<number>();
  private readonly host: string;
  readonly counters: CacheCounters = { held: 0, lostPages: 0, failedPages: 0 };

  constructor(
    private readonly region: number,
    readonly pages: number,
    private readonly topology: Topology,
    private readonly wire: Wire,
    private readonly memory: CacheMemory,
    private readonly clock: Clock,
    private readonly options: CacheOptions,
    private readonly log: Logger,
  ) {
    this.state = new Uint8Array(pages);
    this.pending = new Uint8Array(pages);
    this.grantedAt = new Float64Array(pages).fill(-Infinity);
    this.host = topology.hostOf(wire.self);
  }

  permits(page: number, access: Access): boolean {
    const s = this.state[page]!;
    return s === PageState.Modified || (s === PageState.Shared && access === 'read');
  }

  /** A fault needs `page` readable or writable; the memory hears back through granted/failed. */
  request(page: number, access: Access): void {
    const s = this.state[page]!;
    const p = this.pending[page]!;
    if (access === 'read') {
      if (s !== PageState.Invalid || p !== 0) return; // an M request satisfies reads too
      this.pending[page] = WANT_S;
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

  /** Handles a message from a page's home. */
  receive(from: number, msg: Msg): void {
    const { page } = msg;
    if (this.homes.homeOf(page) !== from) {
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
      default:
        this.log('warn', `region #${this.region}: node ${from} sent op ${msg.op} to a cache; ignored`);
    }
  }

  private grant(msg: Msg): void {
    const { page } = msg;
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
      if (before === PageState.Modified) this.memory.protect(page);
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
    if (s === PageState.Modified) {
      this.memory.protect(page);
      ({ flags, data } = this.saveDirty(page));
    }
    if (msg.op === Op.Down) {
      if (s !== PageState.Invalid) {
        this.state[page] = PageState.Shared;
        flags |= Flag.Kept;
      }
    } else if (s !== PageState.Invalid) {
      this.memory.drop(page);
      this.state[page] = PageState.Invalid;
    }
    this.toHome(page, Op.Ack, flags, data);
  }

  /** A dirty page's bytes on their way home: through the shared segment, or in the message. */
  private saveDirty(page: number): { flags: number; data?: Uint8Array } {
    if (this.topology.hostOf(this.homes.homeOf(page)!) === this.host) {
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
    if (this.pending[page] !== 0 || this.deferred.has(page)) return false;
    const s = this.state[page]!;
    if (s === PageState.Invalid) return true;
    let flags = 0;
    let data: Uint8Array | undefined;
    if (s === PageState.Modified) {
      this.memory.protect(page);
      ({ flags, data } = this.saveDirty(page));
    }
    this.memory.drop(page);
    this.state[page] = PageState.Invalid;
    this.toHome(page, s === PageState.Modified ? Op.PutM : Op.PutS, flags, data);
    return true;
  }

  /** Clean stop: every dirty page goes home. Returns how many did. */
  flush(): number {
    let n = 0;
    for (let page = 0; page < this.pages; page++) {
      if (this.state[page] !== PageState.Modified || !this.wire.isUp(this.homes.homeOf(page)!)) continue;
      const held = this.deferred.get(page);
      if (held) {
        // No more holding: the Inv or Down it waited with takes the page home now.
        this.deferred.delete(page);
        this.answer(held);
      }
      if (this.state[page] === PageState.Modified) this.evict(page);
      n++;
    }
    return n;
  }

  /**
   * `node` is unreachable. Its directory forgets this node, so this node forgets its
   * pages: copies dropped (dirty ones are lost, and logged), requests parked until it
   * is back or the grace time is over.
   */
  peerDown(node: number): void {
    let lost = 0;
    for (let page = 0; page < this.pages; page++) {
      if (this.homes.homeOf(page) !== node) continue;
      this.deferred.delete(page);
      const s = this.state[page]!;
      if (s !== PageState.Invalid) {
        if (s === PageState.Modified) lost++;
        this.memory.drop(page);
        this.state[page] = PageState.Invalid;
      }
      if (this.pending[page] !== 0) this.park(node, page);
    }
    if (lost > 0) {
      this.counters.lostPages += lost;
      this.log('error', `region #${this.region}: lost node ${node} while holding ${lost} of its page(s) writable; those writes are lost`);
    }
  }

  /** `node` is reachable again: the requests parked for it go out. */
  peerUp(node: number): void {
    const parked = this.parked.get(node);
    if (!parked) return;
    this.parked.delete(node);
    for (const page of parked.keys()) {
      const p = this.pending[page]!;
      if (p & WANT_S) this.ask(page, Op.GetS);
      if (p & WANT_M) this.ask(page, Op.GetM);
    }
  }

  private park(home: number, page: number): void {
    let parked = this.parked.get(home);
    if (!parked) this.parked.set(home, (parked = new Map()));
    if (!parked.has(page)) parked.set(page, this.clock.now());
    if (!this.expiring.has(home)) {
      this.expiring.add(home);
      this.clock.after(this.options.graceMs, () => this.expire(home));
    }
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
    if (parked.size === 0) {
      this.parked.delete(home);
    } else {
      this.expiring.add(home);
      this.clock.after(oldest + this.options.graceMs - now, () => this.expire(home));
    }
  }
}
