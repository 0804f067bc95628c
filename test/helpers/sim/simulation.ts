// A deterministic simulation of a Naplus cluster that runs the real per-node assembly
// (NodeCoherence with the region's protocol, SyncNode for locks and barriers: not a
// copy) over a simulated network (network.ts): FIFO links with arbitrary delays (any
// interleaving of links), messages lost when a link breaks or a node dies, nodes
// restarted on their host's surviving segment, cache evictions, timers on virtual
// time, and apps (operations.ts) whose faults are served and who retry their access some
// time later (as a real app thread does), and who take locks and meet at barriers.
//
// What it checks is in invariants.ts (pages) and operations.ts (locks, barriers); for
// regions run with release consistency, in release-ledger.ts and release-apps.ts.
// Every run is a function of its seed: a failing seed replays exactly.
import { Flag, Op, type Msg } from '../../../src/coherence/protocol.js';
import { CoherenceCodec, COHERENCE_TYPE } from '../../../src/coherence/codec.js';
import { managerOf, type FirstTouchShape, type HomeTable } from '../../../src/coherence/first-touch.js';
import type { Placement } from '../../../src/coherence/node-coherence.js';
import type { Message } from '../../../src/transport/index.js';
import { prng as rng } from '../../fixtures/transport-protocol.js';
import { SimNetwork, type Item } from './network.js';
import { decode, PAGE_BYTES, SimNode, type Timer } from './node.js';
import { checkPages, checkQuiescent, DataLedger, fail, SimFailure } from './invariants.js';
import { SyncOps, type AppOp } from './operations.js';
import { ReleaseApps } from './release-apps.js';
import { checkReleaseEnd } from './release-checks.js';
import type { ProtocolName } from '../../../src/coherence/protocols.js';

/** How late (virtual ms) a due timer may fire at most. */
const TIMER_SLACK = 0.2;

export interface SimOptions {
  hosts: number;
  nodesPerHost: number;
  pages: number;
  /** App page operations issued in all. */
  ops: number;
  holdMs: number;
  graceMs: number;
  /** How long a home waits before it forgets an unreachable node's copies. */
  quarantineMs: number;
  /** Homes decided on first touch by the pages' managers, rather than fixed. */
  firstTouch: boolean;
  /** Apps per node that take locks (and, without faults, meet at barriers). */
  syncApps: number;
  /** Per-step probabilities. */
  evictRate: number;
  killRate: number;
  breakRate: number;
  /** Keep a readable log of every step (for replays). */
  trace?: boolean;
  /** The region's protocol (default sequential), and words per page (default 1). */
  protocol?: ProtocolName;
  words?: number;
}

export interface SimResult {
  seed: number;
  steps: number;
  opsDone: number;
  opsFailed: number;
  syncCalls: number;
  kills: number;
  breaks: number;
  /** Connections reset and resumed by the transport (nothing lost, nobody told). */
  resets: number;
  /** Sessions a home gave up on because the peer did not answer in time. */
  drops: number;
  /** Release runs: reads of a word another node wrote last. */
  handoffs: number;
  failure?: string;
  log: string[];
}

export class Simulation {
  readonly random: () => number;
  now = 0;
  private readonly nodes = new Map<number, SimNode>();
  private readonly dead = new Set<number>();
  private readonly net: SimNetwork;
  private readonly timers: Timer[] = [];
  private timerSeq = 0;
  readonly ids: number[];
  private readonly hostOfNode = new Map<number, string>();
  /** Static placement: each page's home. */
  private readonly homes: number[];
  /** First-touch: each manager's table, which survives its restarts (it is in the segment). */
  private readonly tables = new Map<number, Map<number, { home: number; slot: number }>>();
  private readonly shape: FirstTouchShape;
  /** Master copies: host → page → value. */
  private readonly segments = new Map<string, Float64Array>();
  /** Who owns which page, as each host's homes recorded it in their segment: host → page → entry. */
  private readonly owners = new Map<string, Map<number, { owner: number; home: number }>>();
  private readonly ledger: DataLedger;
  private readonly sync: Pick<SyncOps, 'spawn' | 'killed' | 'lockLost' | 'choices' | 'checkQuiescent' | 'calls'>;
  /** Release runs: the apps, which make their own accesses (see release-apps.ts). */
  private readonly releaseApps: ReleaseApps | undefined;
  /** Release runs: each host's page versions, and each node's notices as a sync home (they outlive restarts). */
  private readonly versions = new Map<string, Uint32Array>();
  private readonly boards = new Map<number, Uint32Array>();
  private readonly words: number;
  private readonly codec: CoherenceCodec;
  private nextOp = 1;
  readonly result: SimResult;

