// The unix socket apps attach to, one per region: hands out the region's memfd, takes
// each app's userfaultfd, watches it, and answers the app's requests. An app that
// exits or crashes closes its socket; that detaches it (userfaultfd closed, its
// waiting faults forgotten), and the node keeps serving the others.
//
// Every peer is treated as hostile. Its messages are checked field by field; every
// descriptor it sends is closed at once unless it is the one its message must carry,
// and that one must be what it claims: a userfaultfd, registered over this region's
// memfd where the app says it is. Each descriptor is closed exactly once, by its one
// owner. Replies to a peer that has gone are dropped. The connection limits and the
// handshake deadline are the gate's (connection-gate.ts). The app is named by a pidfd
// taken when it connected, so a signal meant for it never reaches another process.
import fs from 'node:fs';
import path from 'node:path';
import { MAX_MESSAGE, PeerProcess, UnixServer, Userfaultfd, type Credentials, type UnixChannel, type Watch } from '../uffd/index.js';
import { NaplusError } from '../errors.js';
import { ATTACH_PROTOCOL, encode, parseAppMessage, type AppToNode, type Hello, type NodeToApp, type UffdHandover, type Welcome } from '../attach-protocol.js';
import type { AppLink, RegionService } from './region.js';
import { Readahead } from './readahead.js';
import { ConnectionGate, type GateLimits, type Ticket } from './connection-gate.js';
import { LogBudget } from './log-budget.js';

export type RequestHandler = (app: AppLink, args: Record<string, unknown>) => unknown | Promise<unknown>;

/**
 * Per region socket: connections in their handshake (hello to ready), the time they
 * have for it (an app needs milliseconds), and connections in all (attached apps).
 */
export const ATTACH_LIMITS: GateLimits = { maxPending: 64, maxConnections: 1024, handshakeMs: 5000 };

interface Connection {
  channel: UnixChannel;
  cred: Credentials;
  process: PeerProcess;
  ticket: Ticket;
  greeted: boolean;
  /** A guardian's lifeline (see attach-protocol.ts): it only pings. */
  lifeline?: boolean;
  link?: AppLink;
  watch?: Watch;
}

let nextAppId = 1;

export class AttachServer {
  private server: UnixServer;
  private connections = new Set<Connection>();
  private readonly gate: ConnectionGate;
  private readonly badMessages: LogBudget;
  /** Attach and detach lines: an app attaching and leaving in a loop must not flood the log. */
  private readonly appLines: LogBudget;
  private readonly memfdId: { dev: number; ino: number };
  private unverifiedLogged = false;
  readonly handlers = new Map<string, RequestHandler>();
  /** Called when an app has attached (its userfaultfd is watched). */
  onAttach: ((app: AppLink) => void) | undefined;
  /** Called when an app detaches, for state an app holds elsewhere (locks, say). */
  onDetach: ((app: AppLink) => void) | undefined;

  constructor(
    private readonly region: RegionService,
    readonly socketPath: string,
    /** What the welcome says of this node: its cluster, host, the ranges homed there, how it judges liveness. */
    private readonly identity: Pick<Welcome, 'cluster' | 'host' | 'local' | 'liveness'>,
    private readonly log: (level: 'info' | 'warn', msg: string) => void,
  ) {
    const name = path.basename(socketPath);
    const warn = (m: string) => log('warn', m);
    this.gate = new ConnectionGate(name, ATTACH_LIMITS, warn);
    this.badMessages = new LogBudget(warn, `bad messages on ${name}`);
    this.appLines = new LogBudget((m) => log('info', m), `attach and detach lines for ${name}`, 100);
    const { dev, ino } = fs.fstatSync(region.memfd.fd);
    this.memfdId = { dev, ino };
    this.server = UnixServer.listen(socketPath, (channel) => this.accept(channel), { log: warn });
  }

  get appCount(): number {
    return this.region.apps.size;
  }

  private accept(channel: UnixChannel): void {
    const ticket = this.gate.admit(channel);
    if (!ticket) return;
    let cred: Credentials;
    let process: PeerProcess;
    try {
      cred = channel.peer();
      process = PeerProcess.ofSocket(channel.fd, cred.pid);
    } catch (err) {
      this.badMessages.say(`region ${this.region.config.name}: cannot identify a connecting process (${(err as Error).message}); closed it`);
      ticket.release();
      channel.close();
      return;
    }
    const conn: Connection = { channel, cred, process, ticket, greeted: false };
    this.connections.add(conn);
    channel.start({
      message: (data, fds) => this.onMessage(conn, data, fds),
      close: () => this.detach(conn),
    });
  }

