// The apps of a release run: each takes locks (one at a time), meets the others at
// barriers (only where no node dies and no link breaks: a barrier needs every party),
// flushes, and reads and writes single words of the region, through their node's real
// SyncNode and page protocol. Programs free of data races by construction: an app
// touches a word only when the word's last write (and, to write it, every read since)
// happens before, by the apps' vector clocks over locks and barriers. So words change
// hands along chains of synchronizations (A writes, unlocks L1; B locks L1, unlocks L2;
// C locks L2 and reads what A wrote: the transitive case), words of one page are written
// by several nodes at once (false sharing), and after a barrier every word is anyone's.
//
// An app that died never released what it touched last, so no other app touches those
// words again: a program that recovers from a dead lock holder (EOWNERDEAD) must treat
// what it guarded as unknown. (Some of its writes may be in the master copy while other
// nodes' copies still show what was there before: no notice ever told them.) At the end,
// their master copies must hold one of its writes or what was there before.
//
// A lock's mutual exclusion and a barrier's whole rounds are checked here too.
import type { NaplusError } from '../../../src/errors.js';
import type { Call } from '../../../src/coherence/sync-node.js';
import type { Party } from '../../../src/coherence/sync-service.js';
import { fail } from './invariants.js';
import type { SimNode } from './node.js';
import type { AppOp } from './operations.js';
import { ReleaseLedger } from './release-ledger.js';

/** A vector clock: per app key, the last of its events known to have happened before. */
type Clock = Map<string, number>;

function join(into: Clock, from: Clock | undefined): void {
  for (const [k, v] of from ?? []) if ((into.get(k) ?? 0) < v) into.set(k, v);
}

/** One access to a word: by which app, at which tick of its clock. */
interface Access {
  key: string;
  tick: number;
}

interface App {
  node: SimNode;
  app: number;
  key: string;
  /** A call or a page access of this app is in flight (a blocked thread). */
  busy: boolean;
  holds: string | undefined;
  /** Barrier rounds arrived at. */
  arrived: number;
  vc: Clock;
  /** Words it let go of at its last unlock: it touches them again only once another app has. */
  retired: Set<number>;
}

export const RELEASE_LOCKS = ['L0', 'L1', 'L2', 'L3'];
const BARRIER = 'B';

export interface ReleaseWorld {
  random(): number;
  say(line: string): void;
  /** A new access by an app of `node` to `page`. */
  newOp(node: SimNode, page: number, write: boolean, extra: Pick<AppOp, 'slot' | 'app'>): AppOp;
  /** Starts it: it waits for its page as a faulting thread would, then perform() is called. */
  access(node: SimNode, op: AppOp): void;
}

export class ReleaseApps {
  private readonly apps = new Map<string, App>();
  private nextApp = 1;
  /** Per lock: what every unlock its home has taken in carried (the home hands it to each next holder). */
  private readonly lockClock = new Map<string, Clock>();
  /** Unlocks on their way: the unlocking app's clock as it let go, by `app|lock`. */
  private readonly unlocking = new Map<string, Clock>();
  /** Grants on their way: the lock's clock when its home granted it, by `app|lock`. */
  private readonly granted = new Map<string, Clock>();
  private readonly roundClock = new Map<number, Clock>();
  private readonly holders = new Map<string, string>();
  private released = 0;
  private readonly lastWrite: Array<Access | undefined>;
  private readonly readsSince: Access[][];
  /** Nodes that made their final flush at the end. */
  private readonly flushedAtEnd = new Set<SimNode>();
  readonly ledger: ReleaseLedger;
  /** Per word: the node that wrote it last. */
  private readonly writerNode: Array<number | undefined>;
  calls = 0;
  errors = 0;
  /** Reads of a word another node wrote last (what write notices are for). */
  handoffs = 0;

  constructor(
    private readonly world: ReleaseWorld,
    private readonly words: number,
    slots: number,
    private readonly barriers: boolean,
    private readonly appsPerNode: number,
    private readonly totalApps: number,
  ) {
    this.ledger = new ReleaseLedger(slots, (line) => world.say(line));
    this.lastWrite = new Array<Access | undefined>(slots);
    this.readsSince = Array.from({ length: slots }, () => []);
    this.writerNode = new Array<number | undefined>(slots);
  }

  private party(a: App): { node: number; app: number; pid: number } {
    return { node: a.node.id, app: a.app, pid: a.app };
  }

  spawn(node: SimNode): void {
    for (let i = 0; i < this.appsPerNode; i++) {
      const app = this.nextApp++;
      const a: App = { node, app, key: `${node.id}/${app}`, busy: false, holds: undefined, arrived: this.released, vc: new Map(), retired: new Set() };
      this.apps.set(a.key, a);
    }
  }

