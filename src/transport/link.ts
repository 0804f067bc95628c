// One connection to one peer: the handshake, the RESUME exchange that ties it to a
// session, then frames both ways. Outgoing frames queue and go out in one write per tick
// (at most one syscall however many messages the tick produced), each write carrying the
// session's latest ack; incoming frames are decoded in place and handed to the session.
// A connection can break at any time without loss: the session (session.ts) outlives it.
import type { Socket } from 'node:net';
import { NaplusError } from '../errors.js';
import type { LogLevel } from '../log.js';
import { FrameReader, Kind, LENGTH_BYTES, reasonFrame, reasonOf } from './frame.js';
import type { AwakeClock } from './awake-clock.js';
import { encodeReject, Handshake, HANDSHAKE_MAX_FRAME, HandshakeFailure, type HandshakeConfig, type PeerHello } from './handshake.js';
import { pingFrame, stampAck, type Session, type SessionLink } from './session.js';
import type { PeerStats } from './types.js';

/** Why a connection was refused before its peer was authenticated (counted in the rejection log). */
export type Rejection =
  | 'refused in the handshake'
  | 'refused by the peer'
  | 'handshake timeout'
  | 'closed during the handshake'
  | 'bad frame'
  | 'connection error';

/** What a link needs from the transport that owns it. */
export interface LinkOwner {
  readonly maxFrameBytes: number;
  readonly heartbeatMs: number;
  /** Liveness time: `opened` and `lastRx` are on this clock. */
  readonly clock: AwakeClock;
  log(level: LogLevel, msg: string): void;
  /** The peer proved who it is: returns its stats and this end's RESUME (the link sends it, then waits for the peer's). */
  authenticated(link: Link, peer: PeerHello): { stats: PeerStats; resume: Buffer };
  /** The peer's RESUME arrived (state 'resuming'); the owner attaches a session or throws EPROTO. */
  resume(link: Link, frame: Buffer): void;
  /** An authenticated peer broke the protocol or gave our session up; the owner ends the session. */
  sessionFailed(link: Link, reason: string, byPeer: boolean): void;
  /** A connection refused before its peer was authenticated. */
  rejected(link: Link, why: Rejection, reason: string): void;
  /** The connection is closed; `errno` is the socket's error code, if an error closed it. */
  closed(link: Link, reason: string, errno: string | undefined): void;
}

/** Queued output past which a whole queue is written piece by piece rather than joined. */
const JOIN_LIMIT = 64 * 1024;

function flushLink(link: Link): void {
  link.flush();
}

