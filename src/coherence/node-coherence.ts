// The page protocols as one node runs them: one RegionProtocol per region (the one its
// cluster file names, see protocols.ts), the homes its placement gives, and the links to
// the other nodes. Messages a node has for the same peer in one turn go out as one
// transport message (in order); messages to itself (the node is also the home of its
// own pages) are delivered at the end of the turn, through the same code path, so the
// node is its own peer rather than a special case. The simulation builds this very
// class over its own links and clock.
import type { Message } from '../transport/index.js';
import { CoherenceCodec, COHERENCE_TYPE } from './codec.js';
import { Op, type CacheMemory, type Clock, type Completion, type DirectoryStore, type Links, type MasterStore, type Msg, type NoticeStore, type AtomicDoneFn, type AtomicRequest, type ProtocolCounters, type RegionProtocol, type Topology, type VersionStore, type Wire } from './protocol.js';
import type { Logger } from '../log.js';
import { PROTOCOLS, type ProtocolName } from './protocols.js';
import { LossLog } from './loss-log.js';
import { StaticHomes } from './homes.js';
import { FirstTouchHomes, FirstTouchManager, type FirstTouchShape, type HomeTable } from './first-touch.js';
import { NoticeRelay, type SyncNotices } from './sync-notices.js';

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
  protocol: ProtocolName;
  memory: CacheMemory;
  master: MasterStore;
  /** Owners of the pages homed on this node, kept where they outlive its process. */
  directory: DirectoryStore;
  /** Release consistency: page versions and this node's notices as a sync home, in the segment. */
  versions?: VersionStore;
  notices?: NoticeStore;
}

export interface CoherenceOptions {
  /** Every node of the cluster, in cluster-file order. */
  nodes: readonly number[];
  links: Links;
  clock: Clock;
  /** Bytes per transport page (the transport's pageSize). */
  wirePageSize: number;
  /** Most page-data bytes one transport message may carry. */
  maxDataBytes: number;
  /** See ProtocolContext. */
  holdMs: number;
  graceMs: number;
  quarantineMs: number;
  log: Logger;
}

export class NodeCoherence {
  readonly protocols: RegionProtocol[];
  /** Writes this node lost before they were durable, in every region. */
  readonly losses = new LossLog();
  /** The write notices locks and barriers carry for this node's regions (none unless one runs release consistency). */
  readonly notices: SyncNotices | undefined;
  /** Per region: the nodes, hosts and homes its protocol works with. */
  readonly topologies: Topology[];
  private readonly managers: Array<FirstTouchManager | undefined>;
  private readonly learners: Array<FirstTouchHomes | undefined>;
  private readonly codec: CoherenceCodec;
  private outbox = new Map<number, Msg[]>();
  private flushQueued = false;
  private readonly wire: Wire;
  private readonly self: number;

  constructor(
    private readonly regions: CoherentRegion[],
    private readonly o: CoherenceOptions,
  ) {
    const { links, clock } = o;
    const self = (this.self = links.self);
    this.wire = {
      self,
      isUp: (node) => node === self || links.isUp(node),
      send: (to, msg) => this.post(to, msg),
      drop: (node, reason) => links.drop(node, reason),
    };
    this.codec = new CoherenceCodec(regions, o.nodes, o.wirePageSize, o.maxDataBytes);
    this.learners = regions.map((r) => (r.placement.kind === 'first-touch' ? new FirstTouchHomes(r.placement.shape, this.wire, clock, o.graceMs) : undefined));
    this.managers = regions.map((r) => (r.placement.kind === 'first-touch' ? new FirstTouchManager(r.placement.shape, self, r.placement.table, this.wire, o.log) : undefined));
    this.topologies = regions.map(({ hostOf, placement: p }, i) => ({
      hostOf,
      nodes: o.nodes,
      homes: p.kind === 'first-touch' ? this.learners[i]! : new StaticHomes(p.home, p.slot),
    }));
    this.protocols = regions.map((r, region) => PROTOCOLS[r.protocol]({
      region, pages: r.pages, pageSize: r.pageSize, topology: this.topologies[region]!, wire: this.wire, memory: r.memory, master: r.master, directory: r.directory,
      versions: r.versions, notices: r.notices, clock, losses: this.losses,
      holdMs: o.holdMs, graceMs: o.graceMs, quarantineMs: o.quarantineMs, log: o.log,
    }));
    this.notices = NoticeRelay.over(this.protocols.map((p) => p.notices));
    links.handle(COHERENCE_TYPE, (peer, message) => this.receive(peer, message));
    links.onPeerDown((peer, gone) => this.peerDown(peer, gone));
    links.onPeerUp((peer) => this.peerUp(peer));
  }

