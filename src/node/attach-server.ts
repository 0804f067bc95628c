// The unix socket apps attach to, one per region: hands out the region's memfd, takes
// each app's userfaultfd, watches it, and answers the app's requests. An app that
// exits or crashes closes its socket; that detaches it (userfaultfd closed, its
// waiting faults forgotten), and the node keeps serving the others.
import fs from 'node:fs';
import path from 'node:path';
import { UnixServer, Userfaultfd, type UnixChannel, type Watch } from '../uffd/index.js';
import { NaplusError } from '../errors.js';
import { ATTACH_PROTOCOL, decode, encode, type AppToNode, type NodeToApp, type Welcome } from './messages.js';
import type { AppLink, RegionService } from './region.js';
import { Readahead } from './readahead.js';

export type RequestHandler = (app: AppLink, args: Record<string, unknown>) => unknown | Promise<unknown>;

interface Attached {
  channel: UnixChannel;
  link?: AppLink;
  watch?: Watch;
}

let nextAppId = 1;

export class AttachServer {
  private server: UnixServer;
  private attached = new Set<Attached>();
  readonly handlers = new Map<string, RequestHandler>();
  /** Called when an app has attached (its userfaultfd is watched). */
  onAttach: ((app: AppLink) => void) | undefined;
  /** Called when an app detaches, for state an app holds elsewhere (locks, say). */
  onDetach: ((app: AppLink) => void) | undefined;

  constructor(
    private readonly region: RegionService,
    readonly socketPath: string,
    /** What the welcome says of this node: its cluster, host, and the ranges homed there. */
    private readonly identity: Pick<Welcome, 'cluster' | 'host' | 'local'>,
    private readonly log: (level: 'info' | 'warn', msg: string) => void,
  ) {
    fs.mkdirSync(path.dirname(socketPath), { recursive: true });
    this.server = UnixServer.listen(socketPath, (channel) => this.accept(channel));
  }

  get appCount(): number {
    return this.region.apps.size;
  }

  private accept(channel: UnixChannel): void {
    const conn: Attached = { channel };
    this.attached.add(conn);
    const cred = channel.peer();
    channel.start({
      message: (data, fds) => {
        try {
          this.onMessage(conn, decode<AppToNode>(data), fds, cred.pid);
        } catch (err) {
          for (const fd of fds) fs.closeSync(fd);
          this.log('warn', `region ${this.region.config.name}: app pid ${cred.pid} sent a bad message (${(err as Error).message}); detaching it`);
          this.send(conn, { op: 'refused', message: (err as Error).message, code: (err as NaplusError).code ?? 'EPROTO' });
          channel.close();
        }
      },
      close: () => this.detach(conn),
    });
  }

  private onMessage(conn: Attached, msg: AppToNode, fds: number[], pid: number): void {
    switch (msg.op) {
      case 'hello': {
        if (msg.version !== ATTACH_PROTOCOL) throw new NaplusError('EPROTO', `attach protocol ${msg.version} is not ${ATTACH_PROTOCOL}; use the same Naplus version for app and node`);
        if (msg.region !== this.region.config.name) throw new NaplusError('ENOENT', `this socket serves region '${this.region.config.name}', not '${msg.region}'`);
        const cred = conn.channel.peer();
        this.log('info', `region ${msg.region}: app attaching, pid ${cred.pid} uid ${cred.uid} gid ${cred.gid}`);
        const r = this.region;
        this.send(conn, {
          op: 'welcome', region: r.config.name, size: r.config.size, pageSize: r.pageSize, nodeId: r.nodeId, ...this.identity,
          placement: r.config.placement,
        }, [r.memfd.fd]);
        return;
      }
      case 'uffd': {
        if (fds.length !== 1 || conn.link) throw new NaplusError('EPROTO', 'expected exactly one userfaultfd, once');
        const uffd = Userfaultfd.adopt(fds[0]!, msg.features, msg.via, this.region.pageSize);
        const link: AppLink = { id: nextAppId++, pid, uffd, base: msg.base, readahead: new Readahead(this.region.maxReadahead) };
        conn.link = link;
        this.region.addApp(link);
        conn.watch = uffd.watch(
          (events) => this.region.onEvents(link, events),
          (err) => {
            this.log('warn', `app pid ${pid}: ${err.message}; detaching it`);
            conn.channel.close();
          },
        );
        if (msg.via === 'syscall-user-mode') {
          this.log('warn', `app pid ${pid} has a user-mode-only userfaultfd: system calls that touch the region (read(2) into it, say) fail with EFAULT`);
        }
        this.onAttach?.(link);
        this.send(conn, { op: 'ready' });
        return;
      }
      case 'request':
        void this.answer(conn, msg.id, msg.method, msg.args ?? {});
        return;
      default:
        throw new NaplusError('EPROTO', `unknown message op ${JSON.stringify((msg as { op: unknown }).op)}`);
    }
  }

  private async answer(conn: Attached, id: number, method: string, args: Record<string, unknown>): Promise<void> {
    const handler = this.handlers.get(method);
    try {
      if (!conn.link) throw new NaplusError('EPROTO', 'attach first');
      if (!handler) throw new NaplusError('ENOSYS', `the node has no method '${method}'`);
      this.send(conn, { op: 'reply', id, result: await handler(conn.link, args) });
    } catch (err) {
      const e = err as NaplusError;
      this.send(conn, { op: 'reply', id, error: { code: e.code ?? 'EIO', message: e.message } });
    }
  }

  private send(conn: Attached, msg: NodeToApp, fds: number[] = []): void {
    if (conn.channel.isOpen) conn.channel.send(encode(msg), fds);
  }

  /** Tells app `id`, if attached here, something it did not ask (its lock was lost, say). */
  notify(id: number, message: string, data: unknown): void {
    for (const conn of this.attached) if (conn.link?.id === id) this.send(conn, { op: 'event', message, data });
  }

  private detach(conn: Attached): void {
    this.attached.delete(conn);
    if (!conn.link) return;
    conn.watch?.stop();
    this.region.removeApp(conn.link);
    conn.link.uffd.close(); // the last reference: the kernel unregisters and wakes its faults
    this.log('info', `region ${this.region.config.name}: app pid ${conn.link.pid} detached`);
    this.onDetach?.(conn.link);
  }

  /** Tells every app the node is going away, then detaches them all. */
  close(reason: string): void {
    this.server.close();
    for (const conn of [...this.attached]) {
      this.send(conn, { op: 'shutdown', message: reason });
      conn.channel.close();
    }
  }
}
