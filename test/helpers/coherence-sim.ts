// A deterministic simulation of a Naplus cluster that runs the real protocol code
// (src/coherence/cache.ts and home.ts, not a copy) over a simulated network:
// FIFO links with arbitrary delays (any interleaving of links), messages lost when a
// link breaks or a node dies, nodes restarted on their host's surviving segment, cache
// evictions, hold and grace timers on virtual time, and apps whose faults are served
// and who retry their access some time later (as a real app thread does).
//
// After every step it checks:
// - single writer: at most one live node holds a page Modified, and then nobody holds
//   it Shared;
// - data: every valid copy holds the latest value written to its page (pages whose
//   latest writes may have died with a node or a link are exempt until the incident
//   is over, then must agree on one value that was once written);
// and at the end, once the network is healed and drained, that no app op, request or
// transaction is left waiting (nothing hangs), that ops failed only when their page's
// home was unreachable, and that each directory matches its caches.
//
// Every run is a function of its seed: a failing seed replays exactly.
import { CacheController } from '../../src/coherence/cache.js';
import { HomeDirectory } from '../../src/coherence/home.js';
import { Flag, isHomeOp, Op, PageState, type CacheMemory, type Clock, type MasterStore, type Msg, type Topology, type Wire } from '../../src/coherence/protocol.js';
import { StaticHomes } from '../../src/coherence/homes.js';
import { FirstTouchHomes, FirstTouchManager, managerOf, type FirstTouchShape, type HomeTable } from '../../src/coherence/first-touch.js';
import { prng as rng } from '../fixtures/transport-protocol.js';

export interface SimOptions {
  hosts: number;
  nodesPerHost: number;
  pages: number;
  /** App operations issued in all. */
  ops: number;
  holdMs: number;
  graceMs: number;
  /** How long a home waits before it forgets an unreachable node's copies. */
  quarantineMs: number;
  /** Homes decided on first touch by the pages' managers, rather than fixed. */
  firstTouch: boolean;
  /** Per-step probabilities. */
  evictRate: number;
  killRate: number;
  breakRate: number;
  /** Keep a readable log of every step (for replays). */
  trace?: boolean;
}

export interface SimResult {
  seed: number;
  steps: number;
  opsDone: number;
  opsFailed: number;
  kills: number;
  breaks: number;
  failure?: string;
  log: string[];
}

const PAGE_BYTES = 8;
/** `down`: the receiver learns the link is gone; `orderly` when the sender's end closed it. */
type Item = { kind: 'msg'; msg: Msg } | { kind: 'down'; orderly: boolean } | { kind: 'up' };

interface AppOp {
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
}

class SimFailure extends Error {}

function encode(v: number): Uint8Array {
  const b = new Uint8Array(PAGE_BYTES);
  new DataView(b.buffer).setFloat64(0, v);
  return b;
}
const decode = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, PAGE_BYTES).getFloat64(0);

class SimNode {
  cache!: CacheController;
  home!: HomeDirectory;
  /** This node's copy of every page (NaN where it has none). */
  readonly mem: Float64Array;
  readonly up = new Set<number>();
  /** App ops waiting for their page, and ops granted and about to retry. */
  readonly waiting = new Map<number, AppOp[]>();
  readonly runnable: AppOp[] = [];
  /** Down events seen, per peer. */
  readonly downs = new Map<number, number>();
  topology!: Topology;
  manager: FirstTouchManager | undefined;
  learner: FirstTouchHomes | undefined;

  constructor(
    readonly id: number,
    readonly host: string,
    readonly incarnation: number,
    pages: number,
  ) {
    this.mem = new Float64Array(pages).fill(NaN);
  }
}

