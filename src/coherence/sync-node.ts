// Cluster-wide locks and barriers as one node sees them. Every lock or barrier name has
// a home node (a hash of the name over the cluster's nodes), whose SyncService keeps
// its queue; apps on other nodes reach it through their own node over the transport.
// A request waits for an unreachable home (a node still starting, say) for at most
// `graceMs`, then fails with EPEERLOST; when a home is lost, what waits there fails the
// same way, and a lock held there is lost with it (its holder is told).
//
// Release consistency: unlocks and barrier arrivals carry the releasing node's write
// notices to the lock's (or barrier's) home, and lock grants and barrier releases carry
// them on to the acquiring node, which drops the copies they make stale before its app
// goes on (sync-notices.ts; the notices themselves are the page protocol's business).
import { NaplusError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Message } from '../transport/index.js';
import { SyncService, type Done, type Party } from './sync-service.js';
import type { Clock, Completion, Links } from './protocol.js';
import type { LossLog } from './loss-log.js';
import type { Notices, SyncNotices } from './sync-notices.js';

export const SYNC_TYPE = 2;

export type Call =
  | { op: 'lock'; name: string }
  /** `lost`: the holder's writes could not all be made durable (see unlock). */
  | { op: 'unlock'; name: string; lost?: boolean }
  | { op: 'barrier'; name: string; parties: number };

/**
 * What travels: calls (with the calling app and a token), their outcome, and app
 * departures; unlocks and barrier arrivals, and lock grants and barrier releases, with
 * write notices when a region needs them.
 */
type SyncMessage =
  | (Call & { app: number; pid: number; token: number; notices?: Notices })
  | { op: 'done'; token: number; error?: { code: string; message: string }; notices?: Notices }
  | { op: 'gone'; app: number };

interface Pending {
  home: number;
  what: string;
  done: Done;
}

/** FNV-1a: the same home for a name on every node. */
function hash(name: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(name)) h = Math.imul(h ^ byte, 0x01000193);
  return h >>> 0;
}

function describe(call: Call): string {
  return `${call.op === 'barrier' ? 'barrier' : 'lock'} '${call.name}'`;
}

export class SyncNode {
  private readonly service = new SyncService();
  private readonly pending = new Map<number, Pending>();
  /** Calls waiting for their home to be reachable, by home. */
  private readonly parked = new Map<number, Array<{ send(): void; fail: Done }>>();
  /** Locks this node's apps hold at other homes: lost if the home is. */
  private readonly held = new Map<string, Party>();
  /** Unreachable peers whose apps' locks do not pass on yet, with the token of their incident. */
  private readonly quarantined = new Map<number, object>();
  /** Per app of this node: the losses it has been told of (or that were before it attached). */
  private readonly told = new Map<number, number>();
  private nextToken = 1;

  private readonly self: number;

  constructor(
    private readonly links: Links,
    private readonly nodes: readonly number[],
    private readonly clock: Clock,
    private readonly graceMs: number,
    /** How long locks held by an unreachable node's apps stay theirs (see peerDown). */
    private readonly quarantineMs: number,
    private readonly log: Logger,
    /** Tells a local app something it did not ask (its lock was lost with its home). */
    private readonly notify: (app: number, message: string, data: unknown) => void,
    /** Makes every write this node's apps made so far durable (coherence: NodeCoherence.release). */
    private readonly release: (done: Completion) => void,
    /** Writes this node lost before they were durable (coherence: NodeCoherence.losses). */
    private readonly losses: LossLog,
    /** Write notices, when a region needs them (coherence: NodeCoherence.notices). */
    private readonly notices?: SyncNotices,
  ) {
    this.self = links.self;
    links.handle(SYNC_TYPE, (peer, message) => this.receive(peer, message));
    links.onPeerDown((peer, gone) => this.peerDown(peer, gone));
    links.onPeerUp((peer) => this.peerUp(peer));
  }

  /** Locks and barriers homed on this node, for stats. */
  stats(): ReturnType<SyncService['describe']> {
    return this.service.describe();
  }

  homeOf(name: string): number {
    return this.nodes[hash(name) % this.nodes.length]!;
  }

  lock(party: Party, name: string, done: Done): void {
    this.call(party, { op: 'lock', name }, done);
  }

  /**
   * Releasing a lock is a synchronization: what the app wrote is durable before the lock
   * passes on. If it cannot be made so, the lock still passes on (its waiters would
   * otherwise wait for ever), and the call fails saying which writes may be lost.
   */
  unlock(party: Party, name: string, done: Done): void {
    this.durable(party, (err) => {
      // Release consistency: copies elsewhere may hold what the writes that did not make
      // it overwrote, and no notice can say which: the next holder is told, as if this one
      // had died (EOWNERDEAD). (Sequentially consistent pages have no such copies.)
      const lost = err !== undefined && this.notices !== undefined;
      this.call(party, { op: 'unlock', name, ...(lost && { lost }) }, (unlockErr) => done(unlockErr ?? err));
    });
  }

