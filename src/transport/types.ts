// The transport's public vocabulary. Kept apart from the implementation so that the
// coherence layer (and its simulation) can name these types without pulling in sockets.
import type { LogLevel } from '../log.js';
import type { CompressMode } from './compression.js';

export interface PeerAddress {
  id: number;
  host: string;
  port: number;
}

export interface TlsOptions {
  key: Buffer;
  cert: Buffer;
  /** The cluster's CA: both ends must present a certificate it signed. */
  ca: Buffer;
}

export interface TransportOptions {
  cluster: string;
  nodeId: number;
  /** Port 0 picks a free port; `Transport.port` tells which. */
  listen: { host: string; port: number };
  /** Every other node of the cluster. A lower id dials a higher one, so the address of a
   *  lower-id peer only appears in log lines (it may be a placeholder port). */
  peers: PeerAddress[];
  /** Shared cluster secret; it never crosses the wire. */
  secret: Buffer;
  /** Bytes per page; both ends of a link must agree. Default 4096. */
  pageSize?: number;
  tls?: TlsOptions;
  /** An idle link sends a heartbeat this often. Default 1000 ms. */
  heartbeatMs?: number;
  /**
   * A peer from which nothing (data or heartbeat) arrived for this long, counted in time
   * this process was running, is lost, whether its connection is up or not. Default 5000 ms.
   */
  peerTimeoutMs?: number;
  /**
   * Bytes of frames sent to one peer and not yet acknowledged (kept to send again after a
   * broken connection) past which its session is lost. Default 64 MiB.
   */
  replayBufferBytes?: number;
  /** Refused connections are logged in full up to 5 per interval of this length, then summed up in one line. Default 60000 ms. */
  rejectionLogMs?: number;
  /** Default timeout of `request()`. Default 30000 ms. */
  requestTimeoutMs?: number;
  /** Cap on one frame on the wire and on the page bytes one message carries. Default 2 MiB. */
  maxFrameBytes?: number;
  /**
   * LZ4 for page payloads: 'auto' (default) compresses while the link is backlogged
   * and skips data that has just proved incompressible (see compression.ts for why);
   * 'always' tries every batch (slow links where single-page latency matters);
   * 'never' sends pages raw (to show what LZ4 buys). Zero pages are markers in all modes.
   */
  compress?: CompressMode;
  log?: (level: LogLevel, msg: string) => void;
}

export interface PagePayload {
  /** Page number, 0 ≤ page < 2^48; its meaning belongs to the caller. */
  page: number;
  /** Exactly `pageSize` bytes. Copied or compressed during `send()`, so the caller may
   *  reuse the memory as soon as `send()` returns. */
  data: Uint8Array;
  /** Set on received pages that travelled as an all-zero marker (data is zeroes). */
  zero?: boolean;
}

/**
 * One message. `type` is the caller's (0..65535). `body` is sent as-is when it is a
 * Uint8Array (the compact binary path: no JSON on either side) and as JSON otherwise;
 * on receipt a binary body is a Buffer that views the received bytes.
 */
export interface Message {
  type: number;
  body?: unknown;
  pages?: PagePayload[];
  /** On received messages with pages: bytes their page section took on the wire (table, markers, raw or LZ4 data). */
  pageWireBytes?: number;
}

export type Reply = (msg: Message) => void;
export type MessageHandler = (peer: number, msg: Message, reply?: Reply) => void;

/** Counters per peer; they accumulate across connections and sessions. */
export interface PeerStats {
  /** A session with this peer is alive (`isUp`). */
  up: boolean;
  /** The session has a working connection now. */
  connected: boolean;
  /** Connections to this peer that passed the handshake. */
  connects: number;
  /** Sessions started with this peer, and connections that resumed one. */
  sessions: number;
  resumes: number;
  bytesOut: number;
  bytesIn: number;
  framesOut: number;
  framesIn: number;
  /** Frames sent again after a broken connection, and frames received twice (dropped). */
  replayedFrames: number;
  duplicateFrames: number;
  pagesOut: number;
  pagesIn: number;
  /** Page bytes handed to `send()`/`request()`/`reply()` for this peer (pages × pageSize). */
  pageBytesRaw: number;
  /** What those pages cost on the wire: page table plus (compressed or raw) data. */
  pageBytesWire: number;
  /** Outgoing pages by how they travelled. */
  zeroPages: number;
  rawPages: number;
  lz4Pages: number;
  /** Requests to this peer awaiting a reply. */
  pending: number;
  /** Bytes sent but not yet taken by the kernel (queued in this process). */
  queuedBytes: number;
  /** Bytes sent and not yet acknowledged by the peer (its replay buffer). */
  unackedBytes: number;
  /** The TCP connection the session uses now. */
  connection?: { local: string; remote: string };
  /** Why the last connection (or attempt) to this peer ended, while there is none. */
  lastFailure?: string;
}