export class Simulation {
  readonly random: () => number;
  now = 0;
  private readonly nodes = new Map<number, SimNode>();
  private readonly dead = new Set<number>();
  private readonly links = new Map<string, Item[]>();
  /** Links that broke and whose ends have not both heard of it: sends on them vanish. */
  private readonly severed = new Map<string, string>();
  /** Queues that must be delivered by a time: the far end must hear of a broken link
   *  before the near end's quarantine is over (what heartbeat timeouts guarantee). */
  private readonly deadlines = new Map<string, number>();
  private readonly timers: Array<{ at: number; node: number; incarnation: number; fn: () => void; seq: number }> = [];
  private timerSeq = 0;
  readonly ids: number[];
  private readonly hostOfNode = new Map<number, string>();
  /** Static placement: each page's home. */
  private readonly homes: number[];
  private readonly staticHomes: StaticHomes;
  /** First-touch: each manager's table, which survives its restarts (it is in the segment). */
  private readonly tables = new Map<number, Map<number, { home: number; slot: number }>>();
  private readonly shape: FirstTouchShape;
  /** Master copies: host → page → value. */
  private readonly segments = new Map<string, Float64Array>();
  private readonly latest: Float64Array;
  private readonly written: Array<Set<number>>;
  /** Pages whose latest writes may be lost, by the incidents they wait for. */
  private readonly uncertain = new Map<number, Set<string>>();
  private readonly openIncidents = new Map<string, Set<string>>();
  private nextOp = 1;
  private version = 0;
  private incidentSeq = 0;
  readonly result: SimResult;

  constructor(
    readonly seed: number,
    readonly o: SimOptions,
  ) {
    this.random = rng(seed);
    this.result = { seed, steps: 0, opsDone: 0, opsFailed: 0, kills: 0, breaks: 0, log: [] };
    this.ids = [];
    for (let h = 0; h < o.hosts; h++) {
      this.segments.set(`h${h}`, new Float64Array(o.pages));
      for (let n = 0; n < o.nodesPerHost; n++) {
        const id = 10 + h * 10 + n;
        this.ids.push(id);
        this.hostOfNode.set(id, `h${h}`);
      }
    }
    this.homes = Array.from({ length: o.pages }, () => this.ids[Math.floor(this.random() * this.ids.length)]!);
    this.staticHomes = new StaticHomes(this.homes, this.homes.map(() => 0));
    const hosts = [...new Set(this.hostOfNode.values())];
    this.shape = {
      region: 0, pages: o.pages, nodes: this.ids, hostOf: (node) => this.hostOfNode.get(node)!, hosts,
      poolSize: Math.ceil(Math.ceil(o.pages / hosts.length) / this.ids.length),
    };
    for (const id of this.ids) this.tables.set(id, new Map());
    this.latest = new Float64Array(o.pages);
    this.written = Array.from({ length: o.pages }, () => new Set([0]));
    for (const id of this.ids) this.boot(id, 0);
    for (const a of this.ids) for (const b of this.ids) if (a !== b) this.nodes.get(a)!.up.add(b);
  }

  private say(line: string): void {
    if (this.o.trace) this.result.log.push(`[${this.result.steps} t=${this.now.toFixed(3)}] ${line}`);
  }

  private fail(why: string): never {
    throw new SimFailure(why);
  }

  private link(a: number, b: number): Item[] {
    const key = `${a}>${b}`;
    let q = this.links.get(key);
    if (!q) this.links.set(key, (q = []));
    return q;
  }