  killed(node: SimNode): void {
    for (const [k, a] of this.apps) {
      if (a.node !== node) continue;
      if (a.holds && this.holders.get(a.holds) === k) this.holders.delete(a.holds);
      this.apps.delete(k);
    }
    this.ledger.nodeDied(node.id);
  }

  lockLost(node: SimNode, app: number, name: string): void {
    const a = this.apps.get(`${node.id}/${app}`);
    if (!a || a.holds !== name) return;
    a.holds = undefined;
    if (this.holders.get(name) === a.key) this.holders.delete(name);
    this.world.say(`  app ${a.key} told: lock ${name} lost`);
  }

  // ---- page accesses -------------------------------------------------------------

  private happenedBefore(e: Access | undefined, a: App): boolean {
    return e === undefined || e.key === a.key || (a.vc.get(e.key) ?? 0) >= e.tick;
  }

  private mayWrite(slot: number, a: App): boolean {
    return this.happenedBefore(this.lastWrite[slot], a) && this.readsSince[slot]!.every((r) => this.happenedBefore(r, a));
  }

  /** The app that touched `slot` last. */
  private lastTouch(slot: number): string | undefined {
    return this.readsSince[slot]!.at(-1)?.key ?? this.lastWrite[slot]?.key;
  }

  /** Apps that could touch some word now. */
  private ready(): App[] {
    return [...this.apps.values()].filter((a) => !a.busy);
  }

  canIssue(): boolean {
    return this.ready().length > 0;
  }

  /** An app touches a word it may: a read, or (where it may) a write. False if it may touch none. */
  issue(): boolean {
    const ready = this.ready();
    const a = ready[Math.floor(this.world.random() * ready.length)]!;
    // Only words it could write, read or written: so each word has one app that may touch
    // it at a time, and passes from app to app along synchronizations (several readers at
    // once would leave it nobody's to write until the next barrier). Words another app
    // touched last come first: that is where notices must have done their work.
    const own: number[] = [];
    const handed: number[] = [];
    for (let s = 0; s < this.lastWrite.length; s++) {
      if (!this.mayWrite(s, a)) continue;
      const last = this.lastTouch(s);
      if (last === a.key && a.retired.has(s)) continue;
      a.retired.delete(s);
      (last === undefined || last === a.key ? own : handed).push(s);
    }
    const pool = handed.length > 0 && (own.length === 0 || this.world.random() < 0.8) ? handed : own;
    if (pool.length === 0) return false;
    const slot = pool[Math.floor(this.world.random() * pool.length)]!;
    // Words handed on are mostly read: an app that reads what another wrote, and passes it
    // on unwritten, is what makes an acquirer depend on notices it only heard transitively.
    const write = this.world.random() < (pool === handed ? 0.3 : 0.5);
    // The access happens now as far as races go: the app is blocked until it is done.
    const tick = (a.vc.get(a.key) ?? 0) + 1;
    a.vc.set(a.key, tick);
    if (write) {
      this.lastWrite[slot] = { key: a.key, tick };
      this.readsSince[slot] = [];
    } else {
      this.readsSince[slot]!.push({ key: a.key, tick });
    }
    a.busy = true;
    this.world.access(a.node, this.world.newOp(a.node, Math.floor(slot / this.words), write, { slot, app: a.key }));
    return true;
  }

  /** The node permits the access: it is made. */
  perform(node: SimNode, op: AppOp): void {
    const a = this.apps.get(op.app!);
    if (a) a.busy = false;
    const at = op.page * this.words + (op.slot! % this.words);
    if (op.write) {
      this.writerNode[op.slot!] = node.id;
      const v = this.ledger.write(op.slot!, node.id);
      node.mem[at] = v;
      this.world.say(`  op ${op.id}: app ${op.app} wrote ${v} to word ${op.slot}`);
    } else {
      if (this.writerNode[op.slot!] !== undefined && this.writerNode[op.slot!] !== node.id) this.handoffs++;
      this.world.say(`  op ${op.id}: app ${op.app} read ${node.mem[at]} from word ${op.slot}`);
      this.ledger.read(op.slot!, node.mem[at]!, node.id, `op ${op.id} (app ${op.app})`);
    }
  }

  /** The access failed (SIGBUS): the app goes on. */
  failed(op: AppOp): void {
    const a = this.apps.get(op.app!);
    if (a) a.busy = false;
  }

  // ---- locks, barriers, flushes ------------------------------------------------------

