// The vocabulary every page protocol shares, and the seam between a protocol and the
// world around it. A protocol (sequential/, one day more, listed in protocols.ts) is a
// per-region choice, the way placement is. It sees the node only through the interfaces
// here, never sockets, userfaultfd or timers of its own: the real node and the
// simulation supply the same interfaces, so both run the very same state machines.
//
// Messages between two nodes are delivered in the order they were sent (FIFO per link),
// at most once; a lost peer is reported to both ends (peerDown) before anything travels
// on a new link.
import type { Logger } from '../log.js';
import type { FaultSource } from '../trace/fault-event.js';
import type { Message } from '../transport/index.js';
import type { LossLog } from './loss-log.js';

export type Access = 'read' | 'write';

export const enum Op {
  /** cache → home: a read copy, please. */
  GetS = 1,
  /** cache → home: the only writable copy, please (an upgrade when the cache has S). */
  GetM = 2,
  /** cache → home: I dropped my clean copy (eviction). */
  PutS = 3,
  /** cache → home: I dropped my dirty copy; its data is attached or already in the segment. */
  PutM = 4,
  /** home → cache: you have S now. */
  GrantS = 5,
  /** home → cache: you have M now. */
  GrantM = 6,
  /** home → cache: drop your copy (write it back first if it is dirty), then Ack. */
  Inv = 7,
  /** home → cache: give up write permission (write back), keep a read copy, then Ack. */
  Down = 8,
  /** cache → home: done with an Inv or Down. */
  Ack = 9,
  /** node → page's manager (first-touch placement): where is this page's home? */
  Where = 10,
  /** manager → node: the page's home and slot (assigned to the asker's host on first touch). */
  Here = 11,
  /** cache → home: my dirty copy, to write into the master copy; I keep the page (a synchronization). */
  Clean = 12,
  /** home → cache: your Clean is in the master copy. */
  Cleaned = 13,
  /** cache → restarted home: I hold this page of yours exclusively (kept while you were gone). */
  Held = 14,
  /** cache → home: that was every page of yours I hold (the end of my Held reports). */
  Reported = 15,
  /** home → cache: your Held report came too late; the page is no longer yours. */
  Disown = 16,
  /** cache → home: answer once you have taken in everything I sent before (a synchronization). */
  Fence = 17,
  /** home → cache: every message you sent before your Fence is taken in (its data is in the master copies). */
  Fenced = 18,
  // Release consistency (release/): no ownership, so no Inv, Down or Ack; versions instead.
  /** cache → home: the page's master copy and its version, please. */
  Fetch = 19,
  /** home → cache: the page (Data, or Segment) at `version`. */
  Page = 20,
  /** cache → home: put these words (`extra`), or this whole page (Data), into the master copy; `version`: the version the writer's copy was at. */
  Diff = 21,
  /** home → cache: your Diff is in the master copy, which is at `version` now (Current: your copy was the master copy before it). */
  Diffed = 22,
  /** cache → home: an atomic operation on a word of the master copy (`extra`); `version`: the request's token. */
  Atomic = 23,
  /** home → cache: the atomic operation's result (`extra`), or Failed; `version`: the request's token. */
  AtomicDone = 24,
  /** cache → home: the version of this page, please (a diff of the cache's may or may not have got in). */
  Stat = 25,
  /** home → cache: the page's `version`. */
  Stated = 26,
}

/** Ops a page protocol may send (first and last), for the codec's bounds check. */
export const FIRST_OP = Op.GetS;
export const LAST_OP = Op.Stated;

export const Flag = {
  /** The page's bytes travel with the message. */
  Data: 1,
  /** Grant: copy the page from this host's segment (requester and home share a host). */
  Segment: 2,
  /** Ack: the sender still holds a read copy (a Down that found the page). */
  Kept: 4,
  /** Diffed: the writer's copy was the master copy before its diff, so it is the master copy now. */
  Current: 8,
  /** AtomicDone: the operation was refused (bad offset or operation); nothing changed. */
  Failed: 16,
} as const;

