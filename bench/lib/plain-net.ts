// Plain node `net` sockets to a transport-peer child (its `plain` port): the baselines
// that Naplus's links and faults are measured against.
import net from 'node:net';
import { PAGE_SIZE } from '../../test/fixtures/transport-protocol.js';

/** Bytes of the transport's page request on the wire: 4 length + 12 head + 5 body. */
const REQUEST_BYTES = 21;

function ns(): number {
  return Number(process.hrtime.bigint());
}

async function plainSocket(port: number, header: [number, number]): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  await new Promise((resolve) => s.once('connect', resolve));
  const h = Buffer.alloc(8);
  h.writeUInt32LE(header[0], 0);
  h.writeUInt32LE(header[1], 4);
  s.write(h);
  return s;
}

/** A plain socket to the child that answers each REQUEST_BYTES with a raw page. */
export async function plainRequester(port: number): Promise<{ request(): Promise<void>; close(): void }> {
  const s = await plainSocket(port, [REQUEST_BYTES, PAGE_SIZE]);
  const req = Buffer.alloc(REQUEST_BYTES, 1);
  let have = 0;
  let done: () => void = () => {};
  s.on('data', (d: Buffer) => {
    have += d.length;
    if (have >= PAGE_SIZE) {
      have -= PAGE_SIZE;
      done();
    }
  });
  return {
    request: () =>
      new Promise<void>((resolve) => {
        done = resolve;
        s.write(req);
      }),
    close: () => s.destroy(),
  };
}

/**
 * Pages per second streamed one way over a plain socket, `perWrite` pages per write,
 * until the receiver acknowledges the last byte.
 */
export async function plainStream(port: number, pages: Buffer[], total: number, perWrite: number): Promise<number> {
  const chunks = Array.from({ length: Math.max(1, Math.floor(pages.length / perWrite)) }, (_, i) => Buffer.concat(pages.slice(i * perWrite, (i + 1) * perWrite)));
  const s = await plainSocket(port, [0, total * PAGE_SIZE]);
  const acked = new Promise((resolve) => s.once('data', resolve));
  const t0 = ns();
  for (let sent = 0, i = 0; sent < total; sent += perWrite, i++) {
    if (!s.write(chunks[i % chunks.length]!)) await new Promise((resolve) => s.once('drain', resolve));
  }
  await acked;
  const seconds = (ns() - t0) / 1e9;
  s.destroy();
  return total / seconds;
}

