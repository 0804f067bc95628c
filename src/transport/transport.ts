// The transport: a listening socket, one connection per peer at a time (the lower id
// dials the higher, so two nodes never race to build two), a session per pair of peer
// processes that outlives its connections (session.ts), redialling, liveness probes,
// heartbeats, and the per-peer state that outlives any one session (stats, last failure).
//
// How a peer's loss is decided (README "Transport between nodes"):
// - A connection that breaks costs nothing but time: the lower id redials at once, the
//   higher id probes the lower one's listening port. A refused connection (nothing
//   listens: the process is gone) loses the session at once; an answer means the peer
//   lives and will redial; no answer means keep trying.
// - A session is lost when nothing came from the peer for `peerTimeoutMs` of this
//   process's running time (awake-clock.ts), connected or not; when its replay buffer
//   overflows; when the peer breaks the protocol; when either end drops it; when the peer
//   turns out to be a new process or to hold the session no more. A lost session never
//   resumes: the next connection starts a new one.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { checkUint, invalidArgument, NaplusError } from '../errors.js';
import type { LogLevel } from '../log.js';
import { AwakeClock } from './awake-clock.js';
import { Kind } from './frame.js';
import { INCARNATION_BYTES, type HandshakeConfig, type ListenAddress, type PeerHello } from './handshake.js';
import { Link, type LinkOwner, type Rejection } from './link.js';
import { PageCodec } from './pages.js';
import { RejectionLog } from './reject-log.js';
import { decodeResume, encodeResume, newSessionId, Session, type ResumeFrame, type SessionLimits, type SessionOwner } from './session.js';
import type { Message, MessageHandler, PeerAddress, PeerStats, Reply, TransportOptions } from './types.js';

const DEFAULTS = {
  pageSize: 4096,
  heartbeatMs: 1000,
  peerTimeoutMs: 5000,
  requestTimeoutMs: 30_000,
  maxFrameBytes: 2 << 20,
  replayBufferBytes: 64 << 20,
  rejectionLogMs: 60_000,
};
const REDIAL_MIN_MS = 50;
const REDIAL_MAX_MS = 3000;
/** An ack waits at most this long for a frame to ride on, and goes alone after this many bytes. */
const ACK_DELAY_MS = 20;
const ACK_BYTES = 2 << 20;
/** RFC 5705 label for the TLS keying material the handshake proofs are bound to. */
const EKM_LABEL = 'EXPORTER-naplus-handshake';
const WILDCARD = new Set(['', '0.0.0.0', '::', '[::]']);

interface Peer {
  address: PeerAddress;
  stats: PeerStats;
  session: Session | undefined;
  /** The authenticated connection (resuming or up); at most one at a time. */
  link: Link | undefined;
  /** The connection being dialed (this end dials peers with higher ids). */
  dialing: Link | undefined;
  /** A connection attempt to a lower-id peer's port, only to learn whether it still listens. */
  probing: net.Socket | undefined;
  redialMs: number;
  redialTimer: NodeJS.Timeout | undefined;
  lastFailure: string | undefined;
  /** When anything last arrived from this peer's closed connections (awake clock). */
  lastRx: number;
  /** Since when the session has had no connection (awake clock). */
  brokenAt: number | undefined;
  /** Where the peer listens, from its hello (for probes). */
  listen: ListenAddress | undefined;
  /** The session this end gave up last, and why: the peer hears it in the next RESUME. */
  lost: { sid: number; reason: string } | undefined;
}

function newStats(): PeerStats {
  return {
    up: false,
    connected: false,
    connects: 0,
    sessions: 0,
    resumes: 0,
    bytesOut: 0,
    bytesIn: 0,
    framesOut: 0,
    framesIn: 0,
    replayedFrames: 0,
    duplicateFrames: 0,
    pagesOut: 0,
    pagesIn: 0,
    pageBytesRaw: 0,
    pageBytesWire: 0,
    zeroPages: 0,
    rawPages: 0,
    lz4Pages: 0,
    pending: 0,
    queuedBytes: 0,
    unackedBytes: 0,
  };
}