  /** Arriving at a barrier is a synchronization too. */
  barrier(party: Party, name: string, parties: number, done: Done): void {
    this.durable(party, (err) => (err ? done(err) : this.call(party, { op: 'barrier', name, parties }, done)));
  }

  /** A synchronization on its own (region.flush()). */
  flush(party: Party, done: Done): void {
    this.durable(party, done);
  }

  /** An app of this node attached: losses from before are none of its business. */
  appAttached(party: Party): void {
    this.told.set(party.app, this.losses.count);
  }

  /**
   * Makes this node's writes durable, then says whether they all are, for `party`: they
   * are not if the release failed, or if writes were lost since the app was last told.
   */
  private durable(party: Party, then: (err?: NaplusError) => void): void {
    this.release((err) => {
      const seen = this.told.get(party.app) ?? this.losses.count;
      this.told.set(party.app, this.losses.count);
      if (err !== undefined) return then(notDurable(err));
      if (seen < this.losses.count) return then(notDurable(this.losses.since(seen)));
      then();
    });
  }

  private call(party: Party, call: Call, done: Done): void {
    const home = this.homeOf(call.name);
    if (home === this.self) {
      if (call.op !== 'lock') this.absorb(this.self, this.notices?.outgoing(this.self));
      return this.serve(party, call, (err) => {
        if (!err && call.op !== 'unlock') this.notices?.acquire(this.notices.incoming(this.self) ?? {});
        done(err);
      });
    }
    this.remote(home, party, call, (err) => {
      if (call.op === 'lock' && !err) this.held.set(call.name, party);
      // Another app of this node may have taken the lock meanwhile: only the caller's hold ends.
      if (call.op === 'unlock' && this.held.get(call.name)?.app === party.app) this.held.delete(call.name);
      done(err);
    });
  }

  /** Carries out a call on a name homed here (protected: the simulation watches what its homes serve). */
  protected serve(party: Party, call: Call, done: Done): void {
    switch (call.op) {
      case 'lock':
        return this.service.lock(party, call.name, done);
      case 'unlock':
        return this.service.unlock(party, call.name, done, call.lost);
      case 'barrier':
        return this.service.barrier(party, call.name, call.parties, done);
    }
  }

  private remote(home: number, party: Party, call: Call, done: Done): void {
    const token = this.nextToken++;
    const send = () => {
      this.pending.set(token, { home, what: describe(call), done });
      // Taken as the call leaves: a delta counted as told must be on its way (see Watermarks).
      const notices = call.op === 'lock' ? undefined : this.notices?.outgoing(home);
      this.links.send(home, { type: SYNC_TYPE, body: { ...call, app: party.app, pid: party.pid, token, ...(notices && { notices }) } satisfies SyncMessage });
    };
    if (this.links.isUp(home)) send();
    else this.park(home, { send, fail: done }, describe(call));
  }

  private park(home: number, entry: { send(): void; fail: Done }, what: string): void {
    const list = this.parked.get(home);
    if (list) list.push(entry);
    else this.parked.set(home, [entry]);
    this.clock.after(this.graceMs, () => {
      const l = this.parked.get(home);
      const i = l?.indexOf(entry) ?? -1;
      if (i < 0) return;
      l!.splice(i, 1);
      entry.fail(new NaplusError('EPEERLOST', `The home of ${what}, node ${home}, has been unreachable for ${this.graceMs} ms`));
    });
  }

  private receive(peer: number, message: Message): void {
    const m = message.body as SyncMessage;
    if (!validMessage(m)) {
      this.log('error', `node ${peer} sent a malformed sync message; ignored`);
      return;
    }
    if (m.op === 'done') {
      const p = this.pending.get(m.token);
      this.pending.delete(m.token);
      if (!p) return;
      try {
        // Before the app goes on: the copies the grant's notices make stale are gone.
        if (m.notices) this.notices?.acquire(m.notices);
      } catch (err) {
        this.log('error', `node ${peer} ${(err as Error).message}; the call fails`);
        return p.done(err as NaplusError);
      }
      p.done(m.error && new NaplusError(m.error.code, m.error.message));
    } else if (m.op === 'gone') {
      this.service.forget((p) => p.node === peer && p.app === m.app, (p) => `pid ${p.pid} on node ${p.node}`);
    } else {
      const reply = (error?: NaplusError) => {
        if (!this.links.isUp(peer)) return; // it forgot the call when the link went
        const notices = !error && m.op !== 'unlock' ? this.notices?.incoming(peer) : undefined;
        const body: SyncMessage = error ? { op: 'done', token: m.token, error: { code: error.code, message: error.message } } : { op: 'done', token: m.token, ...(notices && { notices }) };
        this.links.send(peer, { type: SYNC_TYPE, body });
      };
      try {
        this.absorb(peer, m.notices);
      } catch (err) {
        this.log('error', `node ${peer} ${(err as Error).message}; its ${m.op} is refused`);
        return reply(err as NaplusError);
      }
      this.serve({ node: peer, app: m.app, pid: m.pid }, m, reply);
    }
  }

