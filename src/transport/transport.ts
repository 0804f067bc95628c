// The transport: a listening socket, one link per peer (the lower id dials the higher,
// so two nodes never race to build two links), redialling with backoff, heartbeats, and
// the per-peer state that outlives any one link (stats, last failure).
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { checkUint, invalidArgument, NaplusError } from '../errors.js';
import type { LogLevel } from '../log.js';
import { Kind } from './frame.js';
import type { HandshakeConfig, PeerHello } from './handshake.js';
import { Link, type LinkOwner } from './link.js';
import { PageCodec } from './pages.js';
import type { Message, MessageHandler, PeerAddress, PeerStats, Reply, TransportOptions } from './types.js';

const DEFAULTS = { pageSize: 4096, heartbeatMs: 1000, peerTimeoutMs: 5000, requestTimeoutMs: 30_000, maxFrameBytes: 2 << 20 };
const REDIAL_MIN_MS = 50;
const REDIAL_MAX_MS = 3000;
/** RFC 5705 label for the TLS keying material the handshake proofs are bound to. */
const EKM_LABEL = 'EXPORTER-naplus-handshake';

interface Peer {
  address: PeerAddress;
  stats: PeerStats;
  link: Link | undefined;
  /** The link being dialed (this end dials peers with higher ids). */
  dialing: Link | undefined;
  redialMs: number;
  redialTimer: NodeJS.Timeout | undefined;
  lastFailure: string | undefined;
}

function newStats(): PeerStats {
  return {
    up: false,
    connects: 0,
    bytesOut: 0,
    bytesIn: 0,
    framesOut: 0,
    framesIn: 0,
    pagesOut: 0,
    pagesIn: 0,
    pageBytesRaw: 0,
    pageBytesWire: 0,
    zeroPages: 0,
    rawPages: 0,
    lz4Pages: 0,
    pending: 0,
    queuedBytes: 0,
  };
}

function check(opts: TransportOptions): void {
  if (typeof opts.cluster !== 'string' || opts.cluster.length === 0 || Buffer.byteLength(opts.cluster) > 255) {
    throw invalidArgument('cluster', 'a name of 1 to 255 bytes', opts.cluster);
  }
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
  for (const k of ['pageSize', 'heartbeatMs', 'peerTimeoutMs', 'requestTimeoutMs', 'maxFrameBytes'] as const) {
    if (opts[k] !== undefined && (checkUint(k, opts[k]) === 0 || opts[k]! > 0xffffffff)) throw invalidArgument(k, 'a positive integer below 2^32', opts[k]);
  }
  // A quiet peer sends a heartbeat only every heartbeatMs: a shorter timeout would drop it.
  const heartbeat = opts.heartbeatMs ?? DEFAULTS.heartbeatMs;
  if ((opts.peerTimeoutMs ?? DEFAULTS.peerTimeoutMs) < 2 * heartbeat) {
    throw invalidArgument('peerTimeoutMs', `at least twice heartbeatMs (${2 * heartbeat})`, opts.peerTimeoutMs);
  }
}

export declare interface Transport {
  on(event: 'peer-up', listener: (peer: number) => void): this;
  on(event: 'peer-down', listener: (peer: number, reason: NaplusError, byPeer: boolean) => void): this;
  once(event: 'peer-up', listener: (peer: number) => void): this;
  once(event: 'peer-down', listener: (peer: number, reason: NaplusError, byPeer: boolean) => void): this;
  off(event: 'peer-up' | 'peer-down', listener: (...args: any[]) => void): this;
}

export class Transport extends EventEmitter {
  readonly nodeId: number;
  /** What links see of this transport (kept off its public face). */
  private readonly owner: LinkOwner;
  private readonly peers = new Map<number, Peer>();
  private readonly links = new Set<Link>();
  private readonly handlers = new Map<number, MessageHandler>();
  private fallback: MessageHandler | undefined;
  private readonly server: net.Server;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly handshake: Omit<HandshakeConfig, 'binding' | 'refuse'>;
  private readonly o: Required<Pick<TransportOptions, 'heartbeatMs' | 'peerTimeoutMs' | 'requestTimeoutMs'>>;
  private closing = false;
  private closed: Promise<void> | undefined;