export interface Msg {
  op: Op;
  flags: number;
  /** Index of the region in the cluster file. */
  region: number;
  page: number;
  /** With Flag.Data: the page, owned by the message (a copy, never a view of live memory). */
  data?: Uint8Array;
  /**
   * With Flag.Data and no `data`: the page's master copy, read from the MasterStore when
   * the message leaves, together with every other one leaving then (one read per run of
   * slots rather than one per page). Nothing can change a master copy meanwhile: no node
   * granted the page from it can write it home before the grant has arrived.
   */
  fromMaster?: boolean;
  /**
   * Where the page's master copy lives in its home host's segment area. Under first-touch
   * placement only the page's manager decides it, so requests carry it to the home.
   */
  slot?: number;
  /** Here: the page's home node (absent: no host had room for it). */
  home?: number;
  /** Received with Flag.Data: this page's share of the bytes its message's pages took on the wire. */
  wireBytes?: number;
  /** Release consistency: a page's version (Page, Diff, Diffed), or a request's token (Atomic, AtomicDone). */
  version?: number;
  /** Bytes of the op's own that are not a page: a Diff's words, an atomic operation or its result. */
  extra?: Uint8Array;
}

/** How a region's protocol messages leave a node. `send` to a peer that is down drops the message. */
export interface Wire {
  readonly self: number;
  send(to: number, msg: Msg): void;
  isUp(node: number): boolean;
  /** Gives up on a peer that keeps its link alive but does not answer (see Links.drop). */
  drop(node: number, reason: string): void;
}

/**
 * The node's links to its peers as protocol layers use them: typed messages, FIFO per
 * peer, peer events. The transport in a node; a simulated network in the tests. Each
 * layer registers the message types it owns.
 */
export interface Links {
  readonly self: number;
  isUp(peer: number): boolean;
  /** Dropped (the layer hears peerDown) when the peer is not up. */
  send(peer: number, message: Message): void;
  handle(type: number, handler: (peer: number, message: Message) => void): void;
  /**
   * Ends the session with `peer` on purpose, for a peer that keeps its link alive but does
   * not answer: this end hears peerDown (not gone) at once, the peer hears it too (as
   * not gone: its process lives on), and a new session may start afterwards.
   */
  drop(peer: number, reason: string): void;
  /**
   * `gone`: the peer's process is known to be gone (nothing listens where it did, or it came
   * back as a new process), and with it all it held in memory. Otherwise the peer may be
   * alive (cut off, stopped, or it gave the session up) and hears of the loss itself.
   */
  onPeerDown(listener: (peer: number, gone: boolean) => void): void;
  onPeerUp(listener: (peer: number) => void): void;
}

/**
 * Which node homes each page and where its master copy is. A static placement knows
 * every page's home; first-touch placement learns each page's from the page's manager.
 */
export interface Homes {
  /** Undefined while this node does not know it yet. */
  homeOf(page: number): number | undefined;
  /** The page's slot in its home host's area of the segment. */
  slotOf(page: number): number | undefined;
  /** Calls `then` once homeOf(page) is known, or `fail` when it cannot be learnt. */
  resolve(page: number, then: () => void, fail: (reason: string) => void): void;
  /** A message to this node as the page's home told where the page's master copy is. */
  learn(page: number, home: number, slot: number): void;
}

/** The cluster's nodes and hosts, and the homes of a region's pages. */
export interface Topology {
  hostOf(node: number): string;
  /** Every node of the cluster, in cluster-file order. */
  readonly nodes: readonly number[];
  readonly homes: Homes;
}

/** Time and timers; the simulation runs on virtual time. */
export interface Clock {
  now(): number;
  after(ms: number, fn: () => void): void;
  /** Runs `fn` once the work of this turn is done (before any I/O): where a tick's messages leave. */
  soon(fn: () => void): void;
}

/** What a grant brought, for the node's counters and traces. */
export interface Grant {
  source: FaultSource;
  /** Bytes the page took on the wire (0 unless it came from another host). */
  wireBytes: number;
  /** The page was not in this node's cache before. */
  arrived: boolean;
  /** A page this node could read became writable. */
  upgrade: boolean;
  /** Fetched before any fault asked for it (it is expected soon): map it into the apps now. */
  ahead?: boolean;
}

