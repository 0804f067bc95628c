// One connection to one peer: the handshake, then frames both ways. Outgoing frames
// queue and go out in one write per tick (at most one syscall however many messages
// the tick produced); incoming frames are decoded in place. Requests this end made on
// the link are pending here, so that losing the link fails exactly those.
import type { Socket } from 'node:net';
import { NaplusError } from '../errors.js';
import type { LogLevel } from '../log.js';
import { bareFrame, FrameReader, Kind, LENGTH_BYTES } from './frame.js';
import { encodeReject, Handshake, HANDSHAKE_MAX_FRAME, HandshakeFailure, rejectReason, type HandshakeConfig, type PeerHello } from './handshake.js';
import { decodeMessage, encodeMessage } from './message.js';
import { Encoding, type PageCodec } from './pages.js';
import { CompressionPolicy, type CompressMode } from './compression.js';
import type { Message, MessageHandler, PeerStats, Reply } from './types.js';

/** What a link needs from the transport that owns it. */
export interface LinkOwner {
  readonly nodeId: number;
  readonly codec: PageCodec;
  readonly maxFrameBytes: number;
  readonly compress: CompressMode;
  /** Hands a received message to the layer that registered its type. */
  handler: MessageHandler;
  log(level: LogLevel, msg: string): void;
  linkUp(link: Link, peer: PeerHello): PeerStats;
  linkClosed(link: Link, reason: NaplusError, wasUp: boolean, level: LogLevel, byPeer: boolean): void;
}

interface Pending {
  resolve(msg: Message): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  type: number;
}

/** Queued output past which a whole queue is written piece by piece rather than joined. */
const JOIN_LIMIT = 64 * 1024;
const PING = bareFrame(Kind.Ping);

function flushLink(link: Link): void {
  link.flush();
}

export class Link {
  state: 'handshake' | 'up' | 'closed' = 'handshake';
  peerId: number | undefined;
  readonly opened = Date.now();
  lastRx = this.opened;
  lastTx = this.opened;
  private stats: PeerStats | undefined;
  private cap = HANDSHAKE_MAX_FRAME;
  private readonly reader: FrameReader;
  private handshake: Handshake | undefined;
  private queue: Buffer[] = [];
  private queued = 0;
  private queuedFrames = 0;
  private flushScheduled = false;
  private readonly pending = new Map<number, Pending>();
  private nextRequestId = 1;
  private writableWaiters: Array<{ resolve(): void; reject(err: Error): void }> = [];
  private failure: { reason: string; level: LogLevel } | undefined;
  private readonly compression: CompressionPolicy;
  /** Since when the socket has held bytes back, and how many were written meanwhile (for the drain rate). */
  private backlog: { since: number; bytes: number } | undefined;

