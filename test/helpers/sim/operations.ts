// What the simulated apps do: page accesses (a read or a write of one page, retried
// after each grant as a real faulting thread retries its access), and calls to locks
// and barriers through their node's real SyncNode.
//
// Locks are checked for mutual exclusion: an app whose lock() succeeded holds the lock
// until it unlocks it, or until its node tells it the lock was lost with its home; no
// two apps may hold one lock at once. Barriers are checked to release a round only once
// every party has arrived at it.
import type { NaplusError } from '../../../src/errors.js';
import { fail } from './invariants.js';
import type { SimNode } from './node.js';

/** A page access by an app of `node`. */
export interface AppOp {
  id: number;
  node: number;
  page: number;
  write: boolean;
  issuedAt: number;
  /** Down events the node had seen of each peer when the op was issued, and which peers were up. */
  downsAtIssue: Map<number, number>;
  upAtIssue: Set<number>;
  /** Whether the page's home (and its manager, if the node had to ask it) was up for the node then. */
  homeUpAtIssue: boolean;
  /** Release runs: the word accessed, and the app that accesses it. */
  slot?: number;
  app?: string;
}

/** An app that calls locks and barriers. */
interface SyncApp {
  node: SimNode;
  app: number;
  /** A call of this app is in flight. */
  busy: boolean;
  holds: Set<string>;
  /** Barrier rounds this app has arrived at. */
  arrived: number;
}

export const LOCKS = ['L0', 'L1'];
const BARRIER = 'B';

export interface SyncWorld {
  random(): number;
  say(line: string): void;
  /** A synchronization starts at `node`; the returned function records how it ended. */
  synchronizing(node: number): (succeeded: boolean) => void;
}

export class SyncOps {
  private readonly apps = new Map<string, SyncApp>();
  private nextApp = 1;
  /** Apps that hold each lock, by key. */
  private readonly holders = new Map<string, Set<string>>();
  /** Barrier rounds released so far. */
  private released = 0;
  calls = 0;
  errors = 0;

  constructor(
    private readonly world: SyncWorld,
    /** Barriers need every party alive: only where no node dies and no link breaks. */
    private readonly barriers: boolean,
    private readonly appsPerNode: number,
    private readonly totalApps: number,
  ) {}

  private party(a: SyncApp): { node: number; app: number; pid: number } {
    return { node: a.node.id, app: a.app, pid: a.app };
  }

  private key(a: SyncApp): string {
    return `${a.node.id}/${a.app}`;
  }

  /** A node (re)started: its apps. */
  spawn(node: SimNode): void {
    for (let i = 0; i < this.appsPerNode; i++) {
      const a: SyncApp = { node, app: this.nextApp++, busy: false, holds: new Set(), arrived: this.released };
      this.apps.set(this.key(a), a);
      node.sync.appAttached(this.party(a));
    }
  }

  /** A node died: its apps with it. */
  killed(node: SimNode): void {
    for (const [k, a] of this.apps) {
      if (a.node !== node) continue;
      for (const name of a.holds) this.holders.get(name)?.delete(k);
      this.apps.delete(k);
    }
  }

  /** A node told its app that a lock it held was lost with the lock's home. */
  lockLost(node: SimNode, app: number, name: string): void {
    const a = this.apps.get(`${node.id}/${app}`);
    if (!a || !a.holds.delete(name)) return;
    this.holders.get(name)?.delete(this.key(a));
    this.world.say(`  app ${this.key(a)} told: lock ${name} lost`);
  }

  /** Calls that may start now; `settle`: only those that end what is open (unlocks, late barrier arrivals). */
  choices(settle: boolean): Array<() => void> {
    const out: Array<() => void> = [];
    for (const a of this.apps.values()) {
      if (a.busy) continue;
      for (const name of a.holds) out.push(() => this.unlock(a, name));
      // Only an app holding no lock arrives at a barrier: a waiter for its lock could never arrive.
      if (this.barriers && a.holds.size === 0 && (settle ? a.arrived < this.maxArrived() : this.world.random() < 0.3)) out.push(() => this.barrier(a));
      // One lock at a time: two apps each holding one and waiting for the other's would deadlock.
      if (!settle && a.holds.size === 0) for (const name of LOCKS) out.push(() => this.lock(a, name));
      if (!settle) out.push(() => this.flush(a));
    }
    return out;
  }

  private maxArrived(): number {
    let m = this.released;
    for (const a of this.apps.values()) m = Math.max(m, a.arrived);
    return m;
  }

  private call(a: SyncApp, what: string, start: (done: (err?: NaplusError) => void) => void, ok: () => void, synced?: (succeeded: boolean) => void): void {
    a.busy = true;
    this.calls++;
    this.world.say(`app ${this.key(a)}: ${what}`);
    start((err) => {
      if (!this.apps.has(this.key(a))) return; // its node died meanwhile
      a.busy = false;
      synced?.(!err);
      if (err) {
        this.errors++;
        this.world.say(`  app ${this.key(a)}: ${what} failed: ${err.code} ${err.message}`);
        return;
      }
      this.world.say(`  app ${this.key(a)}: ${what} done`);
      ok();
    });
  }

  private lock(a: SyncApp, name: string): void {
    this.call(a, `lock ${name}`, (done) => a.node.sync.lock(this.party(a), name, done), () => {
      const holders = this.holders.get(name) ?? new Set();
      this.holders.set(name, holders);
      const others = [...holders].filter((k) => k !== this.key(a));
      if (others.length > 0) fail(`lock ${name} granted to app ${this.key(a)} while app ${others.join(', ')} holds it`);
      holders.add(this.key(a));
      a.holds.add(name);
    });
  }

  private unlock(a: SyncApp, name: string): void {
    // Given up as the call starts: the next holder may be granted before this call's answer.
    a.holds.delete(name);
    this.holders.get(name)?.delete(this.key(a));
    this.call(a, `unlock ${name}`, (done) => a.node.sync.unlock(this.party(a), name, done), () => undefined, this.world.synchronizing(a.node.id));
  }

  private barrier(a: SyncApp): void {
    const round = ++a.arrived;
    this.call(a, `barrier round ${round}`, (done) => a.node.sync.barrier(this.party(a), BARRIER, this.totalApps, done), () => {
      for (const other of this.apps.values()) {
        if (other.arrived < round) fail(`barrier round ${round} released app ${this.key(a)} before app ${this.key(other)} arrived`);
      }
      this.released = Math.max(this.released, round);
    }, this.world.synchronizing(a.node.id));
  }

  private flush(a: SyncApp): void {
    this.call(a, 'flush', (done) => a.node.sync.flush(this.party(a), done), () => undefined, this.world.synchronizing(a.node.id));
  }

  /** At the end: no call waits. */
  checkQuiescent(): void {
    for (const a of this.apps.values()) if (a.busy) fail(`app ${this.key(a)} still waits in a lock or barrier call at the end`);
  }
}