  /** A node process: its cache and directory over this simulation's network and memory. */
  private boot(id: number, incarnation: number): SimNode {
    const node = new SimNode(id, this.hostOfNode.get(id)!, incarnation, this.o.pages);
    const segment = this.segments.get(node.host)!;
    const wire: Wire = {
      self: id,
      isUp: (to) => to === id || node.up.has(to),
      send: (to, msg) => {
        if (to !== id && !node.up.has(to)) {
          if (carriesWrite(msg)) this.fail(`node ${id} sent a dirty page (${opName(msg)}) to node ${to}, which it knows is down`);
          return;
        }
        const incident = this.severed.get(`${id}>${to}`);
        if (incident !== undefined) {
          this.say(`  ${id}→${to} ${opName(msg)} lost (link broken)`);
          if (carriesWrite(msg)) this.dataLost(msg.page, incident);
          return;
        }
        this.link(id, to).push({ kind: 'msg', msg: { ...msg } });
      },
    };
    const clock: Clock = {
      now: () => this.now,
      after: (ms, fn) => this.timers.push({ at: this.now + ms, node: id, incarnation, fn, seq: this.timerSeq++ }),
    };
    const memory: CacheMemory = {
      fillFromSegment: (page) => {
        if (this.hostOfNode.get(this.homeOf(page)!) !== node.host) this.fail(`node ${id} copied page ${page} from its segment, but the page is homed on another host`);
        node.mem[page] = segment[page]!;
      },
      install: (page, data) => (node.mem[page] = decode(data)),
      copyOut: (page) => encode(node.mem[page]!),
      writeBack: (page) => {
        if (this.hostOfNode.get(this.homeOf(page)!) !== node.host) this.fail(`node ${id} wrote page ${page} back into its segment, but the page is homed on another host`);
        segment[page] = node.mem[page]!;
      },
      protect: () => undefined,
      drop: (page) => (node.mem[page] = NaN),
      granted: (page) => {
        const ops = node.waiting.get(page);
        if (!ops) return;
        node.waiting.delete(page);
        node.runnable.push(...ops);
      },
      failed: (page, reason) => {
        const ops = node.waiting.get(page) ?? [];
        node.waiting.delete(page);
        for (const op of ops) this.opFailed(node, op, reason);
      },
    };
    const master: MasterStore = {
      read: (page) => encode(segment[page]!),
      write: (page, data) => (segment[page] = decode(data)),
    };
    const log = (level: string, msg: string) => {
      if (level === 'warn') this.fail(`node ${id} warned: ${msg}`);
      this.say(`  node ${id} ${level}: ${msg}`);
    };
    if (this.o.firstTouch) {
      const entries = this.tables.get(id)!;
      const table: HomeTable = { get: (i) => entries.get(i), set: (i, home, slot) => entries.set(i, { home, slot }) };
      node.manager = new FirstTouchManager(this.shape, id, table, wire, log);
      node.learner = new FirstTouchHomes(this.shape, wire, clock, this.o.graceMs);
    }
    node.topology = { hostOf: this.shape.hostOf, nodes: this.ids, homes: node.learner ?? this.staticHomes };
    node.cache = new CacheController(0, this.o.pages, node.topology, wire, memory, clock, { holdMs: this.o.holdMs, graceMs: this.o.graceMs }, log);
    node.home = new HomeDirectory(0, this.o.pages, node.topology, wire, master, clock, this.o.quarantineMs, log);
    this.nodes.set(id, node);
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
    const wentDown = related.some((n) => !op.upAtIssue.has(n) || (node.downs.get(n) ?? 0) > (op.downsAtIssue.get(n) ?? 0));
    if (op.homeUpAtIssue && !wentDown) this.fail(`op ${op.id} (node ${node.id} page ${op.page}) failed though its home ${this.homeOf(op.page)} never went down: ${reason}`);
    this.result.opsFailed++;
    this.say(`  op ${op.id} failed: ${reason}`);
  }

  // ---- data tracking -------------------------------------------------------------

  /** A write to `page` may be lost until incident `key` is over. */
  private dataLost(page: number, incident: string): void {
    const open = this.openIncidents.get(incident);
    let set = this.uncertain.get(page);
    if (!set) this.uncertain.set(page, (set = new Set()));
    if (open) set.add(incident);
    this.say(`  page ${page} uncertain (${incident})`);
  }

  private openIncident(ends: string[]): string {
    const key = `incident${this.incidentSeq++}`;
    this.openIncidents.set(key, new Set(ends));
    return key;
  }

  /** One end of an incident has heard of it; when all have, its pages may be anchored. */
  private closeEnd(incident: string, end: string): void {
    const open = this.openIncidents.get(incident);
    if (!open) return;
    open.delete(end);
    if (open.size > 0) return;
    this.openIncidents.delete(incident);
    for (const set of this.uncertain.values()) set.delete(incident);
  }

  // ---- app operations -------------------------------------------------------------