  private constructor(private readonly opts: TransportOptions) {
    super();
    const pageSize = opts.pageSize ?? DEFAULTS.pageSize;
    this.nodeId = opts.nodeId;
    const maxFrameBytes = opts.maxFrameBytes ?? DEFAULTS.maxFrameBytes;
    this.owner = {
      nodeId: opts.nodeId,
      codec: new PageCodec(pageSize, maxFrameBytes),
      maxFrameBytes,
      compress: opts.compress ?? 'auto',
      handler: (peer, msg, reply) => this.dispatch(peer, msg, reply),
      log: (level, msg) => this.log(level, msg),
      linkUp: (link, hello) => this.linkUp(link, hello),
      linkClosed: (link, reason, wasUp, level, byPeer) => this.linkClosed(link, reason, wasUp, level, byPeer),
    };
    this.o = {
      heartbeatMs: opts.heartbeatMs ?? DEFAULTS.heartbeatMs,
      peerTimeoutMs: opts.peerTimeoutMs ?? DEFAULTS.peerTimeoutMs,
      requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
    };
    this.handshake = { cluster: opts.cluster, nodeId: opts.nodeId, secret: opts.secret, pageSize, maxFrameBytes };
    for (const address of opts.peers) {
      this.peers.set(address.id, { address, stats: newStats(), link: undefined, dialing: undefined, redialMs: REDIAL_MIN_MS, redialTimer: undefined, lastFailure: undefined });
    }
    this.server = opts.tls
      ? tls.createServer({ key: opts.tls.key, cert: opts.tls.cert, ca: opts.tls.ca, requestCert: true, rejectUnauthorized: true }, (s) => this.accept(s))
      : net.createServer((s) => this.accept(s));
    if (opts.tls) {
      this.server.on('tlsClientError', (err: Error, s: tls.TLSSocket) => this.log('warn', `TLS handshake with ${s.remoteAddress}:${s.remotePort} failed: ${err.message}`));
    }
    let lastTick = Date.now();
    this.heartbeat = setInterval(() => {
      const now = Date.now();
      // A tick that comes late means this process did not run (a long synchronous task,
      // a stopped or starved process): the peers' frames are waiting unread in the
      // sockets, and timers run before sockets are read. Their silence says nothing now;
      // judge them at the next tick, once what they sent has been read.
      const stalled = now - lastTick > 2 * this.o.heartbeatMs;
      lastTick = now;
      for (const link of this.links) link.tick(now, this.o.heartbeatMs, stalled ? Infinity : this.o.peerTimeoutMs);
    }, this.o.heartbeatMs);
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

  /** Fire and forget, FIFO per peer. Throws EPEERLOST when the peer is not up. */
  send(peer: number, msg: Message): void {
    this.upLink(peer).send(Kind.Message, 0, msg);
  }

  /** Rejects with EPEERLOST when the peer is or goes down first, ETIMEDOUT, or EREMOTE when its handler threw. */
  request(peer: number, msg: Message, timeoutMs = this.o.requestTimeoutMs): Promise<Message> {
    try {
      return this.upLink(peer).request(msg, timeoutMs);
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

  isUp(peer: number): boolean {
    return this.peers.get(peer)?.link !== undefined;
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

  /** Backpressure: resolves when the link to `peer` can take more without queueing in memory. */
  whenWritable(peer: number): Promise<void> {
    try {
      return this.upLink(peer).whenWritable();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  stats(): Record<number, PeerStats> {
    const out: Record<number, PeerStats> = {};
    for (const [id, p] of this.peers) {
      out[id] = { ...p.stats, up: p.link !== undefined, pending: p.link?.pendingCount ?? 0, queuedBytes: p.link?.queuedBytes ?? 0 };
      if (!p.link && p.lastFailure) out[id]!.lastFailure = p.lastFailure;
    }
    return out;
  }

  /** Stops listening and dialing, closes every link (failing pending requests) and resolves when all is shut. */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closing = true;
    clearInterval(this.heartbeat);
    for (const p of this.peers.values()) clearTimeout(p.redialTimer);
    this.closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const link of [...this.links]) {
      // What was sent before close() goes to the kernel first (what it cannot take now is dropped).
      link.flush();
      link.close(`node ${this.nodeId} is shutting down`);
    }
    return this.closed;
  }

  private log(level: LogLevel, msg: string): void {
    this.opts.log?.(level, msg);
  }

  private linkUp(link: Link, hello: PeerHello): PeerStats {
    const peer = this.peers.get(hello.nodeId)!;
    peer.dialing = undefined;
    if (peer.link) peer.link.close(`node ${hello.nodeId} connected again (${link.address}); the old link is dropped`);
    peer.link = link;
    peer.redialMs = REDIAL_MIN_MS;
    peer.lastFailure = undefined;
    peer.stats.connects++;
    this.log('info', `link to node ${hello.nodeId} at ${link.address} is up`);
    this.emit('peer-up', hello.nodeId);
    return peer.stats;
  }

  private linkClosed(link: Link, reason: NaplusError, wasUp: boolean, level: LogLevel, byPeer: boolean): void {
    this.links.delete(link);
    const id = link.peerId ?? link.dialed;
    const peer = id === undefined ? undefined : this.peers.get(id);
    if (peer) peer.lastFailure = reason.message;
    if (peer && wasUp && peer.link === link) {
      peer.link = undefined;
      this.log(this.closing ? 'info' : level === 'error' ? 'error' : 'warn', `lost node ${id}: ${reason.message}`);
      this.emit('peer-down', id, new NaplusError('EPEERLOST', `Lost node ${id}: ${reason.message}`, { cause: reason }), byPeer);
    } else {
      this.log(level, `${reason.message}; connection closed`);
    }
    if (peer && peer.dialing === link) {
      peer.dialing = undefined;
      this.redial(peer);
    } else if (peer && wasUp && link.dialed !== undefined) {
      this.redial(peer);
    }
  }

  private upLink(peer: number): Link {
    const p = this.peers.get(peer);
    if (!p) throw invalidArgument('peer', `a peer of node ${this.nodeId}`, peer);
    if (!p.link) throw new NaplusError('EPEERLOST', `Node ${peer} is not connected${p.lastFailure ? `: ${p.lastFailure}` : ''}`);
    return p.link;
  }

  private handshakeConfig(refuse: (id: number) => string | undefined): Omit<HandshakeConfig, 'binding'> {
    return { ...this.handshake, refuse };
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
    // Node identity comes from the secret handshake, bound to this TLS session; the
    // cluster CA only keeps strangers out, so the certificate's host name is not checked.
    socket.once(t ? 'secureConnect' : 'connect', () => link.start(this.handshakeConfig(refuse), this.binding(socket)));
  }

  private redial(peer: Peer): void {
    if (this.closing || peer.redialTimer) return;
    // Jitter keeps a restarted cluster from dialing in lockstep.
    const delay = peer.redialMs * (0.75 + Math.random() / 2);
    peer.redialMs = Math.min(REDIAL_MAX_MS, peer.redialMs * 2);
    peer.redialTimer = setTimeout(() => {
      peer.redialTimer = undefined;
      if (!peer.link && !peer.dialing) this.dial(peer);
    }, delay);
  }

  private binding(socket: net.Socket): Buffer {
    return socket instanceof tls.TLSSocket ? socket.exportKeyingMaterial(32, EKM_LABEL, Buffer.alloc(0)) : Buffer.alloc(0);
  }
}