function check(opts: TransportOptions): void {
  if (typeof opts.cluster !== 'string' || opts.cluster.length === 0 || Buffer.byteLength(opts.cluster) > 255) {
    throw invalidArgument('cluster', 'a name of 1 to 255 bytes', opts.cluster);
  }
  if (typeof opts.listen?.host !== 'string' || Buffer.byteLength(opts.listen.host) > 255) throw invalidArgument('listen.host', 'a host of at most 255 bytes', opts.listen?.host);
  if (checkUint('nodeId', opts.nodeId) > 0xffffffff) throw invalidArgument('nodeId', 'an integer below 2^32', opts.nodeId);
  if (!Buffer.isBuffer(opts.secret) || opts.secret.length < 16) throw invalidArgument('secret', 'a Buffer of at least 16 bytes', opts.secret?.length);
  const seen = new Set<number>();
  for (const p of opts.peers) {
    if (checkUint('peers[].id', p.id) > 0xffffffff || p.id === opts.nodeId || seen.has(p.id)) {
      throw invalidArgument('peers[].id', `a unique node id other than this node's own (${opts.nodeId})`, p.id);
    }
    seen.add(p.id);
  }
  if (opts.compress !== undefined && !['auto', 'always', 'never'].includes(opts.compress)) {
    throw invalidArgument('compress', "'auto', 'always' or 'never'", opts.compress);
  }
  for (const k of ['pageSize', 'heartbeatMs', 'peerTimeoutMs', 'requestTimeoutMs', 'maxFrameBytes', 'replayBufferBytes', 'rejectionLogMs'] as const) {
    if (opts[k] !== undefined && (checkUint(k, opts[k]) === 0 || opts[k]! > 0xffffffff)) throw invalidArgument(k, 'a positive integer below 2^32', opts[k]);
  }
  // A quiet peer sends a heartbeat only every heartbeatMs: a shorter timeout would drop it.
  const heartbeat = opts.heartbeatMs ?? DEFAULTS.heartbeatMs;
  if ((opts.peerTimeoutMs ?? DEFAULTS.peerTimeoutMs) < 2 * heartbeat) {
    throw invalidArgument('peerTimeoutMs', `at least twice heartbeatMs (${2 * heartbeat})`, opts.peerTimeoutMs);
  }
  const frame = opts.maxFrameBytes ?? DEFAULTS.maxFrameBytes;
  if ((opts.replayBufferBytes ?? DEFAULTS.replayBufferBytes) < 2 * frame) {
    throw invalidArgument('replayBufferBytes', `at least twice maxFrameBytes (${2 * frame})`, opts.replayBufferBytes);
  }
}

export declare interface Transport {
  on(event: 'peer-up', listener: (peer: number) => void): this;
  /**
   * A session is lost. `byPeer`: nothing of it survives at the peer (it gave it up, or
   * its process is gone). `gone`: the peer's process is gone (nothing listens where it
   * did, or it came back as a new process), so whatever it held in memory is gone too.
   */
  on(event: 'peer-down', listener: (peer: number, reason: NaplusError, byPeer: boolean, gone: boolean) => void): this;
  once(event: 'peer-up', listener: (peer: number) => void): this;
  once(event: 'peer-down', listener: (peer: number, reason: NaplusError, byPeer: boolean, gone: boolean) => void): this;
  off(event: 'peer-up' | 'peer-down', listener: (...args: any[]) => void): this;
}