  private issue(): void {
    const live = [...this.nodes.values()];
    const node = live[Math.floor(this.random() * live.length)]!;
    const page = Math.floor(this.random() * this.o.pages);
    // What this node needs reachable: the page's home, and its manager while it does not know the home.
    const needs = [this.keeperOf(page)];
    if (node.learner && node.learner.homeOf(page) === undefined) needs.push(managerOf(this.shape, page));
    const op: AppOp = {
      id: this.nextOp++,
      node: node.id,
      page,
      write: this.random() < 0.5,
      issuedAt: this.now,
      downsAtIssue: new Map(node.downs),
      upAtIssue: new Set([...node.up, node.id]),
      homeUpAtIssue: needs.every((n) => n === node.id || node.up.has(n)),
    };
    this.say(`op ${op.id}: node ${node.id} ${op.write ? 'writes' : 'reads'} page ${page}`);
    this.attempt(node, op);
  }

  /** The app touches its page: done if the node's state allows it, else a fault. */
  private attempt(node: SimNode, op: AppOp): void {
    const s = node.cache.state[op.page]!;
    if (op.write ? s === PageState.Modified : s !== PageState.Invalid) {
      this.perform(node, op);
      return;
    }
    const list = node.waiting.get(op.page);
    if (list) list.push(op);
    else node.waiting.set(op.page, [op]);
    node.cache.request(op.page, op.write ? 'write' : 'read');
  }

  private perform(node: SimNode, op: AppOp): void {
    const page = op.page;
    if (op.write) {
      const v = ++this.version;
      node.mem[page] = v;
      this.latest[page] = v;
      this.written[page]!.add(v);
      this.say(`  op ${op.id}: node ${node.id} wrote ${v} to page ${page}`);
      // Written across a link that is already broken, unbeknown to this node: lost
      // when it hears, unless the page is written back before.
      const incident = this.severed.get(`${node.id}>${this.homeOf(page)}`);
      if (incident !== undefined) this.dataLost(page, incident);
    } else {
      this.say(`  op ${op.id}: node ${node.id} read ${node.mem[page]} from page ${page}`);
      this.checkValue(node, page, `op ${op.id} read`);
    }
    this.result.opsDone++;
  }

  private checkValue(node: SimNode, page: number, what: string): void {
    const v = node.mem[page]!;
    const pending = this.uncertain.get(page);
    if (pending) {
      if (pending.size > 0) return; // its incident is not over: the value may still change
      if (!this.written[page]!.has(v)) this.fail(`${what}: node ${node.id} has ${v} in page ${page}, a value never written there`);
      this.uncertain.delete(page);
      this.latest[page] = v; // anchored: from now on every copy must agree with this
      this.say(`  page ${page} anchored at ${v}`);
      return;
    }
    if (v !== this.latest[page]) this.fail(`${what}: node ${node.id} has ${v} in page ${page}, the latest write was ${this.latest[page]}`);
  }

  // ---- invariants ----------------------------------------------------------------

  private checkInvariants(): void {
    for (let page = 0; page < this.o.pages; page++) {
      const m: number[] = [];
      const s: number[] = [];
      for (const node of this.nodes.values()) {
        const st = node.cache.state[page];
        if (st === PageState.Modified) m.push(node.id);
        else if (st === PageState.Shared) s.push(node.id);
      }
      if (m.length > 1) this.fail(`page ${page} is Modified at nodes ${m.join(', ')}`);
      if (m.length === 1 && s.length > 0) this.fail(`page ${page} is Modified at node ${m[0]} and Shared at ${s.join(', ')}`);
      for (const id of [...m, ...s]) this.checkValue(this.nodes.get(id)!, page, 'valid copy');
    }
  }

  // ---- network and failures ------------------------------------------------------

  private deliver(from: number, to: number): void {
    const item = this.link(from, to).shift()!;
    const node = this.nodes.get(to)!;
    if (this.link(from, to).length === 0) this.deadlines.delete(`${from}>${to}`);
    if (item.kind === 'down') {
      this.hearDown(node, from, item.orderly);
      return;
    }
    if (item.kind === 'up') {
      this.say(`node ${to} hears node ${from} is up`);
      node.up.add(from);
      node.home.peerUp(from);
      node.learner?.peerUp(from);
      node.cache.peerUp(from);
      return;
    }
    const msg = item.msg;
    this.say(`deliver ${from}→${to} ${opName(msg)}`);
    if (isHomeOp(msg.op)) node.home.receive(from, msg);
    else if (msg.op === Op.Where) node.manager!.receive(from, msg);
    else if (msg.op === Op.Here) node.learner!.receive(from, msg);
    else node.cache.receive(from, msg);
  }