/** The cache's own copy of a region and the apps that map it (RegionService in a node). */
export interface CacheMemory {
  fillFromSegment(page: number): void;
  install(page: number, data: Uint8Array): void;
  /** A copy of this node's copy of `page`. */
  copyOut(page: number): Uint8Array;
  /** Copies this node's copy of `page` into `into` (a release diffs many pages: no buffer each). */
  copyInto(page: number, into: Uint8Array): void;
  /** Copies this node's copy of `page` into the host segment (the page is homed on this host). */
  writeBack(page: number): void;
  /** No app may write `page` any more. */
  protect(page: number): void;
  /** Every app loses `page`. */
  drop(page: number): void;
  /**
   * Writes to `page` since the last synchronization are lost (its home was cut off, or
   * died before taking them in), and the page is no longer in this cache (dropped first):
   * every app of this node takes SIGBUS at its next access to it, so none reads the older
   * bytes unknowing.
   */
  lose(page: number, reason: string): void;
  /** The protocol permits more on `page` now (see PageProtocol.permits): resolve what waits on it. */
  granted(page: number, grant: Grant): void;
  /** `page` cannot be had: fail what waits on it. */
  failed(page: number, reason: string): void;
}

/** The master copies of the pages homed on this node, in its host's segment (at Homes.slotOf). */
export interface MasterStore {
  /** Copies of the master copies of `pages`, in order. */
  read(pages: readonly number[]): Uint8Array[];
  write(page: number, data: Uint8Array): void;
  /**
   * The master copy of `page` itself, homed on this host (a view of the segment, not a
   * copy), for changes made in place: release consistency puts each writer's changed words
   * there, and only those, so that writers of other words of the page undo nothing.
   */
  view(page: number): Uint8Array;
}

/**
 * A home's directory entries that must outlive its process: which node owns which page
 * homed here (kept in the host segment, beside the master copies). A restarted home
 * learns from it which pages may be held dirty elsewhere, and asks before serving them.
 */
export interface DirectoryStore {
  /** Pages homed on this node that had an owner when its last process ended: that owner's node id, and the page's slot. */
  owned(): Array<{ page: number; owner: number; slot: number }>;
  /** Records the owner of `page`, at its `slot` (undefined: none, the master copy is current). */
  record(page: number, slot: number, owner: number | undefined): void;
}

/**
 * Release consistency: the version of each page homed on this host (how many diffs its
 * master copy has taken in), kept in the host segment beside the master copies, so that it
 * survives the home's process and every node of the host can read it.
 */
export interface VersionStore {
  /** The version of `page`'s master copy (0: never written); `page` is homed on this host. */
  read(page: number): number;
  /** Only the page's home writes it, and only after the master copy. */
  write(page: number, version: number): void;
  /** One more diff is in the master copy (put there by any node of the host): the new version, atomically. */
  bump(page: number): number;
}

/**
 * Release consistency: the write notices this node holds as a home of locks and barriers
 * (the newest version of each page released to it), kept where they outlive its process:
 * a restarted lock home must still tell the next holder what the last one wrote.
 */
export interface NoticeStore {
  read(page: number): number;
  write(page: number, version: number): void;
}

/** How an asynchronous protocol operation ends: without error, or with why it failed. */
export type Completion = (err?: string) => void;

export type AtomicOp = 'load' | 'store' | 'add' | 'sub' | 'and' | 'or' | 'xor' | 'exchange' | 'compareExchange';

/** An atomic operation on the aligned 32- or 64-bit word at byte `offset` of a region. */
export interface AtomicRequest {
  op: AtomicOp;
  width: 4 | 8;
  offset: number;
  /** The operand (store, add, …; compareExchange: the replacement), as an unsigned word. */
  value: bigint;
  /** compareExchange: the value expected. */
  expected: bigint;
}

/** The word's value before the operation (as an unsigned word), or why it failed. */
export type AtomicDoneFn = (err: string | undefined, old?: bigint) => void;

/**
 * What a protocol whose acquires must learn what was written elsewhere (release
 * consistency) exchanges through locks and barriers: write notices, opaque bytes to the
 * synchronization layer. Notices travel from a releaser to the lock's (or barrier's) home,
 * and from there to the next acquirer, each in deltas (what the other end has not had).
 */
