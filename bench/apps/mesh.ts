// Explicit message passing for the baseline versions: one TCP connection (node `net`)
// per pair of workers, frames of [length, tag, payload], and receives matched by
// sender and tag in the order sent (as MPI matches them). Collective steps (barrier,
// max-reduction) go through rank 0, as the Naplus versions' barriers go through a
// node. Nothing here knows what the bytes mean.
import net from 'node:net';

const HEADER = 8;
/** Tag of the collective steps; kernels use small tags of their own. */
const COLLECTIVE = 0xffffffff;

export interface MeshOptions {
  rank: number;
  size: number;
  /** The address to listen on (the worker's host address; 127.0.0.1 on loopback). */
  host: string;
  /** Announces this worker's "host:port" and resolves with every worker's, by rank. */
  exchange(address: string): Promise<string[]>;
}

interface Frame {
  tag: number;
  body: Uint8Array;
}

/** One peer's stream, cut into frames; each frame body is its own (aligned) buffer. */
class Inbox {
  private frames: Frame[] = [];
  private waiting: Array<{ tag: number; take(body: Uint8Array): void }> = [];
  private header = Buffer.alloc(HEADER);
  private have = 0;
  private body: Uint8Array | undefined;

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (!this.body) {
        const n = Math.min(HEADER - this.have, chunk.length - at);
        chunk.copy(this.header, this.have, at, at + n);
        this.have += n;
        at += n;
        if (this.have < HEADER) return;
        this.body = new Uint8Array(this.header.readUInt32LE(0));
        this.have = 0;
      }
      const n = Math.min(this.body.length - this.have, chunk.length - at);
      this.body.set(chunk.subarray(at, at + n), this.have);
      this.have += n;
      at += n;
      if (this.have === this.body.length) {
        this.deliver({ tag: this.header.readUInt32LE(4), body: this.body });
        this.body = undefined;
        this.have = 0;
      }
    }
  }

  private deliver(frame: Frame): void {
    const w = this.waiting.findIndex((x) => x.tag === frame.tag);
    if (w >= 0) this.waiting.splice(w, 1)[0]!.take(frame.body);
    else this.frames.push(frame);
  }

  /** The first frame with `tag` not yet taken. */
  next(tag: number): Promise<Uint8Array> {
    const f = this.frames.findIndex((x) => x.tag === tag);
    if (f >= 0) return Promise.resolve(this.frames.splice(f, 1)[0]!.body);
    return new Promise((take) => this.waiting.push({ tag, take }));
  }
}

export class Mesh {
  /** Payload bytes and frames this worker has sent (headers not counted). */
  bytesSent = 0;
  messagesSent = 0;
  private unflushed = 0;
  private flushWaiters: Array<() => void> = [];

  private constructor(
    readonly rank: number,
    readonly size: number,
    private readonly sockets: net.Socket[],
    private readonly inboxes: Inbox[],
    private readonly server: net.Server,
  ) {}

  /** Listens, learns every address, and connects to each peer (the higher rank dials). */
  static async join(opts: MeshOptions): Promise<Mesh> {
    const { rank, size } = opts;
    const sockets: net.Socket[] = [];
    const inboxes = Array.from({ length: size }, () => new Inbox());
    let connected = 0;
    let allConnected: () => void = () => {};
    const ready = new Promise<void>((resolve) => (allConnected = resolve));
    const adopt = (peer: number, s: net.Socket) => {
      s.setNoDelay(true);
      sockets[peer] = s;
      s.on('data', (d: Buffer) => inboxes[peer]!.push(d));
      if (++connected === size - 1) allConnected();
    };
    if (size === 1) allConnected();
    const server = net.createServer((s) => {
      // The dialler's first 4 bytes are its rank; everything after is frames.
      let hello = Buffer.alloc(0);
      const first = (d: Buffer) => {
        hello = Buffer.concat([hello, d]);
        if (hello.length < 4) return;
        s.off('data', first);
        const peer = hello.readUInt32LE(0);
        adopt(peer, s);
        if (hello.length > 4) inboxes[peer]!.push(hello.subarray(4));
      };
      s.on('data', first);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, opts.host, resolve);
    });
    const addresses = await opts.exchange(`${opts.host}:${(server.address() as net.AddressInfo).port}`);
    for (let peer = 0; peer < rank; peer++) {
      const [host, port] = addresses[peer]!.split(/:(?=\d+$)/);
      const s = net.connect(Number(port), host);
      await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
      const hello = Buffer.alloc(4);
      hello.writeUInt32LE(rank);
      s.write(hello);
      adopt(peer, s);
    }
    await ready;
    return new Mesh(rank, size, sockets, inboxes, server);
  }

  /**
   * Sends a copy of `data` (so the caller may reuse its buffer at once). What the
   * kernel does not take at once is written from this process's event loop: a worker
   * about to compute for a while calls flush() first, or its peers wait for that data
   * until it is done.
   */
  send(to: number, tag: number, data: ArrayBufferView): void {
    const frame = Buffer.allocUnsafe(HEADER + data.byteLength);
    frame.writeUInt32LE(data.byteLength, 0);
    frame.writeUInt32LE(tag, 4);
    frame.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), HEADER);
    this.unflushed++;
    this.sockets[to]!.write(frame, () => {
      if (--this.unflushed === 0) for (const done of this.flushWaiters.splice(0)) done();
    });
    this.bytesSent += data.byteLength;
    this.messagesSent++;
  }

  /** Resolves once every frame sent so far is in the kernel (MPI_Waitall on the sends). */
  flush(): Promise<void> {
    return this.unflushed === 0 ? Promise.resolve() : new Promise((done) => this.flushWaiters.push(done));
  }

  /** The next frame from `from` with `tag`, as float64s. */
  async recv(from: number, tag: number): Promise<Float64Array> {
    const f = await this.inboxes[from]!.next(tag);
    return new Float64Array(f.buffer, f.byteOffset, f.byteLength / 8);
  }

  /** The largest of every worker's `value`; also a barrier. */
  async maxAll(value: number): Promise<number> {
    if (this.size === 1) return value;
    if (this.rank !== 0) {
      this.send(0, COLLECTIVE, new Float64Array([value]));
      return (await this.recv(0, COLLECTIVE))[0]!;
    }
    let max = value;
    for (let peer = 1; peer < this.size; peer++) max = Math.max(max, (await this.recv(peer, COLLECTIVE))[0]!);
    for (let peer = 1; peer < this.size; peer++) this.send(peer, COLLECTIVE, new Float64Array([max]));
    return max;
  }

  async barrier(): Promise<void> {
    await this.maxAll(0);
  }

  /** Closes once every frame sent has been handed to the kernel. */
  async close(): Promise<void> {
    this.server.close();
    await Promise.all(this.sockets.filter(Boolean).map((s) => new Promise<void>((resolve) => s.end(resolve))));
  }
}