  private hearDown(node: SimNode, from: number, orderly: boolean): void {
    const to = node.id;
    this.say(`node ${to} hears node ${from} is down${orderly ? ' (closed by it)' : ''}`);
    node.up.delete(from);
    node.downs.set(from, (node.downs.get(from) ?? 0) + 1);
    this.severed.delete(`${to}>${from}`);
    node.home.peerDown(from, orderly);
    node.learner?.peerDown(from);
    node.cache.peerDown(from);
    for (const [incident] of this.openIncidents) this.closeEnd(incident, `${to}<${from}`);
    // The far end, if alive and still unaware, notices within the quarantine.
    if (!orderly && this.nodes.has(from) && this.link(to, from).some((i) => i.kind === 'down')) {
      this.deadlines.set(`${to}>${from}`, this.now + this.o.quarantineMs * 0.9);
    }
  }

  /** Cuts the queue a→b at a random point: a prefix arrives, the rest is lost. */
  private cut(a: number, b: number, incident: string): void {
    const q = this.link(a, b);
    const keep = Math.floor(this.random() * (q.length + 1));
    this.lose(q.splice(keep), incident);
  }

  /** Messages that never arrive: the writes they carried home may be lost. */
  private lose(items: Item[], incident: string): void {
    for (const item of items) if (item.kind === 'msg' && carriesWrite(item.msg)) this.dataLost(item.msg.page, incident);
  }

  /** Pages whose only current copy is Modified at `node`, held for pages homed at `home` (any home if undefined). */
  private dirtyAt(node: SimNode, home: number | undefined, incident: string): void {
    for (let page = 0; page < this.o.pages; page++) {
      if (node.cache.state[page] === PageState.Modified && (home === undefined || this.homeOf(page) === home)) this.dataLost(page, incident);
    }
  }

  /**
   * The link a–b breaks: silently (each end finds out by its own timeout), or because
   * a closes it (a acts on the loss first, then b sees a close in good order).
   */
  private breakLink(a: number, b: number, closedByA: boolean): void {
    this.result.breaks++;
    this.say(`link ${a}–${b} breaks${closedByA ? ` (closed by ${a})` : ''}`);
    const incident = this.openIncident([`${a}<${b}`, `${b}<${a}`]);
    this.cut(a, b, incident);
    this.dirtyAt(this.nodes.get(a)!, b, incident);
    this.dirtyAt(this.nodes.get(b)!, a, incident);
    this.severed.set(`${a}>${b}`, incident);
    this.severed.set(`${b}>${a}`, incident);
    this.link(a, b).push({ kind: 'down', orderly: closedByA });
    if (closedByA) {
      this.lose(this.link(b, a).splice(0), incident);
      this.hearDown(this.nodes.get(a)!, b, false);
    } else {
      this.cut(b, a, incident);
      this.link(b, a).push({ kind: 'down', orderly: false });
    }
  }

  private kill(id: number): void {
    this.result.kills++;
    const node = this.nodes.get(id)!;
    this.say(`node ${id} dies`);
    const others = [...this.nodes.keys()].filter((x) => x !== id);
    const incident = this.openIncident(others.map((x) => `${x}<${id}`));
    this.dirtyAt(node, undefined, incident);
    for (const x of others) {
      this.dirtyAt(this.nodes.get(x)!, id, incident);
      this.deadlines.delete(`${x}>${id}`);
      this.cut(id, x, incident);
      // What x will believe of id once the surviving prefix is delivered.
      let up = this.nodes.get(x)!.up.has(id);
      let told = false;
      for (const item of this.link(id, x)) {
        if (item.kind === 'down') [up, told] = [false, true];
        if (item.kind === 'up') [up, told] = [true, false];
      }
      if (up) {
        this.link(id, x).push({ kind: 'down', orderly: true });
        this.severed.set(`${x}>${id}`, incident);
      } else if (!told) {
        this.closeEnd(incident, `${x}<${id}`); // x knows already: the link was broken
      }
    }
    // Its own view of its links dies with it.
    for (const key of [...this.severed.keys()]) if (key.startsWith(`${id}>`)) this.severed.delete(key);
    // Whatever was still on its way to it dies with it, from live senders or dead ones.
    for (const [key, q] of this.links) if (key.endsWith(`>${id}`)) this.lose(q.splice(0), incident);
    for (const list of node.waiting.values()) this.result.opsFailed += list.length;
    this.result.opsFailed += node.runnable.length;
    this.nodes.delete(id);
    this.dead.add(id);
  }

