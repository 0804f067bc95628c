// The app side of attaching: connect to the node's socket for a region, receive the
// region's memfd, map it, register the mapping with a userfaultfd of our own in
// MISSING|MINOR|WP modes, and hand that userfaultfd to the node. From then on plain
// loads and stores on the region's ArrayBuffer fault into the node, which resolves
// them; this process serves no fault itself. Its guardian (guardian.ts), a worker
// thread, watches the node and fences the region should it go.
import fs from 'node:fs';
import path from 'node:path';
import { Memfd, UnixChannel, Userfaultfd, type Mapping } from '../uffd/index.js';
import { NaplusError } from '../errors.js';
import { ATTACH_PROTOCOL, decode, encode, type NodeToApp, type Welcome } from '../attach-protocol.js';
import { checkNodeOwner } from './node-owner.js';
import { Guardian } from './guardian.js';

export const DEFAULT_SOCKET_DIR = '/run/naplus';

export interface AttachOptions {
  /** Where the node's sockets are: --socket-dir of naplus-mount ($NAPLUS_SOCKET_DIR, else /run/naplus). */
  socketDir?: string;
  /**
   * The uid the node may run as besides root and this process's own ($NAPLUS_NODE_UID):
   * a socket held by any other user is refused before anything is sent to it.
   */
  nodeUid?: number;
}

export class AttachedRegion {
  private nextId = 1;
  private calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: NaplusError) => void }>();
  private closedBecause: NaplusError | undefined;
  /** Listeners for events the node sends unasked. */
  readonly eventListeners = new Set<(message: string, data: unknown) => void>();
  private local: Array<[number, number]> | undefined;
  /** Set once attached: the worker that fences the region if the node goes. */
  guardian: Guardian | undefined;

  constructor(
    readonly info: Welcome,
    private readonly channel: UnixChannel,
    private readonly mapping: Mapping,
    /** The whole region, shared with every node of the cluster. */
    readonly buffer: ArrayBuffer,
  ) {}

  /** Where the region is mapped in this process. */
  get address(): number {
    return this.mapping.address;
  }

  get name(): string {
    return this.info.region;
  }

  /** An ArrayBuffer over [offset, offset+length) of the region, without copying. */
  view(offset: number, length: number): ArrayBuffer {
    if (this.closedBecause) throw this.closedBecause;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.info.size) {
      throw new NaplusError('ERANGE', `Bad offset: [${offset}, ${offset}+${length}) is outside region '${this.name}' of ${this.info.size} bytes`);
    }
    return this.mapping.view(offset, length);
  }

  /** Byte ranges [from, to) of the region homed on this node's host, merged, in order. */
  get localRanges(): ReadonlyArray<readonly [number, number]> {
    this.local ??= repeatRuns(this.info.local, this.info.size);
    return this.local;
  }

  get attached(): boolean {
    return this.closedBecause === undefined;
  }

  /** Calls a method of the node; rejects with the node's NaplusError. */
  call<T>(method: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.closedBecause) return Promise.reject(this.closedBecause);
    const id = this.nextId++;
    this.channel.ref(true); // a call in flight keeps the process alive
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.channel.send(encode({ op: 'request', id, method, args }));
    });
  }

  onMessage(msg: NodeToApp): void {
    if (msg.op === 'reply') {
      const call = this.calls.get(msg.id);
      this.calls.delete(msg.id);
      if (this.calls.size === 0) this.channel.ref(false);
      if (msg.error) call?.reject(new NaplusError(msg.error.code, msg.error.message));
      else call?.resolve(msg.result);
    } else if (msg.op === 'shutdown') {
      this.closed(new NaplusError('ESHUTDOWN', `The Naplus node stopped (${msg.message}); region '${this.name}' is detached`));
    } else if (msg.op === 'event') {
      for (const l of this.eventListeners) l(msg.message, msg.data);
    }
  }

  closed(reason: NaplusError): void {
    if (this.closedBecause) return;
    this.closedBecause = reason;
    for (const call of this.calls.values()) call.reject(reason);
    this.calls.clear();
    this.channel.close();
  }

  /**
   * The node is gone (the guardian fenced the region): every access takes SIGBUS, and
   * every call rejects, saying why.
   */
  fenced(reason: string): void {
    this.closed(new NaplusError('ECONNRESET', `The Naplus node of region '${this.name}' is gone (${reason}); the region is fenced: every access to it takes SIGBUS`));
  }

  /** Detaches: the node forgets this app. Views made earlier stay mapped but are no longer coherent. */
  async detach(): Promise<void> {
    this.guardian?.stop();
    this.closed(new NaplusError('EBADF', `Region '${this.name}' was detached`));
    this.mapping.unmap();
  }
}

/** The welcome's runs of one period, repeated to the end of the region and merged. */
export function repeatRuns({ period, runs }: Welcome['local'], size: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (let base = 0; base < size && runs.length > 0; base += period) {
    for (const [a, b] of runs) {
      if (base + a >= size) break;
      const to = Math.min(base + b, size);
      const last = ranges.at(-1);
      if (last && last[1] === base + a) last[1] = to;
      else ranges.push([base + a, to]);
    }
  }
  return ranges;
}

