// The coherence protocol as one node runs it: a cache and a home directory per region,
// joined to the other nodes through the transport. Messages a node has for the same
// peer in one tick go out as one transport message (in order); messages to itself (the
// node is also the home of its own pages) are delivered on the next microtask, through
// the same code path, so the node is its own peer rather than a special case.
import { performance } from 'node:perf_hooks';
import type { Message, Transport } from '../transport/index.js';
import { CacheController, type CacheCounters } from './cache.js';
import { HomeDirectory, type HomeCounters } from './home.js';
import { CoherenceCodec } from './codec.js';
import { isHomeOp, Op, type CacheMemory, type Clock, type Log, type MasterStore, type Msg, type Topology, type Wire } from './protocol.js';
import { StaticHomes } from './homes.js';
import { FirstTouchHomes, FirstTouchManager, type FirstTouchShape, type HomeTable } from './first-touch.js';

/** Where a region's pages are homed: fixed by the cluster file, or decided on first touch. */
export type Placement =
  | { kind: 'static'; home: ArrayLike<number>; slot: ArrayLike<number> }
  | { kind: 'first-touch'; shape: FirstTouchShape; table: HomeTable };

export interface CoherentRegion {
  pages: number;
  pageSize: number;
  /** Page slots in a host's area of the segment. */
  slots: number;
  hostOf(node: number): string;
  placement: Placement;
  memory: CacheMemory;
  master: MasterStore;
}

export interface CoherenceOptions {
  nodeId: number;
  /** Every node of the cluster, in cluster-file order. */
  nodes: readonly number[];
  /** The links to the other nodes; absent in a single-node cluster. */
  transport?: Transport;
  /** Bytes per transport page (the transport's pageSize). */
  wirePageSize: number;
  /** Most page-data bytes one transport message may carry. */
  maxDataBytes: number;
  /** See CacheController: how long a fresh grant is kept, how long requests wait for a lost home. */
  holdMs: number;
  graceMs: number;
  /** See HomeDirectory.peerDown. */
  quarantineMs: number;
  log: Log;
}

export interface CoherenceStats {
  home: HomeCounters & { busyPages: number };
  cache: CacheCounters;
}

const clock: Clock = {
  now: () => performance.now(),
  after: (ms, fn) => {
    if (ms >= 1) return void setTimeout(fn, ms).unref();
    // Timers are whole milliseconds; a hold of a fraction of one is polled for, each
    // turn of the event loop (I/O is served in between).
    const due = performance.now() + ms;
    const check = () => (performance.now() >= due ? fn() : setImmediate(check));
    setImmediate(check);
  },
};

export class NodeCoherence {
  readonly caches: CacheController[];
  readonly homes: HomeDirectory[];
  /** Per region: the nodes, hosts and homes its protocol works with. */
  readonly topologies: Topology[];
  private readonly managers: Array<FirstTouchManager | undefined>;
  private readonly learners: Array<FirstTouchHomes | undefined>;
  private readonly codec: CoherenceCodec;
  private outbox = new Map<number, Msg[]>();
  private flushQueued = false;
  private readonly wire: Wire;

  constructor(
    private readonly regions: CoherentRegion[],
    private readonly o: CoherenceOptions,
  ) {
    const self = o.nodeId;
    this.wire = {
      self,
      isUp: (node) => node === self || (o.transport?.isUp(node) ?? false),
      send: (to, msg) => this.post(to, msg),
    };
    this.codec = new CoherenceCodec(regions, o.nodes, o.wirePageSize, o.maxDataBytes);
    this.learners = regions.map((r) => (r.placement.kind === 'first-touch' ? new FirstTouchHomes(r.placement.shape, this.wire, clock, o.graceMs) : undefined));
    this.managers = regions.map((r) => (r.placement.kind === 'first-touch' ? new FirstTouchManager(r.placement.shape, self, r.placement.table, this.wire, o.log) : undefined));
    this.topologies = regions.map(({ hostOf, placement: p }, i) => ({
      hostOf,
      nodes: o.nodes,
      homes: p.kind === 'first-touch' ? this.learners[i]! : new StaticHomes(p.home, p.slot),
    }));
    this.caches = regions.map((r, i) => new CacheController(i, r.pages, this.topologies[i]!, this.wire, r.memory, clock, { holdMs: o.holdMs, graceMs: o.graceMs }, o.log));
    this.homes = regions.map((r, i) => new HomeDirectory(i, r.pages, this.topologies[i]!, this.wire, r.master, clock, o.quarantineMs, o.log));
    const t = o.transport;
    if (t) {
      t.on('peer-down', (peer, _reason, byPeer) => this.peerDown(peer, byPeer));
      t.on('peer-up', (peer) => this.peerUp(peer));
    }
  }

