// A hostile local client of a node, for tests: raw connections that send what they like
// (with any descriptors), a hand-made attach that can lie about its mapping, and the
// node's descriptor count. Only the mechanisms of src/uffd are used, so these tests run
// against any version of the node.
import fs from 'node:fs';
import { Memfd, UnixChannel, Userfaultfd, type Mapping } from '../../src/uffd/index.js';
import { native } from '../../src/uffd/native.js';

export interface Exchange {
  replies: any[];
  /** Descriptors that came with the replies (the welcome's memfd): the caller's to close. */
  fds: number[];
  closed: boolean;
}

/** Descriptors the process holds now. */
export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Descriptors the process holds, but for its TCP sockets: those are its links to other
 * nodes, which come and go (a redial, a peer restarting) on their own schedule.
 */
export function localFdCount(pid: number): number {
  const tcp = new Set<string>();
  for (const table of ['tcp', 'tcp6']) {
    for (const line of fs.readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode) tcp.add(inode);
    }
  }
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let link = '';
    try {
      link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    if (!tcp.has(/^socket:\[(\d+)\]$/.exec(link)?.[1] ?? '')) n++;
  }
  return n;
}

/**
 * Descriptors the process holds once it is quiet: the same count three times, 150 ms
 * apart. A connection a client just closed is still counted until the node reads its
 * end, which on a loaded machine can take a while: so a baseline may still count one,
 * and "back to the baseline" is checked as "not above it".
 */
export async function quietFdCount(pid: number, count: (pid: number) => number = fdCount): Promise<number> {
  let same = 0;
  for (let last = -1; ; ) {
    const now = count(pid);
    same = now === last ? same + 1 : 0;
    if (same === 2) return now;
    last = now;
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Resident set of the process, in bytes. */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** Waits until `ready()` holds; throws `what` after `timeoutMs` (a liveness bound, not a timing claim). */
export async function waitFor(ready: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends bytes and descriptors as they are, past UnixChannel.send's checks: what any client can do. */
export function sendRaw(channel: UnixChannel, data: Buffer, fds: number[] = []): void {
  native.sendMsg(channel.fd, data, fds);
}

/** sendRaw, except that a node which has closed the connection already (EPIPE, ECONNRESET) is no error. */
function sendUnlessClosed(channel: UnixChannel, data: Buffer, fds: number[] = []): void {
  try {
    sendRaw(channel, data, fds);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'EPIPE' && code !== 'ECONNRESET') throw err;
  }
}

export const json = (o: unknown) => Buffer.from(JSON.stringify(o));

/** Sends `messages` on a new connection; resolves with the answers once the node closes it, or after `waitFor` answers. */
export async function exchange(socketPath: string, messages: Array<{ data: Buffer; fds?: number[] }>, options: { answers?: number } = {}): Promise<Exchange> {
  const ch = await connect(socketPath);
  const out: Exchange = { replies: [], fds: [], closed: false };
  return new Promise((resolve) => {
    ch.start({
      message: (data, fds) => {
        out.replies.push(JSON.parse(data.toString()));
        out.fds.push(...fds);
        if (options.answers !== undefined && out.replies.length >= options.answers) {
          ch.close();
          resolve(out);
        }
      },
      close: () => {
        out.closed = true;
        resolve(out);
      },
    });
    for (const m of messages) sendUnlessClosed(ch, m.data, m.fds ?? []);
  });
}

/** Connects (waiting while the node's backlog is full, EAGAIN), sends, and closes at once, reading nothing. */
export async function hitAndRun(socketPath: string, data: Buffer, fds: number[] = []): Promise<void> {
  const ch = await connect(socketPath);
  try {
    sendUnlessClosed(ch, data, fds); // over its limits, the node may close a connection at once
  } finally {
    ch.close();
  }
}

/** Connects, waiting while the node's backlog is full (EAGAIN: it has not accepted the ones before yet). */
export async function connect(socketPath: string): Promise<UnixChannel> {
  for (;;) {
    try {
      return UnixChannel.connect(socketPath);
    } catch (err) {
      if ((err as { code?: string }).code !== 'EAGAIN') throw err;
      await new Promise((r) => setImmediate(r));
    }
  }
}

export interface HandAttach {
  /** The node's last answer: 'ready', 'refused' (with its message), or undefined if it just closed. */
  answer: any;
  channel: UnixChannel;
  mapping: Mapping;
  close(): void;
}

/**
 * Attaches by hand: hello, take the memfd, map it, then hand over a userfaultfd that is
 * registered over `register` (the region's mapping, another memfd's mapping of the same
 * size, or nothing) and claim the region starts at `base` ('region' or 'other').
 */
export async function handAttach(
  socketPath: string,
  region: string,
  options: { register?: 'region' | 'other' | 'none'; base?: 'region' | 'other'; uffd?: Userfaultfd } = {},
): Promise<HandAttach> {
  const ch = UnixChannel.connect(socketPath);
  const answers: Array<{ msg: any; fds: number[] }> = [];
  let wake: (() => void) | undefined;
  ch.start({
    message: (data, fds) => {
      answers.push({ msg: JSON.parse(data.toString()), fds });
      wake?.();
    },
    close: () => {
      answers.push({ msg: undefined, fds: [] });
      wake?.();
    },
  });
  const next = async () => {
    while (answers.length === 0) await new Promise<void>((r) => (wake = r));
    return answers.shift()!;
  };
  sendRaw(ch, json({ op: 'hello', version: 2, region, pid: process.pid }));
  const welcome = await next();
  if (welcome.msg?.op !== 'welcome') throw new Error(`no welcome: ${JSON.stringify(welcome.msg)}`);
  const mapping = Memfd.adopt(welcome.fds[0]!).map();
  fs.closeSync(welcome.fds[0]!);
  const other = Memfd.create('other', mapping.length);
  const otherMapping = other.map();
  other.close();
  const uffd = options.uffd ?? Userfaultfd.open();
  const register = options.register ?? 'region';
  if (register !== 'none') uffd.register((register === 'region' ? mapping : otherMapping).address, mapping.length);
  const base = (options.base ?? 'region') === 'region' ? mapping.address : otherMapping.address;
  sendRaw(ch, json({ op: 'uffd', base, features: uffd.features, via: uffd.via }), [uffd.fd]);
  uffd.close();
  const answer = (await next()).msg;
  return {
    answer,
    channel: ch,
    mapping,
    close: () => {
      if (ch.isOpen) ch.close();
      mapping.unmap();
      otherMapping.unmap();
    },
  };
}