export class Link implements SessionLink {
  state: 'handshake' | 'resuming' | 'up' | 'closed' = 'handshake';
  peerId: number | undefined;
  /** The peer process's incarnation, once authenticated. */
  incarnation: string | undefined;
  /** The session id this end offered in its RESUME, should a new session start. */
  fresh = 0;
  /** The largest frame the peer accepts, from its hello. */
  peerMaxFrame = 0;
  session: Session | undefined;
  readonly opened: number;
  /** When this end last wrote (real time, for heartbeats). */
  lastTx = performance.now();
  /** When bytes last arrived from the authenticated peer (any bytes are a sign of life). */
  lastRx = 0;
  /** TCP connected (a dialed socket is not at first). */
  connected: boolean;
  /** Refused before authentication (the rejection log has its line). */
  refused = false;
  private stats: PeerStats | undefined;
  private readonly reader: FrameReader;
  private handshake: Handshake | undefined;
  private queue: Buffer[] = [];
  private queued = 0;
  private flushScheduled = false;
  /** When the first frame now queued was queued (real time). */
  private queuedAt = 0;
  private ackWanted = false;
  private bytesIn = 0;
  /** A refusal or Drop on its way out: the reason the link closes with, whatever the socket says meanwhile. */
  private closing: string | undefined;
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
    this.opened = owner.clock.now();
    this.connected = dialed === undefined;
    this.reader = new FrameReader(HANDSHAKE_MAX_FRAME, (f) => this.onFrame(f));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      if (this.backlog) this.session?.recordDrain(this.backlog.bytes, performance.now() - this.backlog.since);
      this.backlog = undefined;
      this.session?.settleWaiters();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => this.close(`the connection to ${this.who} failed: ${err.code ?? err.message}`, err.code ?? 'EIO'));
    socket.on('close', () => this.onEnd());
  }

  /** Who is on the other end, as log lines name it. */
  get who(): string {
    const id = this.peerId ?? this.handshake?.claimedId ?? this.dialed;
    return id === undefined ? `the node at ${this.address}` : `node ${id} at ${this.address}`;
  }

  get up(): boolean {
    return this.state === 'up';
  }

  get writableLength(): number {
    return this.socket.writableLength;
  }

  get needsDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  /** Closing on this end's decision, a last frame (Reject or Drop) on its way out. */
  get finishing(): boolean {
    return this.closing !== undefined;
  }

  get queuedBytes(): number {
    return this.queued + this.socket.writableLength;
  }

  /** Starts the handshake; `binding` is the TLS session's keying material, or empty. */
  start(config: Omit<HandshakeConfig, 'binding'>, binding: Buffer): void {
    this.connected = true;
    this.handshake = new Handshake({ ...config, binding });
    this.socket.write(this.handshake.hello());
  }

  /** The RESUME exchange is done: frames of `session` flow from now on. */
  attach(session: Session): void {
    this.state = 'up';
    this.session = session;
  }

  enqueue(frame: Buffer): void {
    const now = performance.now();
    const first = this.queue.length === 0;
    if (first) this.queuedAt = now;
    this.queue.push(frame);
    this.queued += frame.length;
    this.schedule();
    // A process busy producing frames for long in one tick still shows signs of life:
    // past half a heartbeat, what is queued goes out now rather than at the end of the tick.
    if (!first && now - this.queuedAt > this.owner.heartbeatMs / 2) this.flush();
  }

  wantAck(): void {
    this.ackWanted = true;
    this.schedule();
  }

  flush(): void {
    this.flushScheduled = false;
    // A session lost a moment ago (replay overflow inside send) sends nothing more.
    if (this.state !== 'up' || !this.session!.alive) return;
    if (this.queue.length === 0) {
      if (!this.ackWanted) return;
      this.queue.push(pingFrame(0));
      this.queued += this.queue[0]!.length;
    }
    this.ackWanted = false;
    const q = this.queue;
    const bytes = this.queued;
    this.queue = [];
    this.queued = 0;
    // Acks are cumulative: the newest one, on the last frame of the write, covers all.
    if (this.session && stampAck(q[q.length - 1]!, this.session.handled)) this.session.takeAck();
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
    this.sent(bytes, q.length);
  }

  /** A frame outside the queue (RESUME, Drop): written at once. */
  private write(frame: Buffer, end = false): void {
    if (end) this.socket.end(frame);
    else this.socket.write(frame);
    this.sent(frame.length, 1);
  }

  private sent(bytes: number, frames: number): void {
    this.lastTx = performance.now();
    if (!this.stats) return;
    this.stats.bytesOut += bytes;
    this.stats.framesOut += frames;
  }

  /** Heartbeat duty: a link that sent nothing for half a heartbeat sends one (with the latest ack). */
  ping(): void {
    if (this.state === 'up' && performance.now() - this.lastTx >= this.owner.heartbeatMs / 2) this.wantAck();
  }

  /**
   * Ends the link with the session it carried, telling the peer why first (a Drop) when
   * `tell`. What is still queued belonged to that session and is not sent.
   */
  finish(reason: string, tell: boolean): void {
    if (this.state === 'closed' || this.closing) return;
    this.queue = [];
    this.queued = 0;
    if (!tell || this.state === 'handshake') return this.close(reason);
    this.closing = reason;
    this.reader.stop();
    this.endWith(reasonFrame(Kind.Drop, reason));
  }

  /** Closes the link (idempotent) and tells the owner, which decides what the loss means. */
  close(reason: string, errno?: string): void {
    if (this.state === 'closed') return;
    if (this.closing) reason = this.closing;
    this.state = 'closed';
    this.reader.stop();
    this.session?.detach(this);
    this.owner.closed(this, reason, errno);
    this.socket.destroy();
  }

  /** Refuses the peer before it is authenticated, sending it `reject` first if given. */
  reject(why: Rejection, reason: string, reject?: string): void {
    if (this.state === 'closed' || this.closing) return;
    this.refused = true;
    this.owner.rejected(this, why, reason);
    if (reject === undefined) return this.close(reason);
    this.closing = reason;
    this.reader.stop();
    this.endWith(encodeReject(reject));
  }

  private endWith(frame: Buffer): void {
    // The frame must reach the peer before the connection goes: end, then destroy. A
    // peer that does not read (stopped) cannot hold the socket open beyond a grace period.
    const grace = setTimeout(() => this.close(this.closing!), 2000);
    grace.unref();
    this.socket.once('finish', () => {
      clearTimeout(grace);
      this.close(this.closing!);
    });
    this.write(frame, true);
  }

  private schedule(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(flushLink, this);
    }
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'resuming' || this.state === 'up') this.lastRx = this.owner.clock.now();
    this.bytesIn += chunk.length;
    try {
      this.reader.push(chunk);
    } catch (err) {
      if (err instanceof HandshakeFailure) this.onHandshakeFailure(err);
      else if (err instanceof NaplusError && err.code === 'EPROTO') this.broke(`${this.who} sent ${err.message}`);
      // Whatever else a frame provokes is still that one link's problem: the node goes on.
      else this.broke(`reading from ${this.who} failed unexpectedly: ${(err as Error).stack ?? String(err)}`);
    }
    if (this.state === 'up') this.session!.afterRead();
  }

  /** A broken rule: before authentication a rejection, after it the end of the session. */
  private broke(reason: string): void {
    if (this.state === 'handshake') this.reject('bad frame', reason);
    else if (this.state !== 'closed') this.owner.sessionFailed(this, reason, false);
  }

  private onEnd(): void {
    const { have, need } = this.reader.partial;
    if (this.state === 'closed') return;
    const cut = have > 0 ? ` in the middle of a frame (${have} of ${need || 'at least 4'} bytes received)` : '';
    if (this.state === 'handshake' && !this.closing) {
      // With TLS 1.3 a server that rejects our certificate just closes, after the client
      // thought the TLS handshake done: say where to look.
      const hint = this.handshake && (this.socket as { encrypted?: boolean }).encrypted ? " (TLS: was this node's certificate signed by the CA it trusts?)" : '';
      if (this.bytesIn > 0 || this.dialed !== undefined) return this.reject('closed during the handshake', `${this.who} closed the connection during the handshake${cut}${hint}`);
      // Connected and left without a word: a liveness probe (transport.ts), or a port scan.
      return this.close(`${this.who} closed the connection before its hello`);
    }
    this.close(`${this.who} closed the connection${cut}`);
  }

  private onFrame(frame: Buffer): void {
    if (this.state === 'handshake') return this.onHandshakeFrame(frame);
    this.stats!.framesIn++;
    this.stats!.bytesIn += LENGTH_BYTES + frame.length;
    const kind = frame[0];
    switch (kind) {
      case Kind.Message:
      case Kind.Request:
      case Kind.Reply:
      case Kind.ReplyError:
        if (this.state !== 'up') break;
        return this.session!.receive(frame);
      case Kind.Ping:
        if (this.state !== 'up') break;
        return this.session!.onPing(frame);
      case Kind.Resume:
        if (this.state !== 'resuming') break;
        return this.owner.resume(this, frame);
      case Kind.Drop:
        return this.owner.sessionFailed(this, `node ${this.peerId} gave the session up: ${reasonOf(frame)}`, true);
      case Kind.Reject:
        return this.owner.sessionFailed(this, `${this.who} closed the link: ${reasonOf(frame)}`, true);
      case Kind.Hello:
      case Kind.Proof:
        break;
      default:
        return this.broke(`${this.who} sent a frame of unknown kind ${kind}`);
    }
    this.broke(`${this.who} sent a frame of kind ${kind} ${this.state === 'resuming' ? 'before its resume frame' : 'out of place'}`);
  }

  private onHandshakeFrame(frame: Buffer): void {
    const step = this.handshake!.receive(frame);
    if (step.send) this.socket.write(step.send);
    if (!step.done) return;
    this.peerId = step.done.nodeId;
    this.incarnation = step.done.incarnation;
    this.reader.maxFrame = this.owner.maxFrameBytes;
    this.handshake = undefined;
    this.lastRx = this.owner.clock.now();
    const { stats, resume } = this.owner.authenticated(this, step.done);
    this.stats = stats;
    this.state = 'resuming';
    this.write(resume);
  }

  private onHandshakeFailure(err: HandshakeFailure): void {
    if (err.byPeer) return this.reject('refused by the peer', `${this.who} refused the handshake: ${err.message}`);
    this.reject('refused in the handshake', `handshake with ${this.who} failed: it ${err.message}`, `${this.who} ${err.message}`);
  }
}