  constructor(
    readonly seed: number,
    readonly o: SimOptions,
  ) {
    this.random = rng(seed);
    this.result = { seed, steps: 0, opsDone: 0, opsFailed: 0, syncCalls: 0, kills: 0, breaks: 0, resets: 0, drops: 0, handoffs: 0, log: [] };
    this.ids = [];
    this.words = o.words ?? 1;
    for (let h = 0; h < o.hosts; h++) {
      this.segments.set(`h${h}`, new Float64Array(o.pages * this.words));
      this.versions.set(`h${h}`, new Uint32Array(o.pages));
      this.owners.set(`h${h}`, new Map());
      for (let n = 0; n < o.nodesPerHost; n++) {
        const id = 10 + h * 10 + n;
        this.ids.push(id);
        this.boards.set(id, new Uint32Array(o.pages));
        this.hostOfNode.set(id, `h${h}`);
      }
    }
    this.homes = Array.from({ length: o.pages }, () => this.ids[Math.floor(this.random() * this.ids.length)]!);
    const hosts = [...new Set(this.hostOfNode.values())];
    this.shape = {
      region: 0, pages: o.pages, nodes: this.ids, hostOf: (node) => this.hostOfNode.get(node)!, hosts,
      poolSize: Math.ceil(Math.ceil(o.pages / hosts.length) / this.ids.length),
    };
    for (const id of this.ids) this.tables.set(id, new Map());
    this.ledger = new DataLedger(o.pages, (line) => this.say(line));
    const pageBytes = PAGE_BYTES * this.words;
    this.codec = new CoherenceCodec([{ pages: o.pages, pageSize: pageBytes, slots: o.pages * this.ids.length }], this.ids, PAGE_BYTES, 1 << 20);
    const faulty = o.killRate > 0 || o.breakRate > 0;
    if (o.protocol === 'release') {
      const world = {
        random: this.random, say: (line: string) => this.say(line),
        newOp: (node: SimNode, page: number, write: boolean, extra: Pick<AppOp, 'slot' | 'app'>) => this.newOp(node, page, write, extra),
        access: (node: SimNode, op: AppOp) => this.attempt(node, op),
      };
      this.sync = this.releaseApps = new ReleaseApps(world, this.words, o.pages * this.words, !faulty, o.syncApps, o.syncApps * this.ids.length);
    } else {
      this.sync = new SyncOps(
        { random: this.random, say: (line) => this.say(line), synchronizing: (node) => this.ledger.synchronizing(node) },
        !faulty, o.syncApps, o.syncApps * this.ids.length,
      );
    }
    this.net = new SimNetwork(this.random, {
      lost: (_from, _to, message, incident) => this.lost(message, incident),
      sentToDown: (from, to, message) => {
        if (this.carriesWrite(message)) fail(`node ${from} sent a dirty page to node ${to}, which it knows is down`);
      },
      dropped: (from, to, reason) => this.dropSession(from, to, reason),
      say: (line) => this.say(line),
    });
    for (const id of this.ids) this.boot(id, 0);
    for (const a of this.ids) for (const b of this.ids) if (a !== b) this.nodes.get(a)!.endpoint.up.add(b);
  }

  private say(line: string): void {
    if (this.o.trace) this.result.log.push(`[${this.result.steps} t=${this.now.toFixed(3)}] ${line}`);
  }

