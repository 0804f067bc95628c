// The controller's side of the workload: one app per writer position (positions are
// spread over the nodes), rounds of write / stretch / synchronize, verification from
// every node, replacements for apps that were told or died, and a watchdog for hangs.
//
// Roster and rounds (so that a dead app never leaves the others waiting forever):
// - A round's roster is fixed when it starts: every app that is attached, idle, and whose
//   node has not failed. A barrier round's party count is the roster's size; its name
//   is new each round (`faults.b<round>`), so no stale arrival ever meets a later round.
// - An app leaves a round when it is told (its sync call rejects: it reports and exits),
//   when it dies, or when its node fails (the controller knows: it injected the fault, or
//   saw the node exit). Then the others at that barrier cannot all be released (a party
//   is missing) unless the barrier had already completed; so after a grace of two
//   heartbeats the controller tells those still waiting to *abandon* the round: the app
//   stops waiting (its call stays pending in the background under a name never used
//   again) and its writes of that round are not synchronized. Lock rounds need none of
//   this: each app's lock and release stands alone.
// - Verification follows each round: every live app whose node has not failed reads
//   every slot, judged against the ledger as it was when the verify was sent.
// - A position whose app is gone gets a fresh app as soon as its node is up; the new app
//   joins at the next round. An app whose node failed gets no more commands; it idles in
//   stretches of loads and stores until it is told (it dies or an API call rejects) or is
//   found silent (then the controller kills it), and it is cleared away once its node is
//   back and its deadline has passed, so that two incarnations never write one position.
//
// Hangs (the promise: nothing waits longer than peerTimeoutMs plus a few heartbeats):
// - A sync call is judged from the moment it could complete: a lock at once, a barrier
//   once every party of the roster has called it (a party still computing is not the
//   product's wait). An app in loads and stores is judged from the last thing it
//   reported: it reports every stretch, so a long silence is an access blocked in a
//   fault. From that wait is taken any time the app's own node spent stopped by the
//   nemesis (the controller's own delay: nothing can serve a frozen node's apps). What is
//   left must stay within hangMs = peerTimeoutMs + 4 heartbeats + SLACK_MS; beyond it
//   counts one hang, reported with what was waiting. An app stuck twice that long is
//   killed so that the run goes on.
import type { Checker, Expectation } from './checker.js';
import type { EnvListener, FaultEnv } from './env.js';
import { PROMPT_MS } from './env.js';
import { AppProcess } from './app-process.js';
import type { AppConfig, AppEvent, Slowest } from './protocol.js';
import type { SlotPlan } from './slots.js';
import { SYNC_KINDS, type SyncKind } from './sync-kinds.js';

export interface WorkloadOptions {
  env: FaultEnv;
  checker: Checker;
  plan: SlotPlan;
  nonce: number;
  positions: number;
  /** One stretch of plain loads and stores (an idle app reports each). */
  stretchMs: number;
  /** Loads and stores between a round's writes and its synchronization. */
  roundStretchMs: number;
  hangMs: number;
  rng: () => number;
  log(line: string): void;
}

type Outcome = 'synced' | 'failed' | 'abandoned' | 'gone';

/** One round as the controller runs it. */
interface Round {
  round: number;
  kind: SyncKind;
  name: string;
  roster: App[];
  /** When each app of the roster called its sync, by app id. */
  calledAt: Map<number, number>;
}

/** An app's part in a round. */
interface Part {
  of: Round;
  outcome?: Outcome;
  settle(o: Outcome): void;
}

interface App {
  id: number;
  position: number;
  node: number;
  life: number;
  proc: AppProcess;
  ready: boolean;
  gone: boolean;
  told: boolean;
  /** By when the app must have been told, once its node failed. */
  orphanDeadline?: number;
  doing: 'idle' | 'round' | 'verify';
  lastHeard: number;
  round?: Part;
  /** The round whose sync call it is in, between its 'calling' and the call's outcome. */
  inCall?: Round;
  verifying?: { expected: Array<Expectation | undefined>; done(): void };
  /** The wait a hang was reported for, so it is reported once. */
  flagged?: string;
}

const WATCH_MS = 100;
/** After a failed spawn, the next try at that position waits this long. */
const RESPAWN_MS = 500;
/** A step of loads and stores with no report for this many hang bounds is stuck, not slow. */
const STEP_ACCESSES_BOUND = 3;

export class Workload implements EnvListener {
  private readonly apps = new Map<number, App>();
  private readonly atPosition = new Map<number, App>();
  private readonly nextSpawn = new Map<number, number>();
  private nextId = 1;
  private round = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastWatch = Date.now();
  private readonly syncKinds = Object.keys(SYNC_KINDS) as SyncKind[];
  readonly stats = { rounds: 0, synced: 0, failed: 0, abandoned: 0, verifies: 0, appsStarted: 0 };
  /** Longest wait seen per fault kind blamed (sync calls and access stalls, minus stopped time). */
  readonly maxWaitMs = new Map<string, number>();