/** Attaches this process to region `name` through the local Naplus node. */
export async function attachRegion(name: string, options: AttachOptions = {}): Promise<AttachedRegion> {
  const socketDir = options.socketDir ?? process.env.NAPLUS_SOCKET_DIR ?? DEFAULT_SOCKET_DIR;
  const socketPath = path.join(socketDir, `${name}.sock`);
  let channel: UnixChannel;
  try {
    channel = UnixChannel.connect(socketPath);
  } catch (err) {
    const code = (err as NaplusError).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') {
      const others = fs.existsSync(socketDir) ? fs.readdirSync(socketDir).filter((f) => f.endsWith('.sock') && f !== 'control.sock') : [];
      const hint = others.length > 0
        ? `no such region: this node serves ${others.map((f) => `'${f.slice(0, -5)}'`).join(', ')}`
        : `no Naplus node is running there; start one with \`naplus-mount --cluster <file> --node <id> --socket-dir ${socketDir}\``;
      throw new NaplusError(others.length > 0 ? 'ENOENT' : 'ENOTCONN', `Cannot attach to region '${name}' at ${socketPath}: ${hint}`);
    }
    throw err;
  }
  try {
    checkNodeOwner(channel, socketPath, options.nodeUid);
  } catch (err) {
    channel.close();
    throw err;
  }
  return new Promise<AttachedRegion>((resolve, reject) => {
    // hello → welcome(+memfd) → uffd(+userfaultfd) → ready. Only after 'ready' does the
    // node watch our userfaultfd, so only then is touching the region safe; and only once
    // the guardian watches the node is the region handed to the app.
    let region: AttachedRegion | undefined;
    let uffd: Userfaultfd | undefined;
    let ready = false;
    const fail = (err: NaplusError) => {
      reject(err); // first: closing reports a close, whose own error must not win
      uffd?.close(); // not handed to a guardian yet: ours to close
      uffd = undefined;
      region?.closed(err);
      channel.close();
    };
    channel.start({
      message(data, fds) {
        try {
          const msg = decode<NodeToApp>(data);
          if (ready) return region!.onMessage(msg);
          if (msg.op === 'welcome' && !region) {
            ({ region, uffd } = mapAndHandOver(msg, fds, channel));
          } else if (msg.op === 'ready' && region) {
            ready = true;
            const r = region;
            const setup = { socketPath, region: name, nodeUid: options.nodeUid, uffd: uffd!.fd, pageSize: r.info.pageSize, address: r.address, length: r.info.size, liveness: r.info.liveness };
            uffd = undefined; // the guardian's from now on, to close whatever happens
            Guardian.start(setup, (reason) => r.fenced(reason)).then((guardian) => {
              r.guardian = guardian;
              channel.ref(false); // an attached, idle app may exit when its work is done
              resolve(r);
            }, fail);
          } else if (msg.op === 'refused') {
            fail(new NaplusError(msg.code ?? 'EPROTO', `The node refused to attach region '${name}': ${msg.message}`));
          } else {
            fail(new NaplusError('EPROTO', `Unexpected '${msg.op}' from the node while attaching region '${name}'`));
          }
        } catch (err) {
          if (ready) region!.closed(err as NaplusError);
          else fail(err as NaplusError);
        }
      },
      close(reason) {
        const err = reason ?? new NaplusError('ECONNRESET', `The Naplus node closed the connection of region '${name}'`);
        if (ready) region!.closed(err);
        else fail(err);
      },
    });
    channel.send(encode({ op: 'hello', version: ATTACH_PROTOCOL, region: name }));
  });
}

/** Maps the region and hands the node our userfaultfd; the guardian will hold our own reference to it. */
function mapAndHandOver(welcome: Welcome, fds: number[], channel: UnixChannel): { region: AttachedRegion; uffd: Userfaultfd } {
  if (fds.length !== 1) {
    for (const fd of fds) fs.closeSync(fd);
    throw new NaplusError('EPROTO', 'The node sent no memfd with its welcome');
  }
  let mapping: Mapping;
  try {
    mapping = Memfd.adopt(fds[0]!).map();
  } finally {
    fs.closeSync(fds[0]!); // the mapping keeps the file alive
  }
  // No events: an unmap or remove event holds the unmapping thread until the node has
  // read it, and the node may be stopped, when the guardian must fence the region at once.
  // The node has no use for them either: what an app gives up it simply faults on again.
  const uffd = Userfaultfd.open({ pageSize: welcome.pageSize, events: [] });
  try {
    uffd.register(mapping.address, mapping.length);
    channel.send(encode({ op: 'uffd', base: mapping.address, via: uffd.via }), [uffd.fd]);
  } catch (err) {
    uffd.close();
    throw err;
  }
  return { region: new AttachedRegion(welcome, channel, mapping, mapping.view()), uffd };
}