export class Transport extends EventEmitter {
  readonly nodeId: number;
  /** This process's id for its peers: a restarted node is a new incarnation, and its sessions are new. */
  private readonly incarnation = randomBytes(INCARNATION_BYTES);
  /** What links and sessions see of this transport (kept off its public face). */
  private readonly owner: LinkOwner & SessionOwner;
  private readonly peers = new Map<number, Peer>();
  private readonly links = new Set<Link>();
  private readonly handlers = new Map<number, MessageHandler>();
  private fallback: MessageHandler | undefined;
  private readonly server: net.Server;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly clock = new AwakeClock();
  private readonly rejections: RejectionLog;
  private readonly handshake: Omit<HandshakeConfig, 'binding' | 'refuse' | 'listen'>;
  private readonly limits: SessionLimits;
  private readonly o: Required<Pick<TransportOptions, 'heartbeatMs' | 'peerTimeoutMs' | 'requestTimeoutMs'>>;
  private closing = false;
  private closed: Promise<void> | undefined;

  private constructor(private readonly opts: TransportOptions) {
    super();
    const pageSize = opts.pageSize ?? DEFAULTS.pageSize;
    this.nodeId = opts.nodeId;
    const maxFrameBytes = opts.maxFrameBytes ?? DEFAULTS.maxFrameBytes;
    this.o = {
      heartbeatMs: opts.heartbeatMs ?? DEFAULTS.heartbeatMs,
      peerTimeoutMs: opts.peerTimeoutMs ?? DEFAULTS.peerTimeoutMs,
      requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
    };
    const replayBytes = opts.replayBufferBytes ?? DEFAULTS.replayBufferBytes;
    this.limits = { replayBytes, ackBytes: Math.min(ACK_BYTES, replayBytes / 8), ackDelayMs: ACK_DELAY_MS };
    this.owner = {
      nodeId: opts.nodeId,
      codec: new PageCodec(pageSize, maxFrameBytes),
      maxFrameBytes,
      heartbeatMs: this.o.heartbeatMs,
      clock: this.clock,
      compress: opts.compress ?? 'auto',
      handler: (peer, msg, reply) => this.dispatch(peer, msg, reply),
      log: (level, msg) => this.log(level, msg),
      authenticated: (link, hello) => this.authenticated(link, hello),
      resume: (link, frame) => this.resume(link, decodeResume(frame)),
      sessionFailed: (link, reason, byPeer) => this.sessionFailed(link, reason, byPeer),
      rejected: (link, why, reason) => this.rejected(link, why, reason),
      closed: (link, reason, errno) => this.linkClosed(link, reason, errno),
      lose: (session, reason, byPeer, deferred) => this.lose(session, reason, byPeer, deferred),
    };
    this.rejections = new RejectionLog(opts.rejectionLogMs ?? DEFAULTS.rejectionLogMs, (level, msg) => this.log(level, msg));
    this.handshake = { cluster: opts.cluster, nodeId: opts.nodeId, secret: opts.secret, pageSize, maxFrameBytes, incarnation: this.incarnation };
    for (const address of opts.peers) {
      this.peers.set(address.id, {
        address,
        stats: newStats(),
        session: undefined,
        link: undefined,
        dialing: undefined,
        probing: undefined,
        redialMs: REDIAL_MIN_MS,
        redialTimer: undefined,
        lastFailure: undefined,
        lastRx: 0,
        brokenAt: undefined,
        listen: undefined,
        lost: undefined,
      });
    }
    this.server = opts.tls
      ? tls.createServer({ key: opts.tls.key, cert: opts.tls.cert, ca: opts.tls.ca, requestCert: true, rejectUnauthorized: true }, (s) => this.accept(s))
      : net.createServer((s) => this.accept(s));
    if (opts.tls) {
      this.server.on('tlsClientError', (err: Error, s: tls.TLSSocket) => {
        // A failed TLS socket has lost its address; the TCP socket under it (Node's `_parent`,
        // not a public field, hence the care) still has it.
        const raw = (s as unknown as { _parent?: net.Socket })._parent ?? s;
        const who = `${raw.remoteAddress ?? 'unknown'}:${raw.remotePort ?? '?'}`;
        this.rejections.add('TLS handshake failed', `TLS handshake with ${who} failed: ${err.message}`, 'warn');
      });
    }
    this.heartbeat = setInterval(() => this.tick(), this.o.heartbeatMs);
  }