  /** A node process: the real protocol assembly over this simulation's network and memory. */
  private boot(id: number, incarnation: number): SimNode {
    const host = this.hostOfNode.get(id)!;
    let placement: Placement = { kind: 'static', home: this.homes, slot: this.homes.map(() => 0) };
    if (this.o.firstTouch) {
      const entries = this.tables.get(id)!;
      const table: HomeTable = { get: (i) => entries.get(i), set: (i, home, slot) => entries.set(i, { home, slot }) };
      placement = { kind: 'first-touch', shape: this.shape, table };
    }
    const node: SimNode = new SimNode(
      {
        id, host, incarnation, pages: this.o.pages, words: this.words, protocol: this.o.protocol ?? 'sequential', nodes: this.ids, placement,
        segment: this.segments.get(host)!, versions: this.versions.get(host)!, board: this.boards.get(id)!, owners: this.owners.get(host)!, endpoint: this.net.attach(id),
        holdMs: this.o.holdMs, graceMs: this.o.graceMs, quarantineMs: this.o.quarantineMs,
      },
      {
        now: () => this.now,
        addTimer: (t) => this.timers.push({ ...t, seq: this.timerSeq++ }),
        fail,
        say: (line) => this.say(line),
        homeOf: (page) => this.homeOf(page),
        hostOf: (n) => this.hostOfNode.get(n)!,
        opFailed: (n, op, reason) => this.opFailed(n, op, reason),
        lockLost: (n, app, name) => this.sync.lockLost(n, app, name),
        pageLost: (n, page) => this.releaseApps?.ledger.pageLost(n.id, page, this.words),
        served: (_n, party, call, ended, err) => this.releaseApps?.served(party, call, ended, err),
      },
    );
    this.nodes.set(id, node);
    this.sync.spawn(node);
    return node;
  }

  /** The page's home as its manager decided it (first-touch), or as fixed; undefined before its first touch. */
  private homeOf(page: number): number | undefined {
    if (!this.o.firstTouch) return this.homes[page];
    const manager = managerOf(this.shape, page);
    const e = this.tables.get(manager)!.get(Math.floor(page / this.ids.length));
    return e && this.ids[e.home];
  }

  /** The node an access to `page` depends on now: its home, or while unplaced its manager. */
  private keeperOf(page: number): number {
    return this.homeOf(page) ?? managerOf(this.shape, page);
  }

  private opFailed(node: SimNode, op: AppOp, reason: string): void {
    const related = [this.keeperOf(op.page), ...(this.o.firstTouch ? [managerOf(this.shape, op.page)] : [])];
    const downs = node.endpoint.downs;
    const wentDown = related.some((n) => !op.upAtIssue.has(n) || (downs.get(n) ?? 0) > (op.downsAtIssue.get(n) ?? 0));
    if (op.homeUpAtIssue && !wentDown) fail(`op ${op.id} (node ${node.id} page ${op.page}) failed though its home ${this.homeOf(op.page)} never went down: ${reason}`);
    this.releaseApps?.failed(op);
    this.result.opsFailed++;
    this.say(`  op ${op.id} failed: ${reason}`);
  }

  // ---- data that may be lost -------------------------------------------------------

  /** Acks and Puts with data carry the only copy of a write home; grants only copy the master. */
  private carriesWrite(message: Message): boolean {
    if (this.releaseApps) return false; // release runs judge writes by their synchronizations (release-ledger.ts)
    return message.type === COHERENCE_TYPE && this.codec.decode(message).some((m) => isWriteHome(m));
  }

  private lost(message: Message, incident: string): void {
    if (message.type !== COHERENCE_TYPE || this.releaseApps) return;
    for (const m of this.codec.decode(message)) if (isWriteHome(m)) this.ledger.mayBeLost(m.page, incident);
  }

