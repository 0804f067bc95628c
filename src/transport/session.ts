// A session: what two node processes (incarnations) share across any number of TCP
// connections. Every message frame (Message, Request, Reply, ReplyError) it sends gets
// the next sequence number and stays in the replay buffer until the peer acknowledges
// it; the peer acknowledges cumulatively, after its handler has run (so acked means
// handled). When a connection breaks, the session waits for the next one: the RESUME
// exchange says how far each side got, each side sends the rest again, and the receiver
// drops what it already has. So every message is handled exactly once, in order, however
// many connections it took, or the session is lost and both sides are told.
//
// RESUME, the first frame both ways after the handshake (integers LE):
//
//   u8 kind | u64 sid | u64 peerSid | u64 received | u64 fresh | u64 lostSid | reason
//
// `sid` is this side's id of the session it holds with the peer and `peerSid` the id it
// knows the peer by (0, 0 when it holds none); `received` is the last seq it handled
// there. Both sides apply one symmetric rule: the session resumes if each side's `sid`
// is what the other knows it by; otherwise whatever either side held is lost, and a new
// session starts with the two `fresh` ids. `lostSid`/`reason`: the session this side
// gave up last, and why, so that the peer can say why its session was lost.
import { randomInt } from 'node:crypto';
import { NaplusError } from '../errors.js';
import { CompressionPolicy, type CompressMode } from './compression.js';
import { frameOf, Kind, LENGTH_BYTES, protocolError, readU64, writeU64 } from './frame.js';
import { decodeMessage, encodeMessage, setAck, setSeq } from './message.js';
import { Encoding, type PageCodec } from './pages.js';
import type { Message, MessageHandler, PeerStats, Reply } from './types.js';

/** What a session needs from the transport that owns it. */
export interface SessionOwner {
  readonly nodeId: number;
  readonly codec: PageCodec;
  readonly compress: CompressMode;
  /** Hands a received message to the layer that registered its type (Transport.handle). */
  handler: MessageHandler;
  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string): void;
  /** Ends the session; `deferred` when called from inside the caller's send() (no events then). */
  lose(session: Session, reason: string, byPeer: boolean, deferred?: boolean): void;
}

/** Where a session writes: the connection it is attached to (link.ts). */
export interface SessionLink {
  readonly up: boolean;
  readonly writableLength: number;
  readonly needsDrain: boolean;
  enqueue(frame: Buffer): void;
  /** Makes sure an ack goes out soon: on the next frame, or in a heartbeat of its own. */
  wantAck(): void;
  flush(): void;
}

export interface SessionLimits {
  /** Bytes of unacknowledged frames past which the session is lost. */
  replayBytes: number;
  /** Bytes received without acknowledging them after which an ack goes out at once. */
  ackBytes: number;
  /** Longest an ack waits for a frame to ride on. */
  ackDelayMs: number;
}

interface Pending {
  resolve(msg: Message): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  type: number;
}

export interface ResumeFrame {
  sid: number;
  peerSid: number;
  received: number;
  fresh: number;
  lostSid: number;
  reason: string;
}

const RESUME_FIXED = 1 + 5 * 8;

/** A new session id: random, never 0 (0 means "none" on the wire). */
export function newSessionId(): number {
  return randomInt(1, 2 ** 48);
}

export function encodeResume(r: ResumeFrame): Buffer {
  const reason = Buffer.from(r.reason.slice(0, 400), 'utf8');
  const p = Buffer.alloc(RESUME_FIXED + reason.length);
  p[0] = Kind.Resume;
  [r.sid, r.peerSid, r.received, r.fresh, r.lostSid].forEach((v, i) => writeU64(p, v, 1 + 8 * i));
  reason.copy(p, RESUME_FIXED);
  return frameOf(p);
}

export function decodeResume(f: Buffer): ResumeFrame {
  if (f.length < RESUME_FIXED) throw protocolError(`a resume frame of ${f.length} bytes, shorter than ${RESUME_FIXED}`);
  const [sid, peerSid, received, fresh, lostSid] = [0, 1, 2, 3, 4].map((i) => readU64(f, 1 + 8 * i, 'a session field'));
  if (fresh === 0) throw protocolError('a resume frame without a fresh session id');
  const reason = f.toString('utf8', RESUME_FIXED, Math.min(f.length, RESUME_FIXED + 1600)).replace(/[^\x20-\x7e\u00a0-\uffff]/g, '?');
  return { sid: sid!, peerSid: peerSid!, received: received!, fresh: fresh!, lostSid: lostSid!, reason };
}

/** A heartbeat that carries an ack. */
export function pingFrame(ack: number): Buffer {
  const b = Buffer.allocUnsafe(LENGTH_BYTES + 9);
  b.writeUInt32LE(9, 0);
  b[LENGTH_BYTES] = Kind.Ping;
  writeU64(b, ack, LENGTH_BYTES + 1);
  return b;
}

