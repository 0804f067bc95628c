// First-touch placement: a page's home is the first node that touches it (or, when that
// node's host is full, a node of a host with room), so data lands next to the node
// that first used it.
//
// Every page has a fixed *manager* (page p: the (p mod N)-th node), which decides the
// page's home and its slot once and for all, and keeps that decision in a table in its
// own host's segment, so that it survives restarts. Each host's area of the region is
// split into one pool per manager, so managers allocate slots without asking each other.
// Nodes learn a page's home from its manager (Where → Here) and remember it; requests
// to the home carry the slot, so a restarted home never has to ask.
import { NaplusError } from '../errors.js';
import { Op, type Clock, type Homes, type Msg, type Wire } from './protocol.js';
import type { Logger } from '../log.js';

/** A manager's table, one entry per page it manages (entry i: page i·N + manager index). */
export interface HomeTable {
  get(i: number): { home: number; slot: number } | undefined;
  /** Must be durable as one unit: an entry half written is an entry not written. */
  set(i: number, home: number, slot: number): void;
}

/** The shape of a first-touch region: who manages what, and the pools in each host's area. */
export interface FirstTouchShape {
  region: number;
  pages: number;
  nodes: readonly number[];
  /** Host of each node, and the hosts in cluster-file order. */
  hostOf(node: number): string;
  hosts: readonly string[];
  /** Slots in each manager's pool on each host. */
  poolSize: number;
}

export function managerOf(shape: Pick<FirstTouchShape, 'nodes'>, page: number): number {
  return shape.nodes[page % shape.nodes.length]!;
}

/** The manager side: answers Where for the pages this node manages, assigning homes on first touch. */
export class FirstTouchManager {
  private readonly index: number;
  /** Slots taken from this manager's pool on each host. */
  private readonly used: number[];
  /** Next node to pick on each host when the asker is not there. */
  private readonly turn: number[];

  constructor(
    private readonly shape: FirstTouchShape,
    self: number,
    private readonly table: HomeTable,
    private readonly wire: Wire,
    private readonly log: Logger,
  ) {
    this.index = shape.nodes.indexOf(self);
    this.used = shape.hosts.map(() => 0);
    this.turn = shape.hosts.map(() => 0);
    for (let i = 0; i * shape.nodes.length + this.index < shape.pages; i++) {
      const e = table.get(i);
      if (e) this.used[shape.hosts.indexOf(shape.hostOf(shape.nodes[e.home]!))]!++;
    }
  }

  receive(from: number, msg: Msg): void {
    const { page } = msg;
    const n = this.shape.nodes.length;
    if (msg.op !== Op.Where || page % n !== this.index) {
      this.log('warn', `region #${this.shape.region}: node ${from} asked node ${this.wire.self} where page ${page} is, which it does not manage; ignored`);
      return;
    }
    const i = (page - this.index) / n;
    let e = this.table.get(i);
    if (!e) {
      e = this.assign(from);
      if (e) this.table.set(i, e.home, e.slot);
    }
    const reply: Msg = { op: Op.Here, flags: 0, region: this.shape.region, page };
    if (e) {
      reply.home = this.shape.nodes[e.home]!;
      reply.slot = e.slot;
    } else {
      this.log('error', `region #${this.shape.region}: no host has room left for page ${page} (first-touch pools of node ${this.wire.self} are full)`);
    }
    this.wire.send(from, reply);
  }

  /**
   * The asker's host if this manager's pool there has room, else the next host that has
   * room, on a node this manager can reach if there is one (in turn among them): a page
   * homed on an unreachable node is of no use until that node is back.
   */
  private assign(asker: number): { home: number; slot: number } | undefined {
    const { hosts, nodes, poolSize } = this.shape;
    const first = hosts.indexOf(this.shape.hostOf(asker));
    for (let k = 0; k < hosts.length; k++) {
      const h = (first + k) % hosts.length;
      if (this.used[h]! >= poolSize) continue;
      let home = asker;
      if (k > 0) {
        const there = nodes.filter((node) => this.shape.hostOf(node) === hosts[h]);
        const reachable = there.filter((node) => this.wire.isUp(node));
        const pick = reachable.length > 0 ? reachable : there;
        home = pick[this.turn[h]!++ % pick.length]!;
      }
      return { home: nodes.indexOf(home), slot: this.index * poolSize + this.used[h]!++ };
    }
    return undefined;
  }
}