  /** Pages whose only current copy is Modified at `node`, held for pages homed at `home` (any home if undefined). */
  private dirtyAt(node: SimNode, home: number | undefined, incident: string): void {
    if (this.releaseApps) return;
    for (let page = 0; page < this.o.pages; page++) {
      if (node.protocol.permits(page, 'write') && (home === undefined || this.homeOf(page) === home)) this.ledger.mayBeLost(page, incident);
    }
  }

  // ---- app page operations ---------------------------------------------------------

  private issue(): void {
    if (this.releaseApps) {
      if (!this.releaseApps.issue()) this.nextOp++; // an app with no word it may touch counts, so that the run ends
      return;
    }
    const live = [...this.nodes.values()];
    const node = live[Math.floor(this.random() * live.length)]!;
    const page = Math.floor(this.random() * this.o.pages);
    this.attempt(node, this.newOp(node, page, this.random() < 0.5));
  }

  /** An access by an app of `node`, with what its node knew of its peers as it started. */
  newOp(node: SimNode, page: number, write: boolean, extra?: Pick<AppOp, 'slot' | 'app'>): AppOp {
    const up = node.endpoint.up;
    // What this node needs reachable: the page's home, and its manager while it does not know the home.
    const needs = [this.keeperOf(page)];
    if (this.o.firstTouch && node.coherence.topologies[0]!.homes.homeOf(page) === undefined) needs.push(managerOf(this.shape, page));
    const op: AppOp = {
      id: this.nextOp++,
      node: node.id,
      page,
      write,
      issuedAt: this.now,
      downsAtIssue: new Map(node.endpoint.downs),
      upAtIssue: new Set([...up, node.id]),
      homeUpAtIssue: needs.every((n) => n === node.id || up.has(n)),
      ...extra,
    };
    this.say(`op ${op.id}: node ${node.id} ${op.write ? 'writes' : 'reads'} page ${page}${op.slot === undefined ? '' : ` (word ${op.slot}, app ${op.app})`}`);
    return op;
  }

  /** The app touches its page: done if the node's protocol permits it, else a fault. */
  private attempt(node: SimNode, op: AppOp): void {
    if (node.lost.delete(op.page)) {
      // Poisoned: the app takes SIGBUS, as its writes were lost (the cache loses a page
      // only when its home was cut off, or gave it up after a restart).
      this.result.opsFailed++;
      this.releaseApps?.failed(op);
      this.say(`  op ${op.id} takes SIGBUS: the page was lost here`);
      return;
    }
    if (node.protocol.permits(op.page, op.write ? 'write' : 'read')) {
      this.perform(node, op);
      return;
    }
    const list = node.waiting.get(op.page);
    if (list) list.push(op);
    else node.waiting.set(op.page, [op]);
    node.protocol.request(op.page, op.write ? 'write' : 'read');
  }

  private perform(node: SimNode, op: AppOp): void {
    this.result.opsDone++;
    if (this.releaseApps) return this.releaseApps.perform(node, op);
    const page = op.page;
    if (op.write) {
      const v = this.ledger.write(page, node.id);
      node.mem[page] = v;
      this.say(`  op ${op.id}: node ${node.id} wrote ${v} to page ${page}`);
      // Written across a link that is already broken, unbeknown to this node: lost
      // when it hears, unless the page is written back before.
      const incident = this.net.severedBy(node.id, this.homeOf(page)!);
      if (incident !== undefined) this.ledger.mayBeLost(page, incident);
    } else {
      this.say(`  op ${op.id}: node ${node.id} read ${node.mem[page]} from page ${page}`);
      this.ledger.check(node, page, `op ${op.id} read`);
    }
  }

  // ---- network and failures ------------------------------------------------------

  private deliver(from: number, to: number): void {
    const item = this.net.queue(from, to)[0]!;
    if (this.o.trace) this.say(this.describe(from, to, item));
    this.net.deliver(from, to);
    if (item.kind === 'down') this.heardDown(to, from, item.orderly);
  }