  constructor(private readonly o: WorkloadOptions) {
    o.env.listener = this;
  }

  private nodeOfPosition(p: number): number {
    const ids = this.o.env.nodeIds;
    return ids[p % ids.length]!;
  }

  private live(): App[] {
    return [...this.apps.values()].filter((a) => !a.gone);
  }

  /** Apps a round or a verify may use: attached, idle, node not failed. */
  private usable(): App[] {
    return this.live().filter((a) => a.ready && a.orphanDeadline === undefined && a.doing === 'idle');
  }

  start(): void {
    this.timer = setInterval(() => this.watch(), WATCH_MS);
  }

  /** Resolves once every position has a usable app (or after `timeoutMs`). */
  async staffed(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.usable().length === this.o.positions) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  // --- the environment's news -------------------------------------------------------

  failed(node: number, at: number, deadline: number, kind: string): void {
    const hit = this.live().filter((a) => a.node === node && a.orphanDeadline === undefined);
    for (const a of hit) {
      a.orphanDeadline = deadline;
      a.round?.settle('gone'); // it leaves its round and its verify
      a.verifying?.done();
    }
    this.o.checker.nodeFailed(hit.map((a) => a.id), at, deadline, kind);
  }

  tellBy(node: number, deadline: number): void {
    const orphans = this.live().filter((a) => a.node === node && a.orphanDeadline !== undefined);
    for (const a of orphans) a.orphanDeadline = Math.min(a.orphanDeadline!, deadline);
    this.o.checker.tellBy(orphans.map((a) => a.id), deadline);
  }

  crashed(node: number, at: number, detail: string): void {
    this.o.checker.crash(node, at, detail);
    this.o.log(`node ${node} crashed: ${detail}`);
    this.failed(node, at, at + PROMPT_MS, this.o.checker.blame(at, at));
  }

  // --- apps -------------------------------------------------------------------------

  private spawn(position: number): void {
    const { env, plan } = this.o;
    const node = this.nodeOfPosition(position);
    const config: AppConfig = {
      socketDir: env.nodeFile(node).socketDir,
      position,
      nonce: this.o.nonce,
      own: plan.slots.filter((s) => s.position === position).map((s) => ({ index: s.index, offset: s.offset })),
      all: plan.slots.map((s) => s.offset),
      counters: plan.counters[position]!,
      stretchMs: this.o.stretchMs,
    };
    const app = {
      id: this.nextId++, position, node, life: env.lifeOf(node), ready: false, gone: false, told: false, doing: 'idle', lastHeard: Date.now(),
    } as App;
    app.proc = new AppProcess(config, (e) => this.onEvent(app, e), (code, signal) => this.onExit(app, code, signal));
    this.apps.set(app.id, app);
    this.atPosition.set(position, app);
    this.stats.appsStarted++;
  }

  private silenced(app: App): void {
    app.proc.kill('found silent');
  }

  private onEvent(app: App, e: AppEvent): void {
    const { checker, env } = this.o;
    const now = Date.now();
    if (!app.inCall && app.ready) this.noteWait(now - app.lastHeard - env.stoppedWithin(app.node, app.lastHeard, now), app.lastHeard, now);
    app.lastHeard = now;
    switch (e.ev) {
      case 'hello':
        if (env.stateOf(app.node) !== 'up' || env.lifeOf(app.node) !== app.life) {
          app.proc.kill('attached to a node that failed meanwhile');
          return;
        }
        app.ready = true;
        checker.appStarted(app.id, app.position, app.node);
        return;
      case 'attach-failed':
        this.nextSpawn.set(app.position, now + RESPAWN_MS);
        return;
      case 'tick':
        this.slowAccess(app, e.slowest);
        if (checker.progress(app.id, e.from, 'began a stretch of plain loads and stores')) return this.silenced(app);
        for (const m of e.bad) checker.ownMismatch(app.id, e.to, m.index, BigInt(m.expected), BigInt(m.got));
        return;
      case 'wrote':
        this.slowAccess(app, e.slowest);
        if (checker.progress(app.id, e.t0, `stored its values of round ${e.round}`)) this.silenced(app);
        return;
      case 'calling':
        if (app.round?.of.round === e.round) {
          app.round.of.calledAt.set(app.id, e.t);
          app.inCall = app.round.of;
        }
        return;
      case 'synced': {
        const call = app.inCall;
        app.inCall = undefined;
        if (checker.progress(app.id, e.t0, `a ${call?.kind ?? 'sync'} call returned`)) this.silenced(app);
        // A sync that returned is a promise kept or broken, whoever made it.
        if (this.atPosition.get(app.position) === app) checker.synced(app.position, e.round, e.t1);
        const ready = call && this.readyAt(app, call);
        if (ready !== undefined) this.noteWait(e.t1 - ready - env.stoppedWithin(app.node, ready, e.t1), ready, e.t1);
        this.settle(app, e.round, 'synced');
        return;
      }
      case 'sync-failed':
        app.told = true;
        checker.told(app.id, e.t1, `its ${app.inCall?.kind ?? 'sync'} call rejected with ${e.code}: ${e.message}`);
        app.inCall = undefined;
        this.settle(app, e.round, 'failed');
        return;
      case 'abandoned':
        app.inCall = undefined;
        this.settle(app, e.round, 'abandoned');
        return;
      case 'verified':
        this.slowAccess(app, e.slowest);
        // Its node may have failed since the verify was sent: then only its silence is judged.
        if (checker.progress(app.id, e.t0, 'read every slot')) this.silenced(app);
        if (app.verifying) checker.verify(app.id, e.t0, e.t1, e.values.map(BigInt), app.verifying.expected);
        app.verifying?.done();
        return;
    }
  }