  /** A dead node comes back once every live node has heard it died. */
  private restart(id: number): boolean {
    for (const x of this.nodes.keys()) if (this.nodes.get(x)!.up.has(id) || this.link(id, x).length > 0) return false;
    this.dead.delete(id);
    const prev = this.result.kills;
    this.boot(id, prev);
    this.say(`node ${id} restarts`);
    for (const x of this.nodes.keys()) {
      if (x === id) continue;
      this.severed.delete(`${x}>${id}`);
      this.link(id, x).push({ kind: 'up' });
      this.link(x, id).push({ kind: 'up' });
    }
    return true;
  }

  /** A broken link between live nodes heals once both ends have heard it broke. */
  private heal(a: number, b: number): boolean {
    const na = this.nodes.get(a)!;
    const nb = this.nodes.get(b)!;
    if (na.up.has(b) || nb.up.has(a) || this.severed.has(`${a}>${b}`) || this.severed.has(`${b}>${a}`)) return false;
    if (this.link(a, b).some((i) => i.kind === 'up') || this.link(b, a).some((i) => i.kind === 'up')) return false;
    this.say(`link ${a}–${b} heals`);
    this.link(a, b).push({ kind: 'up' });
    this.link(b, a).push({ kind: 'up' });
    return true;
  }

  // ---- the scheduler -------------------------------------------------------------

  private step(issueMore: boolean, faults: boolean): boolean {
    for (const [key, at] of this.deadlines) {
      if (at > this.now + 0.05) continue;
      const [a, b] = key.split('>').map(Number) as [number, number];
      this.deliver(a, b); // overdue: this delivery comes first
      this.now += 0.001;
      return true;
    }
    const choices: Array<() => void> = [];
    for (const [key, q] of this.links) {
      if (q.length === 0) continue;
      const [a, b] = key.split('>').map(Number) as [number, number];
      if (!this.nodes.has(b)) continue;
      choices.push(() => this.deliver(a, b));
    }
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
    if (due.length > 0) {
      choices.push(() => {
        const t = due[Math.floor(this.random() * due.length)]!;
        this.timers.splice(this.timers.indexOf(t), 1);
        const node = this.nodes.get(t.node);
        if (node && node.incarnation === t.incarnation) t.fn();
      });
    }
    if (issueMore && this.nextOp <= this.o.ops) choices.push(() => this.issue());
    if (faults) {
      if (this.random() < this.o.evictRate) {
        choices.push(() => {
          const live = [...this.nodes.values()];
          const node = live[Math.floor(this.random() * live.length)]!;
          const page = Math.floor(this.random() * this.o.pages);
          if (node.cache.state[page] !== PageState.Invalid && node.cache.evict(page)) this.say(`node ${node.id} evicts page ${page}`);
        });
      }
      if (this.random() < this.o.killRate && this.nodes.size > 1) {
        choices.push(() => this.kill([...this.nodes.keys()][Math.floor(this.random() * this.nodes.size)]!));
      }
      if (this.random() < this.o.breakRate && this.nodes.size > 1) {
        choices.push(() => {
          const live = [...this.nodes.keys()];
          const a = live[Math.floor(this.random() * live.length)]!;
          const b = live[Math.floor(this.random() * live.length)]!;
          if (a !== b && this.nodes.get(a)!.up.has(b) && this.nodes.get(b)!.up.has(a) && !this.severed.has(`${a}>${b}`)) this.breakLink(a, b, this.random() < 0.3);
        });
      }
    }
    this.repairs(choices, faults);
    if (choices.length === 0) {
      const next = this.timers.reduce((m, t) => Math.min(m, t.at), Infinity);
      if (next === Infinity) return false;
      this.now = next;
      return true;
    }
    choices[Math.floor(this.random() * choices.length)]!();
    this.now += this.random() * 0.05;
    return true;
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
        if (na.up.has(b) || this.random() >= p) continue;
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
        this.checkInvariants();
        if (++guard > this.o.ops * 200) this.fail('phase 1 does not finish');
      }
      guard = 0;
      while (this.step(false, false)) {
        this.result.steps++;
        this.checkInvariants();
        if (++guard > 100_000) this.fail('the cluster never settles (livelock?)');
      }
      this.checkQuiescent();
    } catch (err) {
      if (!(err instanceof SimFailure)) throw err;
      this.result.failure = err.message;
    }
    return this.result;
  }

  /** Healed and drained: nothing waits, and every directory matches its caches. */
  private checkQuiescent(): void {
    for (const node of this.nodes.values()) {
      for (const [page, ops] of node.waiting) this.fail(`node ${node.id}: ${ops.length} op(s) on page ${page} still wait at the end (e.g. op ${ops[0]!.id})`);
      if (node.home.busyPages > 0) this.fail(`node ${node.id}: ${node.home.busyPages} transaction(s) still open at the end`);
      for (const other of this.nodes.keys()) if (other !== node.id && !node.up.has(other)) this.fail(`node ${node.id} never heard node ${other} is back`);
    }
    for (let page = 0; page < this.o.pages; page++) {
      const id = this.homeOf(page);
      if (id === undefined) {
        for (const node of this.nodes.values()) if (node.cache.state[page] !== PageState.Invalid) this.fail(`page ${page} has no home yet, but node ${node.id} holds it`);
        continue;
      }
      const entry = this.nodes.get(id)!.home.entry(page);
      for (const node of this.nodes.values()) {
        const st = node.cache.state[page];
        if (st === PageState.Modified && entry.owner !== node.id) this.fail(`page ${page}: node ${node.id} holds it Modified, its home says owner ${entry.owner}`);
        if (st === PageState.Shared && !entry.sharers.includes(node.id)) this.fail(`page ${page}: node ${node.id} holds it Shared, its home lists sharers ${entry.sharers.join(',') || 'none'}`);
      }
    }
  }
}