  private describe(from: number, to: number, item: Item): string {
    if (item.kind !== 'msg') return `node ${to} hears node ${from} is ${item.kind}${item.kind === 'down' && item.orderly ? ' (closed by it)' : ''}`;
    const m = item.message;
    return `deliver ${from}→${to} ${m.type === COHERENCE_TYPE ? this.codec.decode(m).map(opName).join(' ') : JSON.stringify(m.body)}`;
  }

  private heardDown(to: number, from: number, orderly: boolean): void {
    this.ledger.closeAll(`${to}<${from}`);
    // The far end, if alive and still unaware, notices within the quarantine.
    if (!orderly && this.nodes.has(from) && this.net.queue(to, from).some((i) => i.kind === 'down')) {
      this.net.deadlines.set(`${to}>${from}`, this.now + this.o.quarantineMs * 0.9);
    }
  }

  /** The link a–b breaks for longer than the transport resumes a session: each end finds out by its own timeout. */
  private breakLink(a: number, b: number): void {
    this.result.breaks++;
    this.say(`link ${a}–${b} breaks`);
    const incident = this.ledger.openIncident([`${a}<${b}`, `${b}<${a}`]);
    this.net.cut(a, b, incident);
    this.net.cut(b, a, incident);
    this.dirtyAt(this.nodes.get(a)!, b, incident);
    this.dirtyAt(this.nodes.get(b)!, a, incident);
    this.net.sever(a, b, incident);
    this.net.sever(b, a, incident);
    this.net.queue(a, b).push({ kind: 'down', orderly: false });
    this.net.queue(b, a).push({ kind: 'down', orderly: false });
  }

  /**
   * `a` gives up on `b` (which keeps its link alive but does not answer): `a` hears `b`
   * down at once; `b` hears, after what was already on its way, that its session is gone
   * (not that `a`'s process is: it lives on).
   */
  private dropSession(a: number, b: number, reason: string): void {
    this.result.drops++;
    this.say(`node ${a} drops its session with node ${b}: ${reason}`);
    const alive = this.nodes.has(b); // b may have died already, unbeknown to a
    const incident = this.ledger.openIncident(alive ? [`${a}<${b}`, `${b}<${a}`] : [`${a}<${b}`]);
    this.net.drain(b, a, incident); // a is done with the session: nothing more of it reaches a
    this.dirtyAt(this.nodes.get(a)!, b, incident);
    if (alive) {
      this.net.cut(a, b, incident);
      this.dirtyAt(this.nodes.get(b)!, a, incident);
      this.net.sever(b, a, incident);
      this.net.queue(a, b).push({ kind: 'down', orderly: false });
    }
    this.net.unsever(a, b); // a hears now, as if its own down arrived (one on its way may have been drained)
    this.nodes.get(a)!.endpoint.receive(b, { kind: 'down', orderly: false });
    this.heardDown(a, b, false);
  }

  private kill(id: number): void {
    this.result.kills++;
    const node = this.nodes.get(id)!;
    this.say(`node ${id} dies`);
    const others = [...this.nodes.keys()].filter((x) => x !== id);
    const incident = this.ledger.openIncident(others.map((x) => `${x}<${id}`));
    this.dirtyAt(node, undefined, incident);
    this.ledger.nodeDied(id);
    // Pages of its held elsewhere stay where they are (their holders report them when it is back).
    for (const x of others) {
      this.net.deadlines.delete(`${x}>${id}`);
      this.net.cut(id, x, incident);
      // What x will believe of id once the surviving prefix is delivered.
      let up = this.nodes.get(x)!.endpoint.up.has(id);
      let told = false;
      for (const item of this.net.queue(id, x)) {
        if (item.kind === 'down') [up, told] = [false, true];
        if (item.kind === 'up') [up, told] = [true, false];
      }
      if (up) {
        this.net.queue(id, x).push({ kind: 'down', orderly: true });
        this.net.sever(x, id, incident);
      } else if (!told) {
        this.ledger.closeEnd(incident, `${x}<${id}`); // x knows already: the link was broken
      }
    }
    // Its own view of its links dies with it.
    this.net.forgetSeveredFrom(id);
    // Whatever was still on its way to it dies with it, from live senders or dead ones.
    for (const [a, b] of [...this.net.all()].map(([x, y]) => [x, y] as const)) if (b === id) this.net.drain(a, b, incident);
    for (const list of node.waiting.values()) this.result.opsFailed += list.length;
    this.result.opsFailed += node.runnable.length;
    this.sync.killed(node);
    this.nodes.delete(id);
    this.net.detach(id);
    this.dead.add(id);
  }