  /** Calls that may start now; `settle`: only those that end what is open, then each node's last flush. */
  choices(settle: boolean): Array<() => void> {
    const out: Array<() => void> = [];
    for (const a of this.apps.values()) {
      if (a.busy) continue;
      if (a.holds) out.push(() => this.unlock(a, a.holds!));
      const maxArrived = Math.max(this.released, ...[...this.apps.values()].map((x) => x.arrived));
      if (this.barriers && !a.holds && (settle ? a.arrived < maxArrived : this.world.random() < 0.3)) out.push(() => this.barrier(a));
      // Each app takes two of the locks, its neighbours' overlapping its own: words written
      // under one lock reach apps that never take it only through the others (transitively).
      if (!settle && !a.holds) for (const name of this.locksOf(a)) out.push(() => this.lock(a, name));
      if (!settle) out.push(() => this.flush(a));
    }
    if (settle && out.length === 0 && [...this.apps.values()].every((a) => !a.busy)) {
      // Everything released: each node's writes since its last synchronization go home too.
      for (const a of this.apps.values()) {
        if (this.flushedAtEnd.has(a.node)) continue;
        out.push(() => {
          this.flushedAtEnd.add(a.node);
          this.flush(a);
        });
      }
    }
    return out;
  }

  private locksOf(a: App): string[] {
    const n = RELEASE_LOCKS.length;
    return [RELEASE_LOCKS[a.app % n]!, RELEASE_LOCKS[(a.app + 1) % n]!];
  }

  private call(a: App, what: string, start: (done: (err?: NaplusError) => void) => void, ok: () => void): void {
    a.busy = true;
    this.calls++;
    this.world.say(`app ${a.key}: ${what}`);
    const synced = what.startsWith('lock') ? undefined : this.ledger.synchronizing(a.node.id);
    start((err) => {
      if (this.apps.get(a.key) !== a) return; // its node died meanwhile
      a.busy = false;
      synced?.(!err);
      if (err) {
        this.errors++;
        this.world.say(`  app ${a.key}: ${what} failed: ${err.code} ${err.message}`);
        return;
      }
      this.world.say(`  app ${a.key}: ${what} done`);
      ok();
    });
  }

  private lock(a: App, name: string): void {
    this.call(a, `lock ${name}`, (done) => a.node.sync.lock(this.party(a), name, done), () => {
      const other = this.holders.get(name);
      if (other !== undefined && other !== a.key) fail(`lock ${name} granted to app ${a.key} while app ${other} holds it`);
      this.holders.set(name, a.key);
      a.holds = name;
      join(a.vc, this.granted.get(`${a.key}|${name}`));
      this.granted.delete(`${a.key}|${name}`);
    });
  }

  private unlock(a: App, name: string): void {
    // Given up as the call starts: the next holder may be granted before this call's answer.
    a.holds = undefined;
    // Most of what it touched is for others now (a chain of locks hands it on).
    for (let s = 0; s < this.lastWrite.length; s++) if (this.lastTouch(s) === a.key && this.world.random() < 0.8) a.retired.add(s);
    if (this.holders.get(name) === a.key) this.holders.delete(name);
    this.unlocking.set(`${a.key}|${name}`, new Map(a.vc));
    this.call(a, `unlock ${name}`, (done) => a.node.sync.unlock(this.party(a), name, done), () => undefined);
  }

  /**
   * A lock's home takes a call in, or ends it. An unlock's notices are taken in as it
   * comes, before the lock passes on: from then on its holders come after the unlocking
   * app (unless its writes could not be made durable: the next holder is told the data
   * may be inconsistent, EOWNERDEAD). A grant carries what was taken in until it was made
   * (a lock that passes on because its holder was lost, or a home that restarts, never
   * took that holder's in).
   */
  served(party: Party, call: Call, ended: boolean, err?: Error): void {
    const key = `${party.node}/${party.app}|${call.name}`;
    if (call.op === 'unlock' && !ended && !call.lost) {
      const clock = this.lockClock.get(call.name) ?? new Map();
      join(clock, this.unlocking.get(key));
      this.lockClock.set(call.name, clock);
      this.unlocking.delete(key);
    }
    if (call.op === 'lock' && ended && !err) this.granted.set(key, new Map(this.lockClock.get(call.name) ?? []));
  }

  private barrier(a: App): void {
    const round = ++a.arrived;
    const clock = this.roundClock.get(round) ?? new Map();
    join(clock, a.vc);
    this.roundClock.set(round, clock);
    this.call(a, `barrier round ${round}`, (done) => a.node.sync.barrier(this.party(a), BARRIER, this.totalApps, done), () => {
      for (const other of this.apps.values()) {
        if (other.arrived < round) fail(`barrier round ${round} released app ${a.key} before app ${other.key} arrived`);
      }
      join(a.vc, this.roundClock.get(round));
      this.released = Math.max(this.released, round);
    });
  }

  private flush(a: App): void {
    this.call(a, 'flush', (done) => a.node.sync.flush(this.party(a), done), () => undefined);
  }

  /** At the end: no call waits, and no write is left that no synchronization settled. */
  checkQuiescent(): void {
    for (const a of this.apps.values()) if (a.busy) fail(`app ${a.key} still waits in a call or an access at the end`);
    if (this.ledger.unsettled() > 0) fail(`${this.ledger.unsettled()} write(s) were never covered by a synchronization that ended`);
  }
}
