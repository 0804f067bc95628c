// Message channels over unix SOCK_SEQPACKET sockets that can carry file descriptors
// (SCM_RIGHTS) both ways: how an app receives a region's memfd and hands its
// userfaultfd to the node. One send is one message; descriptors travel with it.
import fs from 'node:fs';
import { native, type NativeWatcher } from './native.js';
import { NaplusError, errnoOf } from '../errors.js';

const UV_READABLE = 1;
const UV_WRITABLE = 2;
const UV_DISCONNECT = 4;

/**
 * Largest message a channel carries. A SEQPACKET message must fit the socket's send
 * buffer whole (about 208 KiB by default), so bulk data never travels here: it is in
 * the shared memory itself.
 */
export const MAX_MESSAGE = 64 * 1024;

/** Messages read per wake-up: a busy peer cannot hold the event loop for long. */
const RECEIVE_BATCH = 64;

export interface Credentials {
  pid: number;
  uid: number;
  gid: number;
}

export interface ChannelHandlers {
  message(data: Buffer, fds: number[]): void;
  close(reason?: NaplusError): void;
}

export class UnixChannel {
  private watcher: NativeWatcher | undefined;
  private queue: Array<{ data: Buffer; fds: number[] }> = [];
  private open = true;
  private handlers: ChannelHandlers | undefined;

  private constructor(readonly fd: number) {}

  /** Connects to a listening socket; fails at once (ENOENT, ECONNREFUSED) if nobody listens. */
  static connect(path: string): UnixChannel {
    return new UnixChannel(native.unixConnect(path));
  }

  /** Wraps an accepted descriptor. */
  static fromFd(fd: number): UnixChannel {
    return new UnixChannel(fd);
  }

  /** Starts delivering messages. Descriptors received belong to the handler (close them). */
  start(handlers: ChannelHandlers): void {
    this.handlers = handlers;
    this.watcher = new native.Watcher(this.fd, false, (err, events) => this.onReady(err, events));
  }

  /** With `false`, an idle channel no longer keeps the process alive. */
  ref(on: boolean): void {
    this.watcher?.ref(on);
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Messages waiting for the peer to make room (it is slow, or not reading at all). */
  get queued(): number {
    return this.queue.length;
  }

  peer(): Credentials {
    return native.peerCred(this.fd);
  }

  /**
   * Sends one message; queued in order if the socket is full. Our `fds` stay ours.
   * Throws only for the caller's mistakes (a channel it closed, a message too large):
   * a peer that has gone, or a send the kernel refuses, drops the message and the
   * channel closes (its `close` handler runs later, never from inside this call).
   */
  send(data: Buffer, fds: number[] = []): void {
    if (!this.open) throw new NaplusError('EPIPE', 'The channel is closed');
    if (data.length > MAX_MESSAGE) throw new NaplusError('EMSGSIZE', `Message of ${data.length} bytes exceeds ${MAX_MESSAGE}`);
    if (this.queue.length > 0 || !this.trySend(data, fds)) {
      // Duplicates keep the descriptors valid even if the caller closes its own.
      this.queue.push({ data, fds: fds.map((fd) => native.dup(fd)) });
      this.watcher?.wantWritable(true);
    }
  }

  close(reason?: NaplusError): void {
    if (!this.open) return;
    this.open = false;
    this.watcher?.stop();
    this.watcher = undefined;
    for (const m of this.queue) m.fds.forEach((fd) => fs.closeSync(fd));
    this.queue = [];
    fs.closeSync(this.fd);
    this.handlers?.close(reason);
  }

  /** False when the socket is full; true when the message is sent or dropped. */
  private trySend(data: Buffer, fds: number[]): boolean {
    try {
      native.sendMsg(this.fd, data, fds);
      return true;
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'EAGAIN') return false;
      // The peer closed (EPIPE, ECONNRESET): its end of stream is already on its way to
      // receive(), which closes the channel. Anything else ends the channel here, later.
      if (code !== 'EPIPE' && code !== 'ECONNRESET') {
        const reason = new NaplusError(code ?? 'EIO', `Sending on the channel failed: ${(err as Error).message}`);
        setImmediate(() => this.close(reason));
      }
      return true;
    }
  }