  /** A dead node comes back once every live node has heard it died. */
  private restart(id: number): boolean {
    for (const x of this.nodes.keys()) if (this.nodes.get(x)!.endpoint.up.has(id) || this.net.queue(id, x).length > 0) return false;
    this.dead.delete(id);
    this.boot(id, this.result.kills);
    this.say(`node ${id} restarts`);
    for (const x of this.nodes.keys()) {
      if (x === id) continue;
      this.net.unsever(x, id);
      this.net.queue(id, x).push({ kind: 'up' });
      this.net.queue(x, id).push({ kind: 'up' });
    }
    return true;
  }

  /** A broken link between live nodes heals once both ends have heard it broke. */
  private heal(a: number, b: number): boolean {
    const na = this.nodes.get(a)!;
    const nb = this.nodes.get(b)!;
    if (na.endpoint.up.has(b) || nb.endpoint.up.has(a) || this.net.severedBy(a, b) !== undefined || this.net.severedBy(b, a) !== undefined) return false;
    if (this.net.queue(a, b).some((i) => i.kind === 'up') || this.net.queue(b, a).some((i) => i.kind === 'up')) return false;
    this.say(`link ${a}–${b} heals`);
    this.net.queue(a, b).push({ kind: 'up' });
    this.net.queue(b, a).push({ kind: 'up' });
    return true;
  }

  // ---- the scheduler -------------------------------------------------------------

  /** Runs one step; false when nothing is left to do. */
  private step(issueMore: boolean, faults: boolean): boolean {
    for (const [key, at] of this.net.deadlines) {
      if (at > this.now + 0.05) continue;
      const [a, b] = key.split('>').map(Number) as [number, number];
      if (this.net.queue(a, b).length === 0) {
        this.net.deadlines.delete(key); // what it waited for was lost meanwhile
        continue;
      }
      this.deliver(a, b); // overdue: this delivery comes first
      this.now += 0.001;
      return true;
    }
    const choices: Array<() => void> = [];
    for (const [a, b] of this.net.deliverable(this.now)) choices.push(() => this.deliver(a, b));
    for (const node of this.nodes.values()) {
      if (node.runnable.length > 0) {
        choices.push(() => {
          const op = node.runnable.splice(Math.floor(this.random() * node.runnable.length), 1)[0]!;
          this.say(`op ${op.id} retries at node ${node.id}`);
          this.attempt(node, op);
        });
      }
    }
    const due = this.timers.filter((t) => t.at <= this.now);
    const fire = (t: Timer) => {
      this.timers.splice(this.timers.indexOf(t), 1);
      const node = this.nodes.get(t.node);
      if (node && node.incarnation === t.incarnation) t.fn();
    };
    // A timer fires at some point after it is due, but not much later: an event loop
    // runs its due timers within a turn or two, whatever else is waiting.
    const late = due.reduce<Timer | undefined>((a, t) => (t.at < this.now - TIMER_SLACK && (!a || t.at < a.at) ? t : a), undefined);
    if (late) {
      fire(late);
      for (const node of this.nodes.values()) node.endTurn();
      return true;
    }
    if (due.length > 0) choices.push(() => fire(due[Math.floor(this.random() * due.length)]!));
    if (issueMore && this.nextOp <= this.o.ops && (this.releaseApps?.canIssue() ?? true)) choices.push(() => this.issue());
    const sync = this.sync.choices(!issueMore);
    // Release runs synchronize more: words change hands only along synchronizations.
    if (sync.length > 0 && (!issueMore || this.random() < (this.releaseApps ? 0.5 : 0.2))) choices.push(sync[Math.floor(this.random() * sync.length)]!);
    if (faults) this.faults(choices);
    this.repairs(choices, faults);
    if (choices.length === 0) {
      const next = Math.min(this.timers.reduce((m, t) => Math.min(m, t.at), Infinity), this.net.nextResume(this.now));
      if (next === Infinity) return false;
      this.now = next;
      return true;
    }
    choices[Math.floor(this.random() * choices.length)]!();
    for (const node of this.nodes.values()) node.endTurn();
    this.now += this.random() * 0.05;
    return true;
  }

