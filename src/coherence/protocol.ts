// The coherence protocol's vocabulary: page states, the messages caches and homes
// exchange, and what the protocol needs from the world around it. Nothing here knows
// sockets, userfaultfd or timers of its own: the real node and the simulation supply
// the same interfaces, so both run the very same state machines (cache.ts, home.ts).
//
// Model: sequential consistency by single writer / multiple readers per page (MSI),
// with the directory at the page's home. Messages between two nodes are delivered in
// the order they were sent (FIFO per link), at most once; a lost link is reported to
// both ends (peerDown) before anything travels on a new one.

export const enum PageState {
  Invalid = 0,
  Shared = 1,
  Modified = 2,
}

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
}

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
   * Where the page's master copy lives in its home host's segment area. Under first-touch
   * placement only the page's manager decides it, so requests carry it to the home.
   */
  slot?: number;
  /** Here: the page's home node (absent: no host had room for it). */
  home?: number;
  /** Received with Flag.Data: this page's share of the bytes its message's pages took on the wire. */
  wireBytes?: number;
}

/** Where a fault's data came from, for counters and traces. */
export type Source = 'cache' | 'segment' | 'remote';

/** How messages leave a node. `send` to a peer that is down drops the message. */
export interface Wire {
  readonly self: number;
  send(to: number, msg: Msg): void;
  isUp(node: number): boolean;
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
}

/** The cache's own copy of a region and the apps that map it (RegionService in a node). */
export interface CacheMemory {
  fillFromSegment(page: number): void;
  install(page: number, data: Uint8Array): void;
  /** A copy of this node's copy of `page`. */
  copyOut(page: number): Uint8Array;
  /** Copies this node's copy of `page` into the host segment (the page is homed on this host). */
  writeBack(page: number): void;
  /** No app may write `page` any more (M → S). */
  protect(page: number): void;
  /** Every app loses `page` (→ I). */
  drop(page: number): void;
  /** `page` reached `level` (state already set): resolve what waits on it. */
  granted(page: number, before: PageState, level: PageState, source: Source, wireBytes: number): void;
  /** `page` cannot be had: fail what waits on it. */
  failed(page: number, reason: string): void;
}

/** The master copies of the pages homed on this node, in its host's segment (at Homes.slotOf). */
export interface MasterStore {
  /**
   * A copy of the master copy of `page`. It may be filled only by `settle()`, which the
   * node calls before any message leaves; meanwhile the master copy cannot change (no
   * page granted from it has an owner who could write it home before then).
   */
  read(page: number): Uint8Array;
  write(page: number, data: Uint8Array): void;
  /** Fills what read() handed out (in as few system calls as runs of slots allow). */
  settle?(): void;
}

export type Log = (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;

/** Messages a page's home handles (the rest go to caches, or to first-touch managers and askers). */
export function isHomeOp(op: Op): boolean {
  return op === Op.GetS || op === Op.GetM || op === Op.PutS || op === Op.PutM || op === Op.Ack;
}