/** Acks and Puts with data carry the only copy of a write home; grants only copy the master. */
function carriesWrite(m: Msg): boolean {
  return (m.flags & Flag.Data) !== 0 && (m.op === Op.Ack || m.op === Op.PutM);
}

const OP_NAMES: Record<number, string> = {
  [Op.GetS]: 'GetS', [Op.GetM]: 'GetM', [Op.PutS]: 'PutS', [Op.PutM]: 'PutM', [Op.GrantS]: 'GrantS',
  [Op.GrantM]: 'GrantM', [Op.Inv]: 'Inv', [Op.Down]: 'Down', [Op.Ack]: 'Ack', [Op.Where]: 'Where', [Op.Here]: 'Here',
};

function opName(m: Msg): string {
  const flags = [m.flags & Flag.Data ? `data=${decode(m.data!)}` : '', m.flags & Flag.Segment ? 'seg' : '', m.flags & Flag.Kept ? 'kept' : ''].filter(Boolean).join(' ');
  const where = m.home !== undefined ? ` home=${m.home}` : '';
  return `${OP_NAMES[m.op]}(p${m.page}${flags ? ` ${flags}` : ''}${where})`;
}

/** Options for seed `seed` of a family: every run draws its own cluster shape and rates. */
export function optionsFor(seed: number, family: 'calm' | 'evict' | 'faults'): SimOptions {
  const r = rng(seed ^ 0x5eed);
  const pick = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  return {
    hosts: pick(1, 3),
    nodesPerHost: pick(1, 2),
    pages: pick(1, 6),
    ops: pick(20, 80),
    holdMs: r() < 0.5 ? 0 : r() * 0.3,
    graceMs: 2 + r() * 5,
    quarantineMs: 0.5 + r() * 2,
    evictRate: family === 'calm' ? 0 : 0.05 + r() * 0.2,
    killRate: family === 'faults' ? 0.005 + r() * 0.02 : 0,
    breakRate: family === 'faults' ? 0.005 + r() * 0.02 : 0,
    firstTouch: r() < 0.4,
  };
}