  private faults(choices: Array<() => void>): void {
    if (this.random() < this.o.evictRate) {
      choices.push(() => {
        const live = [...this.nodes.values()];
        const node = live[Math.floor(this.random() * live.length)]!;
        const page = Math.floor(this.random() * this.o.pages);
        if (node.protocol.permits(page, 'read') && node.protocol.evict(page)) this.say(`node ${node.id} evicts page ${page}`);
      });
    }
    if (this.random() < this.o.killRate && this.nodes.size > 1) {
      choices.push(() => this.kill([...this.nodes.keys()][Math.floor(this.random() * this.nodes.size)]!));
    }
    if (this.random() < this.o.breakRate * 2 && this.nodes.size > 1) {
      choices.push(() => {
        const live = [...this.nodes.keys()];
        const a = live[Math.floor(this.random() * live.length)]!;
        const b = live[Math.floor(this.random() * live.length)]!;
        if (a === b) return;
        this.result.resets++;
        this.say(`connection ${a}–${b} reset; the session resumes`);
        this.net.reset(a, b, this.now + this.random() * this.o.quarantineMs);
      });
    }
    if (this.random() < this.o.breakRate && this.nodes.size > 1) {
      choices.push(() => {
        const live = [...this.nodes.keys()];
        const a = live[Math.floor(this.random() * live.length)]!;
        const b = live[Math.floor(this.random() * live.length)]!;
        if (a !== b && this.nodes.get(a)!.endpoint.up.has(b) && this.nodes.get(b)!.endpoint.up.has(a) && this.net.severedBy(a, b) === undefined) this.breakLink(a, b);
      });
    }
  }

  /** Dead nodes restart and broken links heal, now and then (always once faults stop). */
  private repairs(choices: Array<() => void>, faults: boolean): void {
    const p = faults ? 0.02 : 1;
    for (const id of this.dead) if (this.random() < p) choices.push(() => void this.restart(id));
    const live = [...this.nodes.keys()];
    for (const a of live) {
      for (const b of live) {
        if (a >= b) continue;
        const na = this.nodes.get(a)!;
        if (na.endpoint.up.has(b) || this.random() >= p) continue;
        choices.push(() => void this.heal(a, b));
      }
    }
  }

  run(): SimResult {
    try {
      // Phase 1: ops with faults injected. Phase 2: no new trouble; everything must settle.
      let guard = 0;
      while (this.nextOp <= this.o.ops) {
        this.step(true, true);
        this.result.steps++;
        if (!this.releaseApps) checkPages(this.nodes.values(), this.o.pages, this.ledger);
        if (++guard > this.o.ops * 200) fail('phase 1 does not finish');
      }
      guard = 0;
      while (this.step(false, false)) {
        this.result.steps++;
        if (!this.releaseApps) checkPages(this.nodes.values(), this.o.pages, this.ledger);
        if (++guard > 100_000) fail('the cluster never settles (livelock?)');
      }
      if (this.releaseApps) {
        checkReleaseEnd(this.nodes, this.releaseApps.ledger, this.words, (page) => this.homeOf(page), (page) => {
          const home = this.homeOf(page);
          return home === undefined ? undefined : this.segments.get(this.hostOfNode.get(home)!)!;
        });
      } else {
        checkQuiescent(this.nodes, this.o.pages, (page) => this.homeOf(page));
      }
      this.sync.checkQuiescent();
    } catch (err) {
      if (!(err instanceof SimFailure)) throw err;
      this.result.failure = err.message;
    }
    this.result.syncCalls = this.sync.calls;
    this.result.handoffs = this.releaseApps?.handoffs ?? 0;
    return this.result;
  }
}