  private settle(app: App, round: number, outcome: Outcome): void {
    if (app.round?.of.round === round) app.round.settle(outcome);
  }

  private onExit(app: App, code: number | null, signal: NodeJS.Signals | null): void {
    app.gone = true;
    app.inCall = undefined;
    if (app.ready && !app.told && !app.proc.endedByController) {
      const how = signal ? `died of ${signal}` : `exited with ${code}${app.proc.lastStderr ? ` (${app.proc.lastStderr})` : ''}`;
      this.o.checker.told(app.id, Date.now(), how);
    }
    if (!app.ready) this.nextSpawn.set(app.position, Date.now() + RESPAWN_MS);
    app.round?.settle('gone');
    app.verifying?.done();
  }

  // --- rounds -----------------------------------------------------------------------

  /** One round (write, stretch, synchronize) then a verify; resolves when both are over. */
  async runRound(kind?: SyncKind): Promise<boolean> {
    const roster = this.usable();
    if (roster.length === 0) return false;
    const round = ++this.round;
    kind ??= this.syncKinds[Math.floor(this.o.rng() * this.syncKinds.length)]!;
    const name = kind === 'barrier' ? `faults.b${round}` : `faults.l${round % 4}`;
    const of: Round = { round, kind, name, roster, calledAt: new Map() };
    let abandonTimer: NodeJS.Timeout | undefined;
    const outcomes = roster.map((app) => new Promise<Outcome>((resolve) => {
      const part: Part = {
        of,
        settle: (o) => {
          if (part.outcome) return;
          part.outcome = o;
          if (!app.gone) app.doing = 'idle';
          app.round = undefined;
          if (o !== 'synced' && of.kind === 'barrier') abandonTimer ??= setTimeout(() => this.abandon(roster, round), 2 * this.o.env.options.heartbeatMs);
          resolve(o);
        },
      };
      app.round = part;
      app.doing = 'round';
      this.o.checker.issued(app.position, round);
      app.proc.send({ op: 'round', round, kind: of.kind, name, parties: roster.length, stretchMs: this.o.roundStretchMs });
    }));
    const results = await Promise.all(outcomes);
    clearTimeout(abandonTimer);
    this.stats.rounds++;
    for (const r of results) if (r !== 'gone') this.stats[r]++;
    await this.verify();
    return true;
  }

  private abandon(roster: App[], round: number): void {
    for (const app of roster) if (app.round?.of.round === round && !app.gone) app.proc.send({ op: 'abandon', round });
  }

  private async verify(): Promise<void> {
    const readers = this.usable();
    const expected = this.o.checker.expectations(this.o.plan.slots.length);
    await Promise.all(readers.map((app) => new Promise<void>((resolve) => {
      app.doing = 'verify';
      app.verifying = {
        expected,
        done: () => {
          if (!app.verifying) return;
          app.verifying = undefined;
          if (!app.gone) app.doing = 'idle';
          resolve();
        },
      };
      app.proc.send({ op: 'verify' });
    })));
    this.stats.verifies += readers.length;
  }

  // --- watchdog and replacements ------------------------------------------------------

  /**
   * When `app`'s sync call in round `r` could first complete: a lock at once, a barrier
   * once every party has called it; undefined while that moment has not come (or never
   * will: a party was told, died, or lost its node, and the round is being abandoned).
   */
  private readyAt(app: App, r: Round): number | undefined {
    if (r.kind !== 'barrier') return r.calledAt.get(app.id);
    let last = 0;
    for (const a of r.roster) {
      const at = r.calledAt.get(a.id);
      if (at === undefined || a.orphanDeadline !== undefined || a.gone || a.told) return undefined;
      last = Math.max(last, at);
    }
    return last;
  }