  /** Listens, starts dialing the peers with higher ids, and resolves once listening. */
  static async start(opts: TransportOptions): Promise<Transport> {
    check(opts);
    const t = new Transport(opts);
    try {
      await new Promise<void>((resolve, reject) => {
        t.server.once('error', reject);
        t.server.listen(opts.listen.port, opts.listen.host, () => {
          t.server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      clearInterval(t.heartbeat);
      const e = err as NodeJS.ErrnoException;
      throw new NaplusError(e.code ?? 'ELISTEN', `Node ${opts.nodeId} cannot listen on ${opts.listen.host}:${opts.listen.port}: ${e.message}`, { cause: err });
    }
    t.server.on('error', (err) => t.log('error', `listening socket failed: ${err.message}`));
    for (const peer of t.peers.values()) if (peer.address.id > opts.nodeId) t.dial(peer);
    t.log('info', `listening on ${opts.listen.host}:${t.port}${opts.tls ? ' (TLS)' : ''}`);
    return t;
  }

  /** The port this node listens on (the one the system chose when asked for port 0). */
  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /**
   * Fire and forget, FIFO per peer, handled by the peer exactly once while the session
   * lasts (queued while its connection is down). Throws EPEERLOST when there is no session.
   */
  send(peer: number, msg: Message): void {
    this.session(peer).send(Kind.Message, 0, msg);
  }

  /** Rejects with EPEERLOST when there is no session or it is lost first, ETIMEDOUT, or EREMOTE when the peer's handler threw. */
  request(peer: number, msg: Message, timeoutMs = this.o.requestTimeoutMs): Promise<Message> {
    try {
      return this.session(peer).request(msg, timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Messages of any type without a handler of its own (see handle) go to `handler`. */
  onMessage(handler: MessageHandler): void {
    this.fallback = handler;
  }

  /** Messages of `type` go to `handler`: each layer above registers the types it owns. */
  handle(type: number, handler: MessageHandler): void {
    this.handlers.set(type, handler);
  }

  private dispatch(peer: number, msg: Message, reply?: Reply): void {
    const handler = this.handlers.get(msg.type) ?? this.fallback;
    if (!handler) throw new NaplusError('ENOHANDLER', `node ${this.nodeId} has no handler for messages of type ${msg.type}`);
    handler(peer, msg, reply);
  }

  /** Whether a session with `peer` is alive (its connection may be down meanwhile). */
  isUp(peer: number): boolean {
    return this.peers.get(peer)?.session !== undefined;
  }

  /**
   * Ends the session with `peer` on purpose: 'peer-down' fires here (byPeer false) before
   * this returns, the peer is told why and sees 'peer-down' (byPeer true), and the next
   * connection starts a new session. Returns false if there was no session.
   */
  dropSession(peer: number, reason: string): boolean {
    const s = this.peers.get(peer)?.session;
    if (!s) {
      if (!this.peers.has(peer)) throw invalidArgument('peer', `a peer of node ${this.nodeId}`, peer);
      return false;
    }
    this.lose(s, `dropped on request: ${reason}`, false);
    return true;
  }

  /** Resolves once every listed peer is up; rejects ETIMEDOUT naming the ones that are not and why. */
  waitForPeers(ids: number[], timeoutMs: number): Promise<void> {
    for (const id of ids) if (!this.peers.has(id)) return Promise.reject(invalidArgument('ids', 'peers of this node', id));
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!ids.every((id) => this.isUp(id))) return;
        this.off('peer-up', check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.off('peer-up', check);
        const missing = ids.filter((id) => !this.isUp(id)).map((id) => `node ${id} (${this.peers.get(id)!.lastFailure ?? 'no connection yet'})`);
        reject(new NaplusError('ETIMEDOUT', `Node ${this.nodeId}: ${missing.join(', ')} not up within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('peer-up', check);
      check();
    });
  }

  /** Backpressure: resolves when the session with `peer` can take more without queueing in memory. */
  whenWritable(peer: number): Promise<void> {
    try {
      return this.session(peer).whenWritable();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  stats(): Record<number, PeerStats> {
    const out: Record<number, PeerStats> = {};
    for (const [id, p] of this.peers) {
      const s = p.session;
      const link = s && p.link?.state === 'up' ? p.link : undefined;
      out[id] = {
        ...p.stats,
        up: s !== undefined,
        connected: link !== undefined,
        pending: s?.pendingCount ?? 0,
        queuedBytes: link?.queuedBytes ?? 0,
        unackedBytes: s?.unackedBytes ?? 0,
      };
      if (link) out[id]!.connection = { local: `${link.socket.localAddress}:${link.socket.localPort}`, remote: link.address };
      else if (p.lastFailure) out[id]!.lastFailure = p.lastFailure;
    }
    return out;
  }

  /** Stops listening and dialing, ends every session (failing pending requests) and resolves when all is shut. */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closing = true;
    clearInterval(this.heartbeat);
    for (const p of this.peers.values()) {
      clearTimeout(p.redialTimer);
      p.probing?.destroy();
    }
    this.closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const p of this.peers.values()) {
      if (!p.session) continue;
      // What was sent before close() goes to the kernel first, ahead of the Drop.
      p.link?.flush();
      this.lose(p.session, `node ${this.nodeId} is shutting down`, false);
    }
    for (const link of [...this.links]) if (!link.finishing) link.close(`node ${this.nodeId} is shutting down`);
    this.rejections.flush();
    return this.closed;
  }

  private log(level: LogLevel, msg: string): void {
    this.opts.log?.(level, msg);
  }

  private session(peer: number): Session {
    const p = this.peers.get(peer);
    if (!p) throw invalidArgument('peer', `a peer of node ${this.nodeId}`, peer);
    if (!p.session) throw new NaplusError('EPEERLOST', `No session with node ${peer}${p.lastFailure ? `: ${p.lastFailure}` : ''}`);
    return p.session;
  }

  /** Every heartbeat: idle links send one, and once this turn's sockets are read, peers are judged. */
  private tick(): void {
    this.stalled(this.clock.ran(this.o.heartbeatMs, this.o.heartbeatMs / 4), 'its heartbeat timer fired that late');
    for (const link of this.links) link.ping();
    // Timers run before sockets are read: what peers sent while this process did not run
    // is still unread. Judge them after this turn's reads (setImmediate runs after them).
    setImmediate(() => this.judge());
  }

  private stalled(ms: number, how: string): void {
    if (ms > this.o.peerTimeoutMs / 2) this.log('warn', `node ${this.nodeId} did not run for ${Math.round(ms)} ms (${how}): its peers may have given its sessions up meanwhile`);
  }

  private judge(): void {
    if (this.closing) return;
    this.stalled(this.clock.ran(0, this.o.heartbeatMs / 4), 'between its heartbeat and the judgement of its peers');
    const now = this.clock.now();
    const timeout = this.o.peerTimeoutMs;
    for (const link of this.links) {
      if (link.state === 'handshake' && link.connected && now - link.opened > timeout) {
        link.reject('handshake timeout', `${link.who} did not complete the handshake within ${timeout} ms`);
      }
    }
    for (const [id, p] of this.peers) {
      const silent = Math.round(now - Math.max(p.lastRx, p.link?.lastRx ?? 0));
      if (p.session && silent > timeout) {
        const how = p.link?.state === 'up' ? 'its connection is up but silent' : `no connection for ${Math.round(now - (p.brokenAt ?? now))} ms`;
        this.lose(p.session, `no frames from node ${id} for ${silent} ms, over peerTimeoutMs (${timeout} ms); ${how}`, false);
      } else if (p.link && !p.session && silent > timeout) {
        p.link.close(`no frames from ${p.link.who} for ${silent} ms`);
      } else if (p.session && p.link && silent > 2 * this.o.heartbeatMs && id > this.nodeId && !p.dialing) {
        // A silent connection may sit on a dead path (no reset ever comes): a new one is
        // dialed alongside, and whichever shows life first carries the session on.
        this.log('info', `no frames from node ${id} for ${silent} ms; dialing a new connection alongside`);
        this.dial(p);
      }
    }
  }

  private authenticated(link: Link, hello: PeerHello): { stats: PeerStats; resume: Buffer } {
    const peer = this.peers.get(hello.nodeId)!;
    if (peer.dialing === link) peer.dialing = undefined;
    const older = peer.link;
    peer.link = link;
    older?.close(`node ${hello.nodeId} connected again (${link.address}); the older connection is closed`);
    link.peerMaxFrame = hello.maxFrameBytes;
    peer.listen = WILDCARD.has(hello.listen.host) ? { host: link.socket.remoteAddress ?? '', port: hello.listen.port } : hello.listen;
    peer.stats.connects++;
    link.fresh = newSessionId();
    const s = peer.session;
    const resume = encodeResume({
      sid: s?.mine ?? 0,
      peerSid: s?.theirs ?? 0,
      received: s?.handled ?? 0,
      fresh: link.fresh,
      lostSid: peer.lost?.sid ?? 0,
      reason: peer.lost?.reason ?? '',
    });
    return { stats: peer.stats, resume };
  }

  /** The peer's RESUME: the same session on both sides resumes; anything else starts a new one. */
  private resume(link: Link, r: ResumeFrame): void {
    const id = link.peerId!;
    const peer = this.peers.get(id)!;
    const s = peer.session;
    const now = this.clock.now();
    if (s && r.sid === s.theirs && r.peerSid === s.mine && s.incarnation === link.incarnation) {
      const before = peer.stats.replayedFrames;
      s.attach(link, r.received);
      link.attach(s);
      peer.stats.resumes++;
      this.log('info', `link to node ${id} at ${link.address} is up again after ${Math.round(now - (peer.brokenAt ?? now))} ms; session resumed (${peer.stats.replayedFrames - before} frame(s) sent again)`);
    } else {
      if (s) this.lose(s, this.whyGone(s, link, r), true, false, link, s.incarnation !== link.incarnation);
      if (link.state === 'closed') return; // a peer-down handler closed the transport
      const fresh = new Session(this.owner, id, link.fresh, r.fresh, link.incarnation!, Math.min(this.owner.maxFrameBytes, link.peerMaxFrame), this.limits, peer.stats);
      peer.session = fresh;
      peer.lost = undefined;
      peer.stats.sessions++;
      fresh.attach(link, 0);
      link.attach(fresh);
      this.log('info', `link to node ${id} at ${link.address} is up (new session)`);
      this.emit('peer-up', id);
    }
    peer.brokenAt = undefined;
    peer.redialMs = REDIAL_MIN_MS;
    peer.lastFailure = undefined;
  }

  private whyGone(s: Session, link: Link, r: ResumeFrame): string {
    const id = s.peerId;
    if (s.incarnation !== link.incarnation) return `node ${id} restarted: its new process (incarnation ${link.incarnation}) holds no session with node ${this.nodeId}`;
    if (r.lostSid === s.theirs && r.reason) return `node ${id} gave the session up: ${r.reason}`;
    return `node ${id} holds the session no more`;
  }

  /**
   * Ends a session: isUp turns false at once; the pending requests fail, 'peer-down' fires,
   * and only then does its connection close (telling the peer why, unless the peer is
   * the one that gave up), so that a peer that sees the close may rely on this node having
   * acted on the loss. `deferred` (a replay overflow inside send()) puts all but the first
   * step on the next tick, so that no handler runs inside the caller's send().
   */
  private lose(session: Session, reason: string, byPeer: boolean, deferred = false, spare?: Link, gone = false): void {
    const id = session.peerId;
    const peer = this.peers.get(id)!;
    if (!session.alive || peer.session !== session) return;
    session.alive = false;
    peer.session = undefined;
    peer.lost = { sid: session.mine, reason };
    peer.lastFailure = reason;
    const finish = () => {
      const err = new NaplusError('EPEERLOST', `Lost node ${id}: ${reason}`);
      this.log(this.closing ? 'info' : 'warn', `lost node ${id}: ${reason}`);
      session.end(err);
      this.emit('peer-down', id, err, byPeer, gone);
      // Its connection (or one whose RESUME named it) goes with it.
      const link = peer.link;
      if (link && link !== spare) {
        peer.link = undefined;
        link.finish(reason, !byPeer);
      }
    };
    if (deferred) process.nextTick(finish);
    else finish();
  }

  private sessionFailed(link: Link, reason: string, byPeer: boolean): void {
    const peer = this.peers.get(link.peerId!)!;
    if (peer.link === link && peer.session) this.lose(peer.session, reason, byPeer);
    else this.log('warn', reason);
    link.finish(reason, !byPeer);
  }

  private rejected(link: Link, why: Rejection, reason: string): void {
    this.rejections.add(why, `${reason}; connection refused`, 'warn');
    const peer = link.dialed === undefined ? undefined : this.peers.get(link.dialed);
    if (peer) peer.lastFailure = reason;
  }

  private linkClosed(link: Link, reason: string, errno: string | undefined): void {
    this.links.delete(link);
    const id = link.peerId ?? link.dialed;
    const peer = id === undefined ? undefined : this.peers.get(id);
    if (!peer) return link.refused ? undefined : this.log('debug', `${reason}; connection closed`);
    peer.lastRx = Math.max(peer.lastRx, link.lastRx);
    if (peer.dialing === link) peer.dialing = undefined;
    const broke = peer.link === link;
    if (broke) {
      peer.link = undefined;
      peer.lastFailure = reason;
      if (peer.session) {
        peer.brokenAt = this.clock.now();
        this.log(this.closing ? 'debug' : 'info', `connection to node ${id} broke: ${reason}; its session waits for a new one`);
      }
    } else {
      if (link.dialed !== undefined) peer.lastFailure = reason;
      if (!link.refused) this.log('debug', `${reason}; connection closed`);
    }
    if (this.closing) return;
    if (errno === 'ECONNREFUSED' && link.dialed !== undefined && peer.session && !peer.link) {
      this.lose(peer.session, `node ${id}'s process is gone: nothing listens at ${link.address} any more (connection refused)`, true, false, undefined, true);
    }
    this.reconnect(peer, broke);
  }

  /**
   * After a connection broke or an attempt failed: the lower id dials again, the higher
   * one (while a session waits) probes. At once after a break, then backing off.
   */
  private reconnect(peer: Peer, atOnce: boolean): void {
    if (this.closing || peer.redialTimer || peer.link || peer.dialing || peer.probing) return;
    const dials = peer.address.id > this.nodeId;
    if (!dials && !peer.session) return; // a lower id dials us when it is ready
    let delay = 0;
    if (!atOnce) {
      // Jitter keeps a restarted cluster from dialing in lockstep.
      delay = peer.redialMs * (0.75 + Math.random() / 2);
      const most = peer.session ? Math.min(REDIAL_MAX_MS, this.o.heartbeatMs) : REDIAL_MAX_MS;
      peer.redialMs = Math.min(most, peer.redialMs * 2);
    }
    peer.redialTimer = setTimeout(() => {
      peer.redialTimer = undefined;
      if (peer.link || peer.dialing || peer.probing || this.closing) return;
      if (dials) this.dial(peer);
      else this.probe(peer);
    }, delay);
  }

  private handshakeConfig(refuse: (id: number) => string | undefined): Omit<HandshakeConfig, 'binding'> {
    return { ...this.handshake, listen: { host: this.opts.listen.host, port: this.port }, refuse };
  }

  private accept(socket: net.Socket): void {
    if (this.closing) return void socket.destroy();
    socket.setNoDelay(true);
    const link = new Link(this.owner, socket, `${socket.remoteAddress}:${socket.remotePort}`, undefined);
    this.links.add(link);
    const refuse = (id: number): string | undefined => {
      if (id === this.nodeId) return `claims node id ${id}, which is node ${this.nodeId}'s own`;
      if (!this.peers.has(id)) return `claims node id ${id}, which is not in node ${this.nodeId}'s peer list (${[...this.peers.keys()].join(', ')})`;
      if (id > this.nodeId) return `dialed node ${this.nodeId}, but the lower id dials: node ${this.nodeId} dials node ${id}`;
      return undefined;
    };
    link.start(this.handshakeConfig(refuse), this.binding(socket));
  }

  private dial(peer: Peer): void {
    if (this.closing) return;
    const { id, host, port } = peer.address;
    const t = this.opts.tls;
    const socket = t ? tls.connect({ host, port, key: t.key, cert: t.cert, ca: t.ca, checkServerIdentity: () => undefined }) : net.connect({ host, port });
    socket.setNoDelay(true);
    const link = new Link(this.owner, socket, `${host}:${port}`, id);
    peer.dialing = link;
    this.links.add(link);
    const refuse = (claimed: number): string | undefined =>
      claimed === id ? undefined : `answered as node ${claimed}, but node ${this.nodeId} dialed ${host}:${port} to reach node ${id}`;
    // A connection attempt that gets no answer (its SYN lost on a dead path) is given up
    // after a heartbeat and tried again, judged once this turn's events are in.
    const timer = setTimeout(() => setImmediate(() => !link.connected && link.close(`connecting to ${link.who} got no answer within ${this.o.heartbeatMs} ms`, 'ETIMEDOUT')), this.o.heartbeatMs);
    socket.once('close', () => clearTimeout(timer));
    socket.once('connect', () => (link.connected = true));
    // Node identity comes from the secret handshake, bound to this TLS session; the
    // cluster CA only keeps strangers out, so the certificate's host name is not checked.
    socket.once(t ? 'secureConnect' : 'connect', () => link.start(this.handshakeConfig(refuse), this.binding(socket)));
  }

  /**
   * Whether a lower-id peer whose connection broke still has a process: connect to its
   * listening port and leave. Refused means nothing listens there (the process is gone:
   * the session is lost at once); an answer means it lives and will dial us again.
   */
  private probe(peer: Peer): void {
    const target = peer.listen;
    if (!target || !peer.session) return;
    // With TLS, a probe completes the TLS handshake and leaves with a clean end (an
    // abrupt close, with the server's session ticket unread, would be a reset): the peer
    // sees a quiet goodbye (a connection closed before its hello) rather than a failure.
    const t = this.opts.tls;
    const socket = t
      ? tls.connect({ host: target.host, port: target.port, key: t.key, cert: t.cert, ca: t.ca, checkServerIdentity: () => undefined })
      : net.connect(target.port, target.host);
    peer.probing = socket;
    let outcome = 'no answer';
    const timer = setTimeout(() => socket.destroy(), this.o.heartbeatMs);
    socket.once('connect', () => (outcome = 'it listens'));
    socket.once(t ? 'secureConnect' : 'connect', () => (t ? socket.end() : socket.destroy()));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (outcome === 'no answer') outcome = err.code ?? err.message;
    });
    socket.once('close', () => {
      clearTimeout(timer);
      peer.probing = undefined;
      if (this.closing) return;
      const id = peer.address.id;
      if (outcome === 'ECONNREFUSED' && peer.session && !peer.link) {
        return this.lose(peer.session, `node ${id}'s process is gone: nothing listens at ${target.host}:${target.port} any more (connection refused)`, true, false, undefined, true);
      }
      this.log('debug', `probe of node ${id} at ${target.host}:${target.port}: ${outcome}`);
      this.reconnect(peer, false);
    });
  }

  private binding(socket: net.Socket): Buffer {
    return socket instanceof tls.TLSSocket ? socket.exportKeyingMaterial(32, EKM_LABEL, Buffer.alloc(0)) : Buffer.alloc(0);
  }
}
