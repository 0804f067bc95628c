// What the simulation checks, after every step and at the end.
//
// The data ledger: every value ever written to each page, the latest one, and the pages
// whose latest writes may be lost because an incident (a dead node, a broken link) is
// not over yet. Such pages are exempt until every end of the incident has heard of it;
// then all copies must agree on one value that was once written there, and that value
// anchors the page again.
//
// After every step: single writer (at most one live node holds a page Modified, and
// then nobody holds it Shared), and every valid copy holds the latest value written.
// At the end, once the network is healed and drained: nothing waits (no op, request or
// transaction), and each directory matches its caches.
import { PageState } from '../../../src/coherence/sequential/cache.js';
import type { SimNode } from './node.js';

export class SimFailure extends Error {}

export function fail(why: string): never {
  throw new SimFailure(why);
}

export class DataLedger {
  private readonly latest: Float64Array;
  private readonly written: Array<Set<number>>;
  /** Pages whose latest writes may be lost, by the incidents they wait for. */
  private readonly uncertain = new Map<number, Set<string>>();
  private readonly openIncidents = new Map<string, Set<string>>();
  private incidentSeq = 0;
  private version = 0;
  /** The last value each node wrote to each page: node → page → value. */
  private readonly lastWriteBy = new Map<number, Map<number, number>>();
  /** The newest value of each page that a synchronization made durable: no anchor may be older. */
  private readonly durable: Float64Array;

  constructor(
    pages: number,
    private readonly say: (line: string) => void,
  ) {
    this.latest = new Float64Array(pages);
    this.durable = new Float64Array(pages);
    this.written = Array.from({ length: pages }, () => new Set([0]));
  }

  /** A new value written to `page` by an app of `node`. */
  write(page: number, node: number): number {
    const v = ++this.version;
    this.latest[page] = v;
    this.written[page]!.add(v);
    let mine = this.lastWriteBy.get(node);
    if (!mine) this.lastWriteBy.set(node, (mine = new Map()));
    mine.set(page, v);
    return v;
  }

  /** A node died: its writes went with it, and its next process's synchronizations do not answer for them. */
  nodeDied(node: number): void {
    this.lastWriteBy.delete(node);
  }

  /**
   * A synchronization starts at `node`: what its apps wrote so far must be durable once
   * it has succeeded. Returns what to call when it ends. A synchronization that failed
   * told its app that the node's writes up to then may be lost (the node's other apps
   * learn it at their next synchronization): later ones no longer answer for them.
   */
  synchronizing(node: number): (succeeded: boolean) => void {
    const writes = [...(this.lastWriteBy.get(node) ?? [])];
    return (succeeded) => {
      if (!succeeded) return void this.lastWriteBy.delete(node);
      for (const [page, v] of writes) this.durable[page] = Math.max(this.durable[page]!, v);
    };
  }

  /** An incident whose ends (named "a<b": a hears of b) must all hear of it before it is over. */
  openIncident(ends: string[]): string {
    const key = `incident${this.incidentSeq++}`;
    this.openIncidents.set(key, new Set(ends));
    return key;
  }

  /** One end of an incident has heard of it; when all have, its pages may be anchored. */
  closeEnd(incident: string, end: string): void {
    const open = this.openIncidents.get(incident);
    if (!open) return;
    open.delete(end);
    if (open.size > 0) return;
    this.openIncidents.delete(incident);
    for (const set of this.uncertain.values()) set.delete(incident);
  }

  /** Every open incident that `end` closes. */
  closeAll(end: string): void {
    for (const incident of [...this.openIncidents.keys()]) this.closeEnd(incident, end);
  }

  /** A write to `page` may be lost until incident `key` is over. */
  mayBeLost(page: number, incident: string): void {
    let set = this.uncertain.get(page);
    if (!set) this.uncertain.set(page, (set = new Set()));
    if (this.openIncidents.has(incident)) set.add(incident);
    this.say(`  page ${page} uncertain (${incident})`);
  }

  /** Checks `node`'s copy of `page` against the ledger. */
  check(node: SimNode, page: number, what: string): void {
    const v = node.mem[page]!;
    const pending = this.uncertain.get(page);
    if (pending) {
      if (pending.size > 0) return; // its incident is not over: the value may still change
      if (!this.written[page]!.has(v)) fail(`${what}: node ${node.id} has ${v} in page ${page}, a value never written there`);
      if (v < this.durable[page]!) fail(`${what}: node ${node.id} has ${v} in page ${page}, but ${this.durable[page]} was written there before a synchronization that succeeded (a synchronized write is lost)`);
      this.uncertain.delete(page);
      this.latest[page] = v; // anchored: from now on every copy must agree with this
      this.say(`  page ${page} anchored at ${v}`);
      return;
    }
    if (v !== this.latest[page]) fail(`${what}: node ${node.id} has ${v} in page ${page}, the latest write was ${this.latest[page]}`);
  }
}

/** Single writer, and every valid copy holds the latest value. */
export function checkPages(nodes: Iterable<SimNode>, pages: number, ledger: DataLedger): void {
  const live = [...nodes];
  for (let page = 0; page < pages; page++) {
    const m: SimNode[] = [];
    const s: SimNode[] = [];
    for (const node of live) {
      const st = node.protocol.cache.state[page];
      if (st === PageState.Modified) m.push(node);
      else if (st === PageState.Shared) s.push(node);
    }
    if (m.length > 1) fail(`page ${page} is Modified at nodes ${m.map((n) => n.id).join(', ')}`);
    if (m.length === 1 && s.length > 0) fail(`page ${page} is Modified at node ${m[0]!.id} and Shared at ${s.map((n) => n.id).join(', ')}`);
    for (const node of [...m, ...s]) ledger.check(node, page, 'valid copy');
  }
}

/** Healed and drained: nothing waits, and every directory matches its caches. */
export function checkQuiescent(nodes: Map<number, SimNode>, pages: number, homeOf: (page: number) => number | undefined): void {
  for (const node of nodes.values()) {
    for (const [page, ops] of node.waiting) fail(`node ${node.id}: ${ops.length} op(s) on page ${page} still wait at the end (e.g. op ${ops[0]!.id})`);
    if (node.protocol.openTransactions > 0) fail(`node ${node.id}: ${node.protocol.openTransactions} transaction(s) still open at the end`);
    for (const other of nodes.keys()) if (other !== node.id && !node.endpoint.up.has(other)) fail(`node ${node.id} never heard node ${other} is back`);
  }
  for (let page = 0; page < pages; page++) {
    const id = homeOf(page);
    if (id === undefined) {
      for (const node of nodes.values()) if (node.protocol.cache.state[page] !== PageState.Invalid) fail(`page ${page} has no home yet, but node ${node.id} holds it`);
      continue;
    }
    const entry = nodes.get(id)!.protocol.home.entry(page);
    for (const node of nodes.values()) {
      const st = node.protocol.cache.state[page];
      if (st === PageState.Modified && entry.owner !== node.id) fail(`page ${page}: node ${node.id} holds it Modified, its home says owner ${entry.owner}`);
      if (st === PageState.Shared && !entry.sharers.includes(node.id)) fail(`page ${page}: node ${node.id} holds it Shared, its home lists sharers ${entry.sharers.join(',') || 'none'}`);
    }
  }
}