/** Writes `ack` into an outgoing frame that has room for one; false if it has none. */
export function stampAck(frame: Buffer, ack: number): boolean {
  const kind = frame[LENGTH_BYTES]!;
  // The message kinds (Message, Request, Reply, ReplyError) are consecutive.
  if (kind >= Kind.Message && kind <= Kind.ReplyError) setAck(frame, ack);
  else if (kind === Kind.Ping) writeU64(frame, ack, LENGTH_BYTES + 1);
  else return false;
  return true;
}

export class Session {
  alive = true;
  /** The connection the session writes to, while it has one that is up. */
  link: SessionLink | undefined;
  /** Last seq this side gave a frame, last seq the peer acknowledged, last seq handled here. */
  private sent = 0;
  private acked = 0;
  private received = 0;
  private ackSent = 0;
  /** Frame bytes handled since an ack last went out. */
  private unackedIn = 0;
  private ackTimer: NodeJS.Timeout | undefined;
  /** Frames sent and not yet acknowledged, oldest first, from `replayHead` on. */
  private replay: Buffer[] = [];
  private replayHead = 0;
  private replayBytes = 0;
  private readonly pending = new Map<number, Pending>();
  private nextRequestId = 1;
  private writableWaiters: Array<{ resolve(): void; reject(err: Error): void }> = [];
  private readonly compression: CompressionPolicy;

  constructor(
    private readonly owner: SessionOwner,
    readonly peerId: number,
    /** This side's id of the session, and the peer's. */
    readonly mine: number,
    readonly theirs: number,
    /** The peer process's incarnation. */
    readonly incarnation: string,
    /** Largest frame the peer accepts and we send (the smaller of the two caps). */
    private readonly cap: number,
    private readonly limits: SessionLimits,
    private readonly stats: PeerStats,
  ) {
    this.compression = new CompressionPolicy(owner.compress);
  }

  /** Last seq handled here (what a RESUME tells the peer). */
  get handled(): number {
    return this.received;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get unackedBytes(): number {
    return this.replayBytes;
  }

  /** Queues a message frame (and writes it if connected); throws E2BIG, EINVAL, or EPEERLOST on overflow. */
  send(kind: number, requestId: number, msg: Message): void {
    const pages = msg.pages?.length ?? 0;
    if (pages * this.owner.codec.pageSize > this.cap) {
      throw new NaplusError('E2BIG', `A message of ${pages} pages to node ${this.peerId} exceeds the link's cap of ${this.cap} bytes; split it`);
    }
    const lz4 = pages > 0 && this.compression.shouldTry((this.link?.writableLength ?? 0) > 0);
    const started = lz4 ? performance.now() : 0;
    const e = encodeMessage(kind, requestId, msg, this.owner.codec, lz4);
    const length = e.frame.length - LENGTH_BYTES;
    if (length > this.cap) {
      throw new NaplusError('E2BIG', `A message of type ${msg.type} to node ${this.peerId} takes ${length} bytes, over the link's cap of ${this.cap} bytes`);
    }
    if (this.replayBytes + e.frame.length > this.limits.replayBytes) {
      const reason =
        `the replay buffer for node ${this.peerId} overflowed: ${this.replayBytes + e.frame.length} bytes sent and not acknowledged ` +
        `(${this.link ? 'connected' : 'no connection'}), over replayBufferBytes (${this.limits.replayBytes})`;
      this.owner.lose(this, reason, false, true);
      throw new NaplusError('EPEERLOST', `Message of type ${msg.type} to node ${this.peerId} not sent: ${reason}`);
    }
    const s = this.stats;
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
    setSeq(e.frame, ++this.sent);
    this.replay.push(e.frame);
    this.replayBytes += e.frame.length;
    this.link?.enqueue(e.frame);
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

  /**
   * Resolves once the session can take more without piling up in memory: it is connected,
   * the socket has room, and at most half the replay buffer awaits acknowledgement.
   * Frames queued this tick go to the socket first, so a sender that awaits this in a
   * loop never lets them pile up unseen.
   */
  whenWritable(): Promise<void> {
    this.link?.flush();
    if (this.writable()) return Promise.resolve();
    return new Promise((resolve, reject) => this.writableWaiters.push({ resolve, reject }));
  }

  /** Takes a connection whose peer has handled everything up to `peerReceived`: sends it the rest again. */
  attach(link: SessionLink, peerReceived: number): void {
    if (peerReceived < this.acked || peerReceived > this.sent) {
      throw protocolError(`a resume frame saying it handled up to frame ${peerReceived}, where ${this.acked} to ${this.sent} was possible`);
    }
    this.onAck(peerReceived);
    this.link = link;
    const again = this.replay.length - this.replayHead;
    for (let i = this.replayHead; i < this.replay.length; i++) link.enqueue(this.replay[i]!);
    this.stats.replayedFrames += again;
    this.settleWaiters();
  }

  detach(link: SessionLink): void {
    if (this.link === link) this.link = undefined;
  }

  /** The ack to put on frames going out now; they carry it, so no ack is owed afterwards. */
  takeAck(): number {
    this.ackSent = this.received;
    this.unackedIn = 0;
    return this.received;
  }

  /** A heartbeat or standalone ack from the peer. */
  onPing(frame: Buffer): void {
    if (frame.length !== 9) throw protocolError(`a heartbeat of ${frame.length} bytes (9 expected)`);
    this.onAck(readU64(frame, 1, 'an acknowledgement'));
  }

  /** A message frame from the peer: handled if it is the next one, dropped if it came before. */
  receive(frame: Buffer): void {
    const { kind, requestId, seq, ack, msg } = decodeMessage(frame, this.owner.codec);
    this.onAck(ack);
    if (seq <= this.received) {
      this.stats.duplicateFrames++;
      return;
    }
    if (seq !== this.received + 1) throw protocolError(`frame ${seq} where frame ${this.received + 1} was due`);
    if (msg.pages) this.stats.pagesIn += msg.pages.length;
    if (kind === Kind.Reply || kind === Kind.ReplyError) this.settle(kind, requestId, msg);
    else this.deliver(kind, requestId, msg);
    // Only now, with its handler run, does the frame count as received (acked == handled).
    this.received = seq;
    this.unackedIn += frame.length;
  }

  /** After a batch of received frames: owe the peer an ack, soon or at once if much arrived. */
  afterRead(): void {
    if (this.received === this.ackSent || !this.alive) return;
    if (this.unackedIn >= this.limits.ackBytes) return this.link?.wantAck();
    this.ackTimer ??= setTimeout(() => {
      this.ackTimer = undefined;
      if (this.alive && this.received !== this.ackSent) this.link?.wantAck();
    }, this.limits.ackDelayMs);
  }

  /** A connection event that may let waiting bulk senders go on (drain). */
  settleWaiters(err?: Error): void {
    if (this.writableWaiters.length === 0 || (!err && !this.writable())) return;
    const waiters = this.writableWaiters;
    this.writableWaiters = [];
    for (const w of waiters) {
      if (err) w.reject(err);
      else w.resolve();
    }
  }

  recordDrain(bytes: number, ms: number): void {
    this.compression.recordDrain(bytes, ms);
  }

  /** The session is over: every request waiting on it fails with `reason`, and so does every waiting sender. */
  end(err: NaplusError): void {
    this.alive = false;
    this.link = undefined;
    clearTimeout(this.ackTimer);
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new NaplusError('EPEERLOST', `Request of type ${p.type} to node ${this.peerId} failed: ${err.message}`, { cause: err }));
    }
    this.pending.clear();
    this.settleWaiters(err);
    this.replay = [];
    this.replayHead = 0;
    this.replayBytes = 0;
  }