  constructor(
    private readonly owner: LinkOwner,
    readonly socket: Socket,
    /** Remote address for log lines, `host:port`. */
    readonly address: string,
    /** Set on the dialing end: the node it dialed. */
    readonly dialed: number | undefined,
  ) {
    this.reader = new FrameReader(HANDSHAKE_MAX_FRAME, (f) => this.onFrame(f));
    this.compression = new CompressionPolicy(owner.compress);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      if (this.backlog) this.compression.recordDrain(this.backlog.bytes, performance.now() - this.backlog.since);
      this.backlog = undefined;
      this.settleWaiters();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A reset comes from the peer's kernel: its end of the link is closed.
      const byPeer = err.code === 'ECONNRESET' || err.code === 'EPIPE';
      this.close(`the connection to ${this.who} failed: ${err.code ?? err.message}`, 'debug', byPeer);
    });
    socket.on('close', () => this.onEnd());
  }

  /** Who is on the other end, as log lines name it. */
  get who(): string {
    const id = this.peerId ?? this.handshake?.claimedId ?? this.dialed;
    return id === undefined ? `the node at ${this.address}` : `node ${id} at ${this.address}`;
  }

  /** Starts the handshake; `binding` is the TLS session's keying material, or empty. */
  start(config: Omit<HandshakeConfig, 'binding'>, binding: Buffer): void {
    this.handshake = new Handshake({ ...config, binding });
    this.socket.write(this.handshake.hello());
  }

  send(kind: number, requestId: number, msg: Message): void {
    const peerId = this.peerId!;
    const pages = msg.pages?.length ?? 0;
    if (pages * this.owner.codec.pageSize > this.cap) {
      throw new NaplusError('E2BIG', `A message of ${pages} pages to node ${peerId} exceeds the link's cap of ${this.cap} bytes; split it`);
    }
    const lz4 = pages > 0 && this.compression.shouldTry(this.socket.writableLength > 0);
    const started = lz4 ? performance.now() : 0;
    const e = encodeMessage(kind, requestId, msg, this.owner.codec, lz4);
    const length = e.frame.length - LENGTH_BYTES;
    if (length > this.cap) {
      throw new NaplusError('E2BIG', `A message of type ${msg.type} to node ${peerId} takes ${length} bytes, over the link's cap of ${this.cap} bytes`);
    }
    const s = this.stats!;
    if (e.pages) {
      const n = e.pages.pages.length;
      const data = n - e.pages.zeroCount;
      s.pagesOut += n;
      s.pageBytesRaw += n * this.owner.codec.pageSize;
      s.pageBytesWire += e.pages.bytes;
      s.zeroPages += e.pages.zeroCount;
      if (e.pages.encoding === Encoding.Lz4) s.lz4Pages += data;
      else s.rawPages += data;
      if (e.pages.attempted) this.compression.record(e.pages.encoding === Encoding.Lz4, data * this.owner.codec.pageSize, performance.now() - started);
    }
    this.queue.push(e.frame);
    this.enqueued(e.frame.length);
  }

  request(msg: Message, timeoutMs: number): Promise<Message> {
    let id = this.nextRequestId;
    while (this.pending.has(id)) id = (id % 0xffffffff) + 1;
    this.nextRequestId = (id % 0xffffffff) + 1;
    this.send(Kind.Request, id, msg);
    const type = msg.type;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new NaplusError('ETIMEDOUT', `Request of type ${type} to node ${this.peerId} got no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, type });
    });
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get queuedBytes(): number {
    return this.queued + this.socket.writableLength;
  }

  /**
   * Resolves once the socket has room again (immediately if it has). Frames queued this
   * tick are handed to the socket first: a sender that awaits this in a loop may never
   * let the tick end, and its frames must not pile up unseen by the socket's accounting.
   */
  whenWritable(): Promise<void> {
    this.flush();
    if (this.state === 'up' && !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.writableWaiters.push({ resolve, reject });
      if (this.state === 'closed') this.settleWaiters(new NaplusError('EPEERLOST', `The link to ${this.who} is closed`));
    });
  }

  flush(): void {
    this.flushScheduled = false;
    if (this.state === 'closed' || this.queue.length === 0) return;
    const q = this.queue;
    const bytes = this.queued;
    this.queue = [];
    this.queued = 0;
    if (q.length === 1) this.socket.write(q[0]!);
    else if (bytes <= JOIN_LIMIT) this.socket.write(Buffer.concat(q, bytes));
    else {
      this.socket.cork();
      for (const b of q) this.socket.write(b);
      this.socket.uncork();
    }
    if (this.socket.writableLength > 0) {
      this.backlog ??= { since: performance.now(), bytes: 0 };
      this.backlog.bytes += bytes;
    }
    this.lastTx = Date.now();
    if (this.stats) {
      this.stats.bytesOut += bytes;
      this.stats.framesOut += this.queuedFrames;
    }
    this.queuedFrames = 0;
  }

  /** Heartbeat duty, called by the transport every heartbeat interval. */
  tick(now: number, heartbeatMs: number, timeoutMs: number): void {
    if (this.state === 'handshake' && now - this.opened > timeoutMs) {
      this.fail('warn', `${this.who} did not complete the handshake within ${timeoutMs} ms`);
    } else if (this.state === 'up' && now - this.lastRx > timeoutMs) {
      this.fail('warn', `no frames from ${this.who} for ${now - this.lastRx} ms (heartbeat timeout ${timeoutMs} ms)`);
    } else if (this.state === 'up' && now - this.lastTx >= heartbeatMs && this.queue.length === 0) {
      this.queue.push(PING);
      this.enqueued(PING.length);
    }
  }

  /**
   * Closes the link (idempotent): fails its pending requests and tells the owner, which
   * logs the reason once at `level` (a link that was up is always worth a warning).
   * `byPeer`: the peer closed its end (FIN or reset), rather than this end giving up.
   */
  close(reason: string, level: LogLevel = 'debug', byPeer = false): void {
    if (this.state === 'closed') return;
    // A refusal in flight keeps its own reason, whatever the socket reports meanwhile.
    if (this.failure) ({ reason, level } = this.failure);
    const wasUp = this.state === 'up';
    this.state = 'closed';
    this.reader.stop();
    const err = new NaplusError('EPEERLOST', reason);
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new NaplusError('EPEERLOST', `Request of type ${p.type} to node ${this.peerId} failed: ${reason}`, { cause: err }));
    }
    this.pending.clear();
    this.settleWaiters(err);
    // The owner hears first, the socket goes after: a peer that sees this end close
    // may rely on this node having acted on the loss already (coherence does).
    this.owner.linkClosed(this, err, wasUp, level, byPeer && !this.failure);
    this.socket.destroy();
  }

  /** Closes for a reason worth a log line; a handshake refusal is first sent to the peer. */
  fail(level: 'warn' | 'error', reason: string, reject?: string): void {
    if (this.state === 'closed' || this.failure) return;
    if (reject === undefined) return this.close(reason, level);
    this.failure = { reason, level };
    // The refusal must reach the peer before the connection goes: end, then destroy.
    this.reader.stop();
    this.socket.end(encodeReject(reject), () => this.close(reason));
  }

  private enqueued(bytes: number): void {
    this.queued += bytes;
    this.queuedFrames++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(flushLink, this);
    }
  }

  private onData(chunk: Buffer): void {
    this.lastRx = Date.now();
    if (this.stats) this.stats.bytesIn += chunk.length;
    try {
      this.reader.push(chunk);
    } catch (err) {
      if (err instanceof HandshakeFailure) this.onHandshakeFailure(err);
      else if (err instanceof NaplusError && err.code === 'EPROTO') this.fail('warn', `${this.who} sent ${err.message}`);
      // Whatever else a frame provokes is still that one link's problem: the node goes on.
      else this.fail('error', `reading from ${this.who} failed unexpectedly: ${(err as Error).stack ?? String(err)}`);
    }
  }

  private onEnd(): void {
    const { have, need } = this.reader.partial;
    if (this.state === 'closed') return;
    if (have > 0) {
      this.fail('warn', `${this.who} closed the connection in the middle of a frame (${have} of ${need || 'at least 4'} bytes received)`);
    } else if (this.state === 'handshake' && this.handshake) {
      // With TLS 1.3 a server that rejects our certificate just closes, after the client
      // thought the TLS handshake done: say where to look.
      const hint = (this.socket as { encrypted?: boolean }).encrypted ? ' (TLS: was this node\'s certificate signed by the CA it trusts?)' : '';
      this.fail('warn', `${this.who} closed the connection during the handshake${hint}`);
    } else {
      this.close(`${this.who} closed the connection`, 'debug', true);
    }
  }

  private onFrame(frame: Buffer): void {
    if (this.state === 'handshake') return this.onHandshakeFrame(frame);
    this.stats!.framesIn++;
    const kind = frame[0];
    switch (kind) {
      case Kind.Message:
      case Kind.Request:
      case Kind.Reply:
      case Kind.ReplyError:
        return this.onMessage(frame);
      case Kind.Ping:
        return;
      case Kind.Reject:
        return this.fail('error', `${this.who} closed the link: ${rejectReason(frame)}`);
      default:
        this.fail('warn', `${this.who} sent a frame of unknown kind ${kind}`);
    }
  }

  private onHandshakeFrame(frame: Buffer): void {
    const step = this.handshake!.receive(frame);
    if (step.send) this.socket.write(step.send);
    if (!step.done) return;
    this.peerId = step.done.nodeId;
    this.cap = Math.min(this.owner.maxFrameBytes, step.done.maxFrameBytes);
    this.reader.maxFrame = this.owner.maxFrameBytes;
    this.handshake = undefined;
    this.state = 'up';
    this.stats = this.owner.linkUp(this, step.done);
  }

  private onHandshakeFailure(err: HandshakeFailure): void {
    const reason = err.byPeer ? `${this.who} refused the handshake: ${err.message}` : `handshake with ${this.who} failed: it ${err.message}`;
    this.fail('error', reason, err.byPeer ? undefined : `${this.who} ${err.message}`);
  }

  private onMessage(frame: Buffer): void {
    const { kind, requestId, msg } = decodeMessage(frame, this.owner.codec);
    if (msg.pages) this.stats!.pagesIn += msg.pages.length;
    if (kind === Kind.Reply || kind === Kind.ReplyError) {
      const p = this.pending.get(requestId);
      // A reply to a request that already timed out: nothing waits for it any more.
      if (!p) return this.owner.log('debug', `late reply ${requestId} from ${this.who} dropped`);
      this.pending.delete(requestId);
      clearTimeout(p.timer);
      if (kind === Kind.Reply) return p.resolve(msg);
      const text = typeof msg.body === 'string' ? msg.body : 'no reason given';
      return p.reject(new NaplusError('EREMOTE', `Node ${this.peerId} failed request of type ${p.type}: ${text}`));
    }
    const handler = this.owner.handler;
    let replied = false;
    const reply: Reply | undefined =
      kind === Kind.Request
        ? (r) => {
            if (replied) throw new NaplusError('EINVAL', `reply() called twice for a request of type ${msg.type} from node ${this.peerId}`);
            // The requester has already failed this request if its link is gone.
            if (this.state === 'up') this.send(Kind.Reply, requestId, r);
            replied = true;
          }
        : undefined;
    try {
      handler(this.peerId!, msg, reply);
    } catch (err) {
      this.owner.log('error', `handling message of type ${msg.type} from node ${this.peerId} failed: ${(err as Error).message}`);
      if (reply && !replied && this.state === 'up') {
        replied = true;
        this.send(Kind.ReplyError, requestId, { type: msg.type, body: (err as Error).message });
      }
    }
  }

  private settleWaiters(err?: Error): void {
    const waiters = this.writableWaiters;
    this.writableWaiters = [];
    for (const w of waiters) {
      if (err) w.reject(err);
      else w.resolve();
    }
  }

}