  private onReady(err: string | null, events: number): void {
    if (err) {
      // libuv reports any POLLERR as EBADF. The socket's own error (ECONNRESET: the
      // other end closed with messages of ours unread) comes with the next receive,
      // after the messages still queued for us.
      this.receive();
      return this.close(new NaplusError('ECONNRESET', 'The other end closed the connection'));
    }
    if (events & UV_WRITABLE) this.flush();
    if (events & (UV_READABLE | UV_DISCONNECT)) this.receive();
  }

  private flush(): void {
    while (this.open && this.queue.length > 0) {
      const next = this.queue[0]!;
      if (!this.trySend(next.data, next.fds)) return;
      this.queue.shift();
      next.fds.forEach((fd) => fs.closeSync(fd));
    }
    this.watcher?.wantWritable(false);
  }

  /**
   * Reads what is waiting, a bounded batch per wake-up: the poll is level-triggered, so
   * the rest comes on the next turn of the event loop, after everything else waiting.
   */
  private receive(): void {
    for (let n = 0; n < RECEIVE_BATCH && this.open; n++) {
      let msg;
      try {
        msg = native.recvMsg(this.fd, MAX_MESSAGE);
      } catch (err) {
        return this.close(new NaplusError(errnoOf(err) ?? 'EIO', `Receiving on the channel failed: ${(err as Error).message}`));
      }
      if (msg === null) return;
      if (msg.eof) return this.close();
      this.handlers?.message(msg.data, msg.fds);
    }
  }
}

/** How long accepting pauses when descriptors or memory run out, first and at most. */
const ACCEPT_RETRY_MS = { first: 50, max: 1000 };

export interface ListenOptions {
  /** File mode of the socket (0660 by default: the owner and its group may connect). */
  mode?: number;
  /** Told when accepting must pause (out of descriptors) and when it resumes. */
  log?: (message: string) => void;
}

/** A listening socket; each connection becomes a UnixChannel. */
export class UnixServer {
  private watcher: NativeWatcher | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private retryMs = 0;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly onConnection: (channel: UnixChannel) => void,
    private readonly log: (message: string) => void,
  ) {
    this.watch();
  }

  /**
   * Listens at `path`. A path held by a live listener is EADDRINUSE; a stale socket
   * file left by a crashed process is replaced.
   */
  static listen(path: string, onConnection: (channel: UnixChannel) => void, options: ListenOptions = {}): UnixServer {
    let fd: number;
    try {
      fd = native.unixListen(path, 64);
    } catch (err) {
      if (errnoOf(err) !== 'EADDRINUSE' || isLive(path)) {
        throw new NaplusError(
          errnoOf(err) ?? 'EIO',
          errnoOf(err) === 'EADDRINUSE'
            ? `Socket ${path} is in use by a running process; stop it or choose another --socket-dir`
            : `Cannot listen on ${path}: ${(err as Error).message}`,
        );
      }
      fs.unlinkSync(path);
      fd = native.unixListen(path, 64);
    }
    fs.chmodSync(path, options.mode ?? 0o660);
    return new UnixServer(path, fd, onConnection, options.log ?? (() => {}));
  }

  private watch(): void {
    this.watcher = new native.Watcher(this.fd, false, () => this.acceptAll());
  }

  private acceptAll(): void {
    while (!this.closed) {
      let conn: number;
      try {
        conn = native.unixAccept(this.fd);
      } catch (err) {
        return this.pause(err);
      }
      if (conn < 0) break;
      if (this.retryMs > 0) this.log(`accepting connections on ${this.path} again`);
      this.retryMs = 0;
      this.onConnection(UnixChannel.fromFd(conn));
    }
  }

  /**
   * Out of descriptors (EMFILE, ENFILE) or memory: the connection stays in the backlog,
   * so the socket would wake us again at once, forever. Stop watching it and try again
   * after a pause that doubles up to a second; say so once, not at every try.
   */
  private pause(err: unknown): void {
    this.watcher?.stop();
    this.watcher = undefined;
    if (this.retryMs === 0) {
      this.log(`accepting connections on ${this.path} failed (${(err as Error).message}); new connections wait until it works again`);
    }
    this.retryMs = Math.min(ACCEPT_RETRY_MS.max, Math.max(ACCEPT_RETRY_MS.first, this.retryMs * 2));
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (this.closed) return;
      this.watch();
      this.acceptAll();
    }, this.retryMs);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retry);
    this.watcher?.stop();
    fs.closeSync(this.fd);
    fs.rmSync(this.path, { force: true });
  }
}

function isLive(path: string): boolean {
  try {
    fs.closeSync(native.unixConnect(path));
    return true;
  } catch {
    return false;
  }
}