  private writable(): boolean {
    const link = this.link;
    return link !== undefined && link.up && !link.needsDrain && this.replayBytes <= this.limits.replayBytes / 2;
  }

  private onAck(ack: number): void {
    if (ack <= this.acked) return; // an old frame sent again carries an old ack
    if (ack > this.sent) throw protocolError(`an acknowledgement of frame ${ack}, and only ${this.sent} were sent`);
    for (; this.acked < ack; this.acked++) {
      this.replayBytes -= this.replay[this.replayHead]!.length;
      this.replay[this.replayHead++] = undefined as unknown as Buffer;
    }
    // Drop the acknowledged slots now and then, not on every ack.
    if (this.replayHead > 1024 && this.replayHead * 2 > this.replay.length) {
      this.replay = this.replay.slice(this.replayHead);
      this.replayHead = 0;
    }
    this.settleWaiters();
  }

  private settle(kind: number, requestId: number, msg: Message): void {
    const p = this.pending.get(requestId);
    // A reply to a request that already timed out: nothing waits for it any more.
    if (!p) return this.owner.log('debug', `late reply ${requestId} from node ${this.peerId} dropped`);
    this.pending.delete(requestId);
    clearTimeout(p.timer);
    if (kind === Kind.Reply) return p.resolve(msg);
    const text = typeof msg.body === 'string' ? msg.body : 'no reason given';
    p.reject(new NaplusError('EREMOTE', `Node ${this.peerId} failed request of type ${p.type}: ${text}`));
  }

  private deliver(kind: number, requestId: number, msg: Message): void {
    const handler = this.owner.handler;
    let replied = false;
    const reply: Reply | undefined =
      kind === Kind.Request
        ? (r) => {
            if (replied) throw new NaplusError('EINVAL', `reply() called twice for a request of type ${msg.type} from node ${this.peerId}`);
            replied = true;
            // A lost session's requester has failed this request already.
            if (this.alive) this.send(Kind.Reply, requestId, r);
          }
        : undefined;
    try {
      handler(this.peerId, msg, reply);
    } catch (err) {
      this.owner.log('error', `handling message of type ${msg.type} from node ${this.peerId} failed: ${(err as Error).message}`);
      if (reply && !replied && this.alive) {
        replied = true;
        this.send(Kind.ReplyError, requestId, { type: msg.type, body: (err as Error).message });
      }
    }
  }
}