  /** Notices a releaser carried, taken in before its lock passes on or its barrier releases. */
  private absorb(from: number, notices: Notices | undefined): void {
    if (notices) this.notices?.absorb(from, notices);
  }

  /** A local app detached: its locks pass on and its waits end, wherever they are homed. */
  appGone(party: Party): void {
    this.told.delete(party.app);
    this.service.forget((p) => p.node === this.self && p.app === party.app, (p) => `pid ${p.pid}`);
    for (const [name, p] of this.held) if (p.app === party.app) this.held.delete(name);
    for (const node of this.nodes) {
      if (node !== this.self && this.links.isUp(node)) this.links.send(node, { type: SYNC_TYPE, body: { op: 'gone', app: party.app } satisfies SyncMessage });
    }
  }

  /**
   * A peer is unreachable. Its apps' waits end at once. The locks its apps hold pass on
   * only once they must have been told their locks are lost: at once when the peer's
   * process is gone, else after `quarantineMs`, by which time its own heartbeat timeout
   * has told them (or when it is back, having heard of the loss first). Passing a lock
   * any sooner would let two apps hold it at once.
   */
  private peerDown(peer: number, gone: boolean): void {
    const ofPeer = (p: Party) => p.node === peer;
    this.service.withdraw(ofPeer);
    if (gone) {
      this.releaseHeldBy(peer);
    } else {
      const token = {};
      this.quarantined.set(peer, token);
      this.clock.after(this.quarantineMs, () => {
        if (this.quarantined.get(peer) !== token) return;
        this.releaseHeldBy(peer);
      });
    }
    for (const [token, p] of this.pending) {
      if (p.home !== peer) continue;
      this.pending.delete(token);
      p.done(new NaplusError('EPEERLOST', `The home of ${p.what}, node ${peer}, was lost while this app waited`));
    }
    for (const [name, party] of this.held) {
      if (this.homeOf(name) !== peer) continue;
      this.held.delete(name);
      this.log('warn', `lock '${name}' held by pid ${party.pid} is lost: its home, node ${peer}, was lost`);
      this.notify(party.app, `lock '${name}' was lost with its home, node ${peer}`, { lock: name, code: 'EPEERLOST' });
      this.notices?.lockLost(`lock '${name}' was lost with its home, node ${peer}, while an app of this node held it`);
    }
  }

  private releaseHeldBy(peer: number): void {
    this.quarantined.delete(peer);
    this.service.release((p) => p.node === peer, (p) => `pid ${p.pid} on node ${p.node}, which was lost`);
  }

  private peerUp(peer: number): void {
    if (this.quarantined.has(peer)) this.releaseHeldBy(peer);
    const list = this.parked.get(peer);
    this.parked.delete(peer);
    for (const entry of list ?? []) entry.send();
  }
}

function notDurable(why: string): NaplusError {
  return new NaplusError('EPEERLOST', `The writes made before this synchronization could not all be made durable: ${why}`);
}

function validMessage(m: unknown): m is SyncMessage {
  if (typeof m !== 'object' || m === null) return false;
  const o = m as Record<string, unknown>;
  const int = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  switch (o.op) {
    case 'done':
      return int(o.token) && (o.error === undefined || (typeof o.error === 'object' && o.error !== null)) && validNotices(o.notices);
    case 'gone':
      return int(o.app);
    case 'lock':
    case 'unlock':
      return typeof o.name === 'string' && int(o.app) && int(o.pid) && int(o.token) && validNotices(o.notices) && (o.lost === undefined || o.lost === true);
    case 'barrier':
      return typeof o.name === 'string' && int(o.app) && int(o.pid) && int(o.token) && int(o.parties) && (o.parties as number) > 0 && validNotices(o.notices);
    default:
      return false;
  }
}

/** Absent, or region → string (each region's notices are checked where they are taken in). */
function validNotices(n: unknown): boolean {
  return n === undefined || (typeof n === 'object' && n !== null && !Array.isArray(n) && Object.values(n).every((v) => typeof v === 'string'));
}
