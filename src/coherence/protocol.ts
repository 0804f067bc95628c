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
}

/** Ops a page protocol may send (first and last), for the codec's bounds check. */
export const FIRST_OP = Op.GetS;
export const LAST_OP = Op.Fenced;

export const Flag = {
  /** The page's bytes travel with the message. */
  Data: 1,
  /** Grant: copy the page from this host's segment (requester and home share a host). */
  Segment: 2,
  /** Ack: the sender still holds a read copy (a Down that found the page). */
  Kept: 4,
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
}

/** The cache's own copy of a region and the apps that map it (RegionService in a node). */
export interface CacheMemory {
  fillFromSegment(page: number): void;
  install(page: number, data: Uint8Array): void;
  /** A copy of this node's copy of `page`. */
  copyOut(page: number): Uint8Array;
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

/** How an asynchronous protocol operation ends: without error, or with why it failed. */
export type Completion = (err?: string) => void;

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
}

/** What a protocol is made of, per region on one node. */
export interface ProtocolContext {
  region: number;
  pages: number;
  topology: Topology;
  wire: Wire;
  memory: CacheMemory;
  master: MasterStore;
  directory: DirectoryStore;
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
