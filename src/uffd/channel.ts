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

  peer(): Credentials {
    return native.peerCred(this.fd);
  }

  /** Sends one message; queued in order if the socket is full. Our `fds` stay ours. */
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

  private trySend(data: Buffer, fds: number[]): boolean {
    try {
      native.sendMsg(this.fd, data, fds);
      return true;
    } catch (err) {
      if (errnoOf(err) === 'EAGAIN') return false;
      throw new NaplusError(errnoOf(err) ?? 'EIO', `Sending on the channel failed: ${(err as Error).message}`);
    }
  }

  private onReady(err: string | null, events: number): void {
    if (err) return this.close(new NaplusError('EIO', `Channel error: ${err}`));
    if (events & UV_WRITABLE) this.flush();
    if (events & (UV_READABLE | UV_DISCONNECT)) this.receive();
  }

  private flush(): void {
    while (this.open && this.queue.length > 0) {
      const next = this.queue[0]!;
      try {
        if (!this.trySend(next.data, next.fds)) return;
      } catch (err) {
        return this.close(err as NaplusError);
      }
      this.queue.shift();
      next.fds.forEach((fd) => fs.closeSync(fd));
    }
    this.watcher?.wantWritable(false);
  }

  private receive(): void {
    while (this.open) {
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

/** A listening socket; each connection becomes a UnixChannel. */
export class UnixServer {
  private watcher: NativeWatcher;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    onConnection: (channel: UnixChannel) => void,
  ) {
    this.watcher = new native.Watcher(fd, false, () => {
      while (!this.closed) {
        const conn = native.unixAccept(this.fd);
        if (conn < 0) return;
        onConnection(UnixChannel.fromFd(conn));
      }
    });
  }

  /**
   * Listens at `path` with the given file mode (0660 by default: the owner and its
   * group may attach). A path held by a live listener is EADDRINUSE; a stale socket
   * file left by a crashed process is replaced.
   */
  static listen(path: string, onConnection: (channel: UnixChannel) => void, mode = 0o660): UnixServer {
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
    fs.chmodSync(path, mode);
    return new UnixServer(path, fd, onConnection);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher.stop();
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