  private receive(peer: number, message: Message): void {
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
    if (m.op === Op.Where) this.firstTouch(this.managers, from, m)?.receive(from, m);
    else if (m.op === Op.Here) this.firstTouch(this.learners, from, m)?.receive(from, m);
    else this.protocols[m.region]!.receive(from, m);
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
      this.o.clock.soon(() => this.flush());
    }
  }

  /** Sends what this turn produced: one transport message per peer (more if large), in order. */
  private flush(): void {
    this.flushQueued = false;
    const outbox = this.outbox;
    this.outbox = new Map();
    this.readMasters(outbox);
    for (const [to, msgs] of outbox) {
      if (to === this.self) {
        for (const m of msgs) this.dispatch(to, m);
        continue;
      }
      for (const message of this.codec.encode(msgs)) this.o.links.send(to, message);
    }
  }

  /** Fills the messages that carry master copies, with one read per region (see Msg.fromMaster). */
  private readMasters(outbox: Map<number, Msg[]>): void {
    const wanted = this.regions.map((): Msg[] => []);
    for (const msgs of outbox.values()) for (const m of msgs) if (m.fromMaster) wanted[m.region]!.push(m);
    wanted.forEach((msgs, region) => {
      if (msgs.length === 0) return;
      const data = this.regions[region]!.master.read(msgs.map((m) => m.page));
      msgs.forEach((m, i) => (m.data = data[i]));
    });
  }

  private peerDown(peer: number, gone: boolean): void {
    this.outbox.delete(peer); // written for the link that is gone; never for a new one
    for (const p of this.protocols) p.peerDown(peer, gone);
    for (const l of this.learners) l?.peerDown(peer);
  }

  private peerUp(peer: number): void {
    for (const p of this.protocols) p.peerUp(peer);
    for (const l of this.learners) l?.peerUp(peer);
  }

  /**
   * A synchronization point for the whole node: every region's writes so far reach their
   * master copies before `done` is called (with the first failure, if any).
   */
  release(done: Completion): void {
    let left = this.protocols.length;
    let failed = false;
    if (left === 0) return done();
    for (const p of this.protocols) {
      p.release((err) => {
        if (failed) return;
        if (err !== undefined) {
          failed = true;
          return done(err);
        }
        if (--left === 0) done();
      });
    }
  }

  /**
   * An atomic operation at the word's home (release consistency: see RegionProtocol.atomic).
   * Fails for a region whose apps do them on their own mapping.
   */
  atomic(region: number, request: AtomicRequest, done: AtomicDoneFn): void {
    const p = this.protocols[region]!;
    if (!p.atomic) return done(`region #${region} serves atomic operations in the apps' own mappings`);
    p.atomic(request, done);
  }

  counters(region: number): ProtocolCounters {
    return this.protocols[region]!.counters;
  }

  /**
   * Clean stop: every dirty page this node holds goes home, and every page homed here
   * that another node holds dirty is called home. Resolves when all are in, or after
   * `timeoutMs` (a peer that does not answer cannot hold the stop up for ever).
   */
  stop(timeoutMs: number): Promise<{ flushed: number; unfinished: number }> {
    let flushed = 0;
    for (const p of this.protocols) flushed += p.stop();
    const unfinished = () => this.protocols.reduce((n, p) => n + p.openTransactions, 0);
    return new Promise((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        for (const p of this.protocols) p.onIdle = undefined;
        this.flush(); // what is still queued goes out before the transport closes
        resolve({ flushed, unfinished: unfinished() });
      };
      this.o.clock.after(timeoutMs, finish);
      for (const p of this.protocols) p.onIdle = () => unfinished() === 0 && finish();
      this.o.clock.soon(() => unfinished() === 0 && finish());
    });
  }
}