  private onMessage(conn: Connection, data: Buffer, fds: number[]): void {
    let msg: AppToNode | undefined;
    let malformed: unknown;
    try {
      msg = parseAppMessage(data);
    } catch (err) {
      malformed = err;
    }
    // The one descriptor a message may carry is the userfaultfd of a `uffd` message.
    const carried = msg?.op === 'uffd' && fds.length === 1 ? fds[0] : undefined;
    for (const fd of fds) if (fd !== carried) fs.closeSync(fd);
    try {
      if (!msg) throw malformed;
      switch (msg.op) {
        case 'hello':
          return this.greet(conn, msg);
        case 'uffd':
          return this.attach(conn, msg, carried);
        case 'request':
          if (conn.lifeline) throw new NaplusError('EPROTO', 'a lifeline only pings');
          void this.answer(conn, msg.id, msg.method, msg.args ?? {});
          return;
        case 'ping':
          if (!conn.lifeline) throw new NaplusError('EPROTO', 'only a lifeline pings');
          this.send(conn, { op: 'pong' });
          return;
      }
    } catch (err) {
      this.refuse(conn, err as NaplusError);
    }
  }

  private greet(conn: Connection, msg: Hello): void {
    if (conn.greeted) throw new NaplusError('EPROTO', 'hello was sent twice');
    if (msg.version !== ATTACH_PROTOCOL) throw new NaplusError('EPROTO', `attach protocol ${msg.version} is not ${ATTACH_PROTOCOL}; use the same Naplus version for app and node`);
    if (msg.region !== this.region.config.name) throw new NaplusError('ENOENT', `this socket serves region '${this.region.config.name}', not '${msg.region}'`);
    conn.greeted = true;
    if (msg.lifeline) {
      conn.lifeline = true;
      conn.ticket.established();
      this.send(conn, { op: 'watched', liveness: this.identity.liveness });
      return;
    }
    const r = this.region;
    this.send(conn, {
      op: 'welcome', region: r.config.name, size: r.config.size, pageSize: r.pageSize, nodeId: r.nodeId, ...this.identity,
      placement: r.config.placement,
    }, [r.memfd.fd]);
  }