interface Pending {
  then: Array<() => void>;
  fail: Array<(reason: string) => void>;
  /** A grace timer runs (the manager was unreachable). */
  expiring?: boolean;
}

/** The asking side: what this node knows of pages' homes, and the questions it has out. */
export class FirstTouchHomes implements Homes {
  private readonly home: Int32Array;
  private readonly slot: Uint32Array;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly shape: FirstTouchShape,
    private readonly wire: Wire,
    private readonly clock: Clock,
    /** How long a question waits for an unreachable manager. */
    private readonly graceMs: number,
  ) {
    this.home = new Int32Array(shape.pages);
    this.slot = new Uint32Array(shape.pages);
  }

  homeOf(page: number): number | undefined {
    return this.home[page] === 0 ? undefined : this.home[page];
  }

  slotOf(page: number): number | undefined {
    return this.home[page] === 0 ? undefined : this.slot[page];
  }

  learn(page: number, home: number, slot: number): void {
    this.home[page] = home;
    this.slot[page] = slot;
    // Whatever waited to know goes now, before anything asked later (order matters: a
    // GetS queued here must reach the home before a GetM sent once the home is known).
    const entry = this.pending.get(page);
    if (!entry) return;
    this.pending.delete(page);
    for (const t of entry.then) t();
  }

  resolve(page: number, then: () => void, fail: (reason: string) => void): void {
    if (this.home[page] !== 0) return then();
    const p = this.pending.get(page);
    if (p) {
      p.then.push(then);
      p.fail.push(fail);
      return;
    }
    this.pending.set(page, { then: [then], fail: [fail] });
    this.ask(page);
  }

  /** Asks the page's manager; an unreachable one is asked again when it is back (peerUp), for at most the grace time. */
  private ask(page: number): void {
    const manager = managerOf(this.shape, page);
    if (this.wire.isUp(manager)) this.wire.send(manager, { op: Op.Where, flags: 0, region: this.shape.region, page });
    else this.expireLater(page);
  }

  private expireLater(page: number): void {
    const entry = this.pending.get(page)!;
    if (entry.expiring) return;
    entry.expiring = true;
    this.clock.after(this.graceMs, () => {
      if (this.pending.get(page) !== entry) return;
      const manager = managerOf(this.shape, page);
      if (this.wire.isUp(manager)) {
        entry.expiring = false; // back, and asked again: its answer is on the way
        return;
      }
      this.pending.delete(page);
      const reason = `its manager, node ${manager}, which says where its home is, has been unreachable for ${this.graceMs} ms`;
      for (const f of entry.fail) f(reason);
    });
  }

  /** A manager is unreachable: its answers to our questions may never come. */
  peerDown(node: number): void {
    for (const page of this.pending.keys()) if (managerOf(this.shape, page) === node) this.expireLater(page);
  }

  /** The manager's answer. */
  receive(from: number, msg: Msg): void {
    const { page } = msg;
    const entry = this.pending.get(page);
    if (msg.op !== Op.Here || from !== managerOf(this.shape, page) || !entry) return;
    if (msg.home === undefined || msg.slot === undefined) {
      this.pending.delete(page);
      const err = new NaplusError('ENOSPC', `no host has room left for page ${page} of region #${this.shape.region}: enlarge the segments`);
      for (const f of entry.fail) f(err.message);
      return;
    }
    this.learn(page, msg.home, msg.slot);
  }

  /** Questions to a manager that is back go out again (the first may have been lost). */
  peerUp(node: number): void {
    for (const page of this.pending.keys()) if (managerOf(this.shape, page) === node) this.ask(page);
  }
}