function isWriteHome(m: Msg): boolean {
  return (m.flags & Flag.Data) !== 0 && (m.op === Op.Ack || m.op === Op.PutM || m.op === Op.Clean);
}

const OP_NAMES: Record<number, string> = {
  [Op.GetS]: 'GetS', [Op.GetM]: 'GetM', [Op.PutS]: 'PutS', [Op.PutM]: 'PutM', [Op.GrantS]: 'GrantS',
  [Op.GrantM]: 'GrantM', [Op.Inv]: 'Inv', [Op.Down]: 'Down', [Op.Ack]: 'Ack', [Op.Where]: 'Where', [Op.Here]: 'Here',
  [Op.Clean]: 'Clean', [Op.Cleaned]: 'Cleaned', [Op.Held]: 'Held', [Op.Reported]: 'Reported', [Op.Disown]: 'Disown', [Op.Fence]: 'Fence', [Op.Fenced]: 'Fenced',
  [Op.Fetch]: 'Fetch', [Op.Page]: 'Page', [Op.Diff]: 'Diff', [Op.Diffed]: 'Diffed', [Op.Atomic]: 'Atomic', [Op.AtomicDone]: 'AtomicDone',
};

function opName(m: Msg): string {
  const flags = [m.flags & Flag.Data ? `data=${decode(m.data!)}` : '', m.flags & Flag.Segment ? 'seg' : '', m.flags & Flag.Kept ? 'kept' : ''].filter(Boolean).join(' ');
  const where = (m.home !== undefined ? ` home=${m.home}` : '') + (m.version !== undefined ? ` v${m.version}` : '') + (m.extra ? ` +${m.extra.length}B` : '') + (m.flags & Flag.Current ? ' current' : '');
  return `${OP_NAMES[m.op]}(p${m.page}${flags ? ` ${flags}` : ''}${where})`;
}

export type Family = 'calm' | 'evict' | 'faults' | 'release' | 'release-faults';

/** Options for seed `seed` of a family: every run draws its own cluster shape and rates. */
export function optionsFor(seed: number, family: Family): SimOptions {
  const r = rng(seed ^ 0x5eed);
  const pick = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const release = family === 'release' || family === 'release-faults';
  const faults = family === 'faults' || family === 'release-faults';
  return {
    hosts: pick(1, 3),
    nodesPerHost: pick(1, 2),
    pages: pick(1, 6),
    ops: pick(20, 80),
    // Never 0: a node sends its messages for a peer in one turn as one transport message,
    // so a grant and the invalidation queued behind it arrive together, and without a
    // hold the app whose fault was served would never get its access in (livelock).
    holdMs: 0.02 + r() * 0.3,
    // Without faults nothing should wait for a grace time to run out: a home would give
    // up on a peer only slow in virtual time (a transaction here takes a few ms at most).
    graceMs: family === 'faults' ? 2 + r() * 5 : 1000,
    quarantineMs: 0.5 + r() * 2,
    evictRate: family === 'calm' ? 0 : 0.05 + r() * 0.2,
    killRate: faults ? 0.005 + r() * 0.02 : 0,
    breakRate: faults ? 0.005 + r() * 0.02 : 0,
    firstTouch: r() < 0.4,
    syncApps: pick(1, 2),
    // Release runs: a few words per page, so that several nodes write one page at once,
    // and more pages and accesses, so that words travel along chains of synchronizations
    // (a copy stays stale only on a page no other notice refreshed meanwhile).
    ...(release ? { protocol: 'release' as const, words: pick(2, 4), pages: pick(2, 12), ops: pick(40, 160) } : {}),
  };
}