  /**
   * A single access that waited longer than the bound is a hang: counted from the last
   * fault that began while it waited (each may hold it up for the bound), its own node's
   * stops not counted.
   */
  private slowAccess(app: App, slowest: Slowest): void {
    const { env, checker, hangMs } = this.o;
    const to = slowest.at + slowest.ms;
    const from = checker.lastFaultStart(slowest.at, to);
    const waited = to - from - env.stoppedWithin(app.node, from, to);
    if (waited <= hangMs) return;
    checker.hang(to, slowest.at, `app ${app.id} (pid ${app.proc.pid}, writer ${app.position}) on node ${app.node}: one load or store waited ${waited} ms, more than ${hangMs} ms`);
    this.o.log(`hang: app ${app.id} on node ${app.node}: one access waited ${waited} ms`);
  }

  private noteWait(ms: number, from: number, to: number): void {
    const kind = this.o.checker.blame(from, to);
    if (ms > (this.maxWaitMs.get(kind) ?? 0)) this.maxWaitMs.set(kind, Math.round(ms));
  }

  private watch(): void {
    const now = Date.now();
    // A tick that fires late means this process was starved: what it knows of the apps is
    // stale, so it judges nothing this time. Otherwise it judges once the reports already
    // waiting in the apps' pipes are read (setImmediate runs after the poll phase).
    const late = now - this.lastWatch > 4 * WATCH_MS;
    this.lastWatch = now;
    if (!late) setImmediate(() => this.judge());
    this.replace(now);
  }

  private judge(): void {
    const { env, checker, hangMs } = this.o;
    const now = Date.now();
    for (const app of this.live()) {
      if (!app.ready) continue;
      let since: number | undefined;
      let what: string;
      if (app.inCall) {
        since = this.readyAt(app, app.inCall);
        what = `its ${app.inCall.kind} '${app.inCall.name}' call (round ${app.inCall.round}, ${app.inCall.roster.length} parties), since every party had called it`;
      } else {
        since = app.lastHeard;
        what = `no progress in ${app.doing === 'verify' ? 'reading every slot' : app.doing === 'round' ? 'storing its round values and stretches' : 'its stretches of loads and stores'} (a load or store blocked in a fault)`;
      }
      if (since === undefined) continue;
      const waited = now - since - env.stoppedWithin(app.node, since, now);
      // A call is one wait; a step of loads and stores is many, which failures one after
      // another may each hold up (each is judged on its own when the step reports, see
      // slowAccess): here only a step stuck for good is caught.
      const bound = app.inCall ? hangMs : STEP_ACCESSES_BOUND * hangMs;
      if (waited <= bound) continue;
      const key = `${app.inCall ? `call ${app.inCall.round}` : 'memory'}@${since}`;
      if (app.flagged !== key) {
        app.flagged = key;
        checker.hang(now, since, `app ${app.id} (pid ${app.proc.pid}, writer ${app.position}) on node ${app.node}${app.orphanDeadline !== undefined ? ' (its node failed)' : ''}: ${what}: waited ${waited} ms, more than ${bound} ms`);
        this.o.log(`hang: app ${app.id} on node ${app.node}: ${what}, ${waited} ms`);
      } else if (waited > 2 * bound) {
        app.proc.kill('stuck twice the hang bound');
      }
    }
  }

  private replace(now: number): void {
    const { env } = this.o;
    for (let p = 0; p < this.o.positions; p++) {
      const app = this.atPosition.get(p);
      const node = this.nodeOfPosition(p);
      if (app && !app.gone) {
        // An orphan still there once its node is back and its deadline has passed: it
        // will never be of use, and a fresh app must not share its position with it.
        if (app.orphanDeadline !== undefined && now > app.orphanDeadline && env.stateOf(node) === 'up' && env.lifeOf(node) !== app.life) {
          app.proc.kill('its node came back; an orphan makes way for a fresh app');
        }
        continue;
      }
      if (env.stateOf(node) !== 'up' || now < (this.nextSpawn.get(p) ?? 0)) continue;
      this.spawn(p);
    }
  }

  /** Ends every app (the run is over). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    const live = this.live();
    await Promise.all(live.map((app) => new Promise<void>((resolve) => {
      const done = setInterval(() => {
        if (!app.gone) return;
        clearInterval(done);
        resolve();
      }, 20);
      app.proc.endedByController ??= 'the run is over';
      app.proc.send({ op: 'exit' });
      setTimeout(() => app.proc.kill('the run is over'), 2000).unref();
    })));
  }

  get roundsRun(): number {
    return this.round;
  }
}