export interface NoticeExchange {
  /** What this node knows that sync home `home` has not had from it (carried by an unlock or a barrier arrival). */
  outgoing(home: number): Uint8Array | undefined;
  /** As a sync home: the notices `from` carried. Throws EPROTO on malformed ones (nothing taken). */
  absorb(from: number, notices: Uint8Array): void;
  /** As a sync home: what `to` has not had from here (carried by a lock grant or a barrier release). */
  incoming(to: number): Uint8Array | undefined;
  /** An app of this node acquired, with these notices: the copies they make stale go. Throws EPROTO on malformed ones. */
  acquire(notices: Uint8Array): void;
  /** An app of this node lost a lock with the lock's home: writes not yet published must never be (see release/cache.ts). */
  lockLost(reason: string): void;
}

/** What the node asks of a page protocol when its apps fault. */
export interface PageProtocol {
  /** Whether an app of this node may make `access` to `page` now, without asking anyone. */
  permits(page: number, access: Access): boolean;
  /** A fault needs `access` to `page`; the answer comes through CacheMemory.granted or failed. */
  request(page: number, access: Access): void;
  /** Cache pressure: give `page` up (dirty data goes home first); false if it cannot go now. */
  evict(page: number): boolean;
}

export interface ProtocolCounters {
  /** Grants this node made as a home. */
  grants: number;
  /** Pages called home by this node as a home stopping. */
  recalls: number;
  /** Requests answered late because the page had just been granted. */
  held: number;
  /** Pages whose writes since their last write-back were lost with a node. */
  lostPages: number;
  /** Faults failed because the page's home stayed unreachable. */
  failedPages: number;
  /** Pages written home at synchronizations. */
  cleaned: number;
  /** Transactions open at this node as a home. */
  busyPages: number;
  /** Release consistency: twins made (first write to a page after its release), diffs sent home and their bytes, copies dropped by write notices. */
  twins?: number;
  diffs?: number;
  diffBytes?: number;
  invalidations?: number;
}

/** One region's protocol on one node: its cache side and its home side. */
export interface RegionProtocol extends PageProtocol {
  /** A protocol message for this region from `from` (this node itself included). */
  receive(from: number, msg: Msg): void;
  /**
   * A synchronization point: every write this node's apps made before it is in its
   * page's master copy (the home host's segment) when `done` is called; it fails when a
   * home stays unreachable past the grace time. (Writes already lost are not its
   * business: they are in the LossLog.)
   */
  release(done: Completion): void;
  /** `gone`: the peer's process is gone (see Links.onPeerDown). */
  peerDown(peer: number, gone: boolean): void;
  peerUp(peer: number): void;
  /**
   * Clean stop: every dirty page this node holds goes home, and this node as a home
   * grants nothing more and calls home what others hold dirty. Returns the pages
   * written home; `openTransactions` then counts down, and `onIdle` fires at zero.
   */
  stop(): number;
  readonly openTransactions: number;
  onIdle: (() => void) | undefined;
  readonly counters: ProtocolCounters;
  /** Release consistency: the write notices its synchronizations carry (absent: none needed). */
  readonly notices?: NoticeExchange;
  /** An atomic operation on a word, done at the word's home (absent: apps do them on their mapping). */
  atomic?(request: AtomicRequest, done: AtomicDoneFn): void;
}

/** What a protocol is made of, per region on one node. */
export interface ProtocolContext {
  region: number;
  pages: number;
  pageSize: number;
  topology: Topology;
  wire: Wire;
  memory: CacheMemory;
  master: MasterStore;
  directory: DirectoryStore;
  /** Release consistency: page versions and this node's notices as a sync home (absent for other protocols). */
  versions?: VersionStore;
  notices?: NoticeStore;
  clock: Clock;
  /** How long a fresh grant is kept before it can be taken away (see sequential/cache.ts). */
  holdMs: number;
  /** How long requests wait for an unreachable home before their faults fail. */
  graceMs: number;
  /** How long a home waits before it forgets an unreachable node's copies. */
  quarantineMs: number;
  /** Where the protocol notes writes it lost before they were durable (the node's, shared by its regions). */
  losses: LossLog;
  log: Logger;
}