  /** Takes the app's userfaultfd (`fd`, now ours to close) once it is shown to be right. */
  private attach(conn: Connection, msg: UffdHandover, fd: number | undefined): void {
    if (fd === undefined) throw new NaplusError('EPROTO', 'expected exactly one userfaultfd, once');
    let uffd: Userfaultfd;
    try {
      if (!conn.greeted || conn.link || conn.lifeline) throw new NaplusError('EPROTO', conn.link || conn.lifeline ? 'expected exactly one userfaultfd, once' : 'send hello first');
      uffd = Userfaultfd.adopt(fd, { via: msg.via, pageSize: this.region.pageSize });
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    try {
      // Reading a fork event installs a new userfaultfd in the reader: in the node.
      if (uffd.forkEvents) throw new NaplusError('EINVAL', 'the userfaultfd asks for fork events, which the node does not take');
      this.checkRegistered(conn, msg.base);
    } catch (err) {
      uffd.close();
      throw err;
    }
    const { pid, uid, gid } = conn.cred;
    const link: AppLink = {
      id: nextAppId++, pid, uffd, base: msg.base, readahead: new Readahead(this.region.maxReadahead), poisoned: new Set(),
      kill: (signal) => this.signal(conn, signal),
    };
    conn.link = link;
    conn.ticket.established();
    this.region.addApp(link);
    conn.watch = uffd.watch(
      (events) => this.region.onEvents(link, events),
      (err) => {
        this.log('warn', `app pid ${pid}: ${err.message}; detaching it`);
        conn.channel.close();
      },
    );
    this.appLines.say(`region ${this.region.config.name}: app attached, pid ${pid} uid ${uid} gid ${gid}`);
    if (msg.via === 'syscall-user-mode') {
      this.appLines.say(`app pid ${pid} has a user-mode-only userfaultfd: system calls that touch the region (read(2) into it, say) fail with EFAULT`);
    }
    this.onAttach?.(link);
    this.send(conn, { op: 'ready' });
  }

  /**
   * The app's mapping of this region must start at `base`, map this region's memfd
   * whole, and be registered with a userfaultfd for MISSING, MINOR and WP faults, as
   * /proc/<pid>/smaps of the process that connected shows. This protects careless apps
   * (a registration on the wrong range would let their stores bypass coherence), not
   * the node: an app that wanted to could map the memfd again, unregistered, and
   * nothing the node does through an app's userfaultfd reaches another process. So
   * where smaps cannot be read (a node that is not root, an app of another user, a pid
   * from another pid namespace), the check is skipped.
   */
  private checkRegistered(conn: Connection, base: number): void {
    const { pid } = conn.cred;
    let mapping;
    try {
      if (pid === 0) throw new NaplusError('EACCES', 'the app is in another pid namespace');
      mapping = conn.process.mappingAt(base);
    } catch (err) {
      const code = (err as NaplusError).code;
      if (code !== 'EACCES' && code !== 'EPERM') throw new NaplusError('ESRCH', `cannot read the mappings of process ${pid} (${(err as Error).message})`);
      if (!this.unverifiedLogged) this.log('info', `region ${this.region.config.name}: cannot check where apps registered their userfaultfd (${(err as Error).message}); trusting them`);
      this.unverifiedLogged = true;
      return;
    }
    const at = `0x${base.toString(16)}`;
    if (!mapping) throw new NaplusError('EINVAL', `process ${pid} maps nothing at ${at}`);
    if (mapping.dev !== this.memfdId.dev || mapping.ino !== this.memfdId.ino) {
      throw new NaplusError('EINVAL', `the mapping at ${at} in process ${pid} is not of region '${this.region.config.name}'`);
    }
    if (mapping.offset !== 0 || mapping.end - mapping.start !== this.region.config.size) {
      throw new NaplusError('EINVAL', `the mapping at ${at} in process ${pid} is not the whole region (${mapping.end - mapping.start} bytes from offset ${mapping.offset})`);
    }
    if (!['um', 'ui', 'uw'].every((f) => mapping.flags.has(f))) {
      throw new NaplusError('EINVAL', `the mapping at ${at} in process ${pid} is not registered with a userfaultfd for MISSING, MINOR and WP faults`);
    }
  }

  /** Signals the app through its pidfd. An app that has exited is detached instead (later: never from inside the caller). */
  private signal(conn: Connection, signal: NodeJS.Signals): void {
    const { pid } = conn.cred;
    try {
      if (conn.process.signal(signal)) return;
    } catch (err) {
      this.log('warn', `app pid ${pid}: ${(err as Error).message}`);
      return;
    }
    this.log('warn', `app pid ${pid} has exited; its connection, held by another process, is closed`);
    setImmediate(() => conn.channel.close());
  }

  private refuse(conn: Connection, err: NaplusError): void {
    const message = err instanceof Error ? err.message : String(err);
    this.badMessages.say(`region ${this.region.config.name}: app pid ${conn.cred.pid} sent a bad message (${message}); detaching it`);
    this.send(conn, { op: 'refused', message, code: err.code ?? 'EPROTO' });
    conn.channel.close();
  }

  private async answer(conn: Connection, id: number, method: string, args: Record<string, unknown>): Promise<void> {
    const handler = this.handlers.get(method);
    try {
      if (!conn.link) throw new NaplusError('EPROTO', 'attach first');
      if (!handler) throw new NaplusError('ENOSYS', `the node has no method '${method}'`);
      this.send(conn, { op: 'reply', id, result: await handler(conn.link, args) });
    } catch (err) {
      this.send(conn, { op: 'reply', id, error: failure(err) });
    }
  }

  /** Never throws: a gone peer drops the message; a reply too large to send becomes an error reply. */
  private send(conn: Connection, msg: NodeToApp, fds: number[] = []): void {
    if (!conn.channel.isOpen) return;
    let data: Buffer;
    try {
      data = encode(msg);
      if (data.length > MAX_MESSAGE) throw new NaplusError('EMSGSIZE', `the answer (${data.length} bytes) is larger than a message may be (${MAX_MESSAGE})`);
    } catch (err) {
      if (msg.op !== 'reply') throw err;
      data = encode({ op: 'reply', id: msg.id, error: failure(err) });
    }
    conn.channel.send(data, fds);
  }

  /** Tells app `id`, if attached here, something it did not ask (its lock was lost, say). */
  notify(id: number, message: string, data: unknown): void {
    for (const conn of this.connections) if (conn.link?.id === id) this.send(conn, { op: 'event', message, data });
  }

  private detach(conn: Connection): void {
    this.connections.delete(conn);
    conn.ticket.release();
    conn.process.close();
    if (!conn.link) return;
    conn.watch?.stop();
    this.region.removeApp(conn.link);
    conn.link.uffd.close(); // the last reference: the kernel unregisters and wakes its faults
    this.appLines.say(`region ${this.region.config.name}: app pid ${conn.link.pid} detached`);
    this.onDetach?.(conn.link);
  }

  /** Tells every app the node is going away, then detaches them all. */
  close(reason: string): void {
    this.server.close();
    for (const conn of [...this.connections]) {
      this.send(conn, { op: 'shutdown', message: reason });
      conn.channel.close();
    }
  }
}

function failure(err: unknown): { code: string; message: string } {
  return { code: (err as NaplusError).code ?? 'EIO', message: err instanceof Error ? err.message : String(err) };
}