  /** A coherence message from a peer (the transport's handler routes COHERENCE_TYPE here). */
  receive(peer: number, message: Message): void {
    let msgs: Msg[];
    try {
      msgs = this.codec.decode(message);
    } catch (err) {
      this.o.log('error', `node ${peer} ${(err as Error).message}; message ignored`);
      return;
    }
    for (const m of msgs) this.dispatch(peer, m);
  }

  private dispatch(from: number, m: Msg): void {
    if (isHomeOp(m.op)) this.homes[m.region]!.receive(from, m);
    else if (m.op === Op.Where) this.firstTouch(this.managers, from, m)?.receive(from, m);
    else if (m.op === Op.Here) this.firstTouch(this.learners, from, m)?.receive(from, m);
    else this.caches[m.region]!.receive(from, m);
  }

  private firstTouch<T>(per: Array<T | undefined>, from: number, m: Msg): T | undefined {
    const it = per[m.region];
    if (!it) this.o.log('warn', `node ${from} sent a first-touch message for region #${m.region}, which is not placed first-touch; ignored`);
    return it;
  }

  private post(to: number, msg: Msg): void {
    const q = this.outbox.get(to);
    if (q) q.push(msg);
    else this.outbox.set(to, [msg]);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Sends what this tick produced: one transport message per peer (more if large), in order. */
  private flush(): void {
    this.flushQueued = false;
    for (const r of this.regions) r.master.settle?.();
    const outbox = this.outbox;
    this.outbox = new Map();
    for (const [to, msgs] of outbox) {
      if (to === this.o.nodeId) {
        for (const m of msgs) this.dispatch(to, m);
        continue;
      }
      try {
        for (const message of this.codec.encode(msgs)) this.o.transport!.send(to, message);
      } catch (err) {
        // The link went down since: the protocol hears of it through peer-down.
        this.o.log('debug', `${msgs.length} coherence message(s) to node ${to} dropped: ${(err as Error).message}`);
      }
    }
  }

  private peerDown(peer: number, byPeer: boolean): void {
    this.outbox.delete(peer); // written for the link that is gone; never for a new one
    for (const h of this.homes) h.peerDown(peer, byPeer);
    for (const l of this.learners) l?.peerDown(peer);
    for (const c of this.caches) c.peerDown(peer);
  }

  private peerUp(peer: number): void {
    for (const h of this.homes) h.peerUp(peer);
    for (const l of this.learners) l?.peerUp(peer);
    for (const c of this.caches) c.peerUp(peer);
  }

  stats(region: number): CoherenceStats {
    const home = this.homes[region]!;
    return { home: { ...home.counters, busyPages: home.busyPages }, cache: { ...this.caches[region]!.counters } };
  }

  /**
   * Clean stop: every dirty page this node holds goes home, and every page homed here
   * that another node holds dirty is called home. Resolves when all are in, or after
   * `timeoutMs` (a peer that does not answer cannot hold the stop up for ever).
   */
  stop(timeoutMs: number): Promise<{ flushed: number; unfinished: number }> {
    let flushed = 0;
    for (const c of this.caches) flushed += c.flush();
    for (const h of this.homes) h.recall();
    const unfinished = () => this.homes.reduce((n, h) => n + h.busyPages, 0);
    return new Promise((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        for (const h of this.homes) h.onIdle = undefined;
        this.flush(); // what is still queued goes out before the transport closes
        resolve({ flushed, unfinished: unfinished() });
      };
      const timer = setTimeout(finish, timeoutMs);
      for (const h of this.homes) h.onIdle = () => unfinished() === 0 && finish();
      queueMicrotask(() => unfinished() === 0 && finish());
    });
  }
}
