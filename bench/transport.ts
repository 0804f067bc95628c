// Transport: what the Naplus link costs against plain node `net` sockets carrying the
// same bytes between the same two processes (this one, and a transport-peer child).
// - RTT: a request for one 4 KiB page, answered by the child, against a plain socket
//   that sends a request of the same size and gets the page's 4096 raw bytes back.
// - Throughput: a one-way stream of pages, 16 per message (a readahead batch), against
//   a plain socket streaming the same raw bytes in 64 KiB writes; both respect
//   backpressure and end when the receiver acknowledges the last byte.
// - Wire bytes per page byte, for zero, text-like and random pages.
// Round trips are timed in turns (one ours, one baseline), streams in alternate runs,
// so that drift in machine load hits both.
import { randomBytes } from 'node:crypto';
import { Transport, type CompressMode, type PagePayload } from '../src/transport/index.js';
import { COUNT, encodePageRequest, makePage, PAGE, PAGE_SIZE, SINK, startPeer, type PageKind, type RunningPeer } from '../test/fixtures/transport-protocol.js';
import { meets, median, type Bench, type Row } from './lib/report.js';
import { plainRequester, plainStream } from './lib/plain-net.js';

const CLUSTER = 'bench';
/** The children's node id; this process is nodes 1-3, one per compression mode. */
const PEER = 9;
const MODES: CompressMode[] = ['auto', 'never', 'always'];
const PAGES_PER_MESSAGE = 16;
const POOL = 256;

function ns(): number {
  return Number(process.hrtime.bigint());
}

/**
 * Round trips in ns, the transport's and the baseline's taken in turns: this machine's
 * wake-up latency swings several-fold with load (a VM), and only pairs taken side by
 * side see the same machine.
 */
async function rtts(t: Transport, port: number, kind: PageKind, n: number): Promise<{ ours: number[]; base: number[] }> {
  const plain = await plainRequester(port);
  const ours: number[] = [];
  const base: number[] = [];
  for (let i = 0; i < n; i++) {
    const body = encodePageRequest(i % POOL, kind);
    let t0 = ns();
    const r = await t.request(PEER, { type: PAGE, body });
    ours.push(ns() - t0);
    if (r.pages?.[0]?.data.length !== PAGE_SIZE) throw new Error('transport bench: a page reply without its page');
    t0 = ns();
    await plain.request();
    base.push(ns() - t0);
  }
  plain.close();
  return { ours, base };
}

function pool(kind: PageKind): Buffer[] {
  return Array.from({ length: POOL }, (_, i) => makePage(kind, i));
}

/** Pages per second through the transport, and its stats' wire bytes per page byte. */
async function transportStream(t: Transport, pages: Buffer[], total: number): Promise<{ rate: number; wire: number }> {
  const before = t.stats()[PEER]!;
  const counted = async () => ((await t.request(PEER, { type: COUNT })).body as { pages: number }).pages;
  const already = await counted();
  const t0 = ns();
  for (let sent = 0; sent < total; sent += PAGES_PER_MESSAGE) {
    const batch: PagePayload[] = [];
    for (let i = 0; i < PAGES_PER_MESSAGE; i++) batch.push({ page: sent + i, data: pages[(sent + i) % POOL]! });
    t.send(PEER, { type: SINK, pages: batch });
    await t.whenWritable(PEER);
  }
  const arrived = (await counted()) - already;
  const seconds = (ns() - t0) / 1e9;
  const after = t.stats()[PEER]!;
  if (arrived !== total) throw new Error(`transport bench: the peer counted ${arrived} pages of ${total}`);
  return { rate: total / seconds, wire: (after.pageBytesWire - before.pageBytesWire) / (after.pageBytesRaw - before.pageBytesRaw) };
}

interface Client {
  t: Transport;
  peer: RunningPeer;
}

export const bench: Bench = async ({ quick, log }) => {
  const secretHex = randomBytes(32).toString('hex');
  // Replies are compressed (or not) by the child: one child per mode that RTT compares.
  const spawnPeer = (compress: CompressMode) =>
    startPeer({
      cluster: CLUSTER,
      nodeId: PEER,
      listen: { host: '127.0.0.1', port: 0 },
      // Lower ids dial, so these ports are only named in log lines.
      peers: MODES.map((_, i) => ({ id: i + 1, host: '127.0.0.1', port: 0 })),
      secretHex,
      compress,
      plain: true,
    });
  const peers = { auto: await spawnPeer('auto'), always: await spawnPeer('always') };
  // One client node per mode (one id has one link): node 1 'auto', 2 'never', 3 'always'.
  const clients: Client[] = [];
  const connect = async (compress: CompressMode, peer: RunningPeer): Promise<Client> => {
    const t = await Transport.start({
      cluster: CLUSTER,
      nodeId: MODES.indexOf(compress) + 1,
      listen: { host: '127.0.0.1', port: 0 },
      peers: [{ id: PEER, host: '127.0.0.1', port: peer.port }],
      secret: Buffer.from(secretHex, 'hex'),
      compress,
    });
    await t.waitForPeers([PEER], 10_000);
    clients.push({ t, peer });
    return { t, peer };
  };
  const trials = quick ? 1 : 3;
  const rttN = quick ? 2000 : 20_000;
  const streamPages = quick ? 16_384 : 131_072;
  const rows: Row[] = [];
  const figures: Record<string, number> = {};
  try {
    const auto = await connect('auto', peers.auto);
    const never = await connect('never', peers.auto);
    const always = await connect('always', peers.always);
    const rttCases: Array<{ label: string; key: string; c: Client; kind: PageKind }> = [
      { label: 'text page', key: 'rtt', c: auto, kind: 'text' },
      { label: 'zero page', key: 'rtt_zero', c: auto, kind: 'zero' },
      { label: 'random page', key: 'rtt_random', c: auto, kind: 'random' },
      { label: "text page, LZ4 'always'", key: 'rtt_lz4', c: always, kind: 'text' },
    ];
    for (const { label, key, c, kind } of rttCases) {
      log(`transport: RTT of a ${label}`);
      // Warm both paths (JIT, socket buffers) before anything is timed.
      await rtts(c.t, c.peer.plainPort!, kind, 500);
      const { ours, base } = await rtts(c.t, c.peer.plainPort!, kind, rttN);
      const us = median(ours) / 1000;
      const baseUs = median(base) / 1000;
      rows.push({ test: `RTT, 4 KiB ${label}`, transport: `${us.toFixed(1)} µs`, 'plain net': `${baseUs.toFixed(1)} µs`, ratio: us / baseUs });
      figures[`${key}_ratio`] = us / baseUs;
      figures[`${key}_us`] = us;
      figures[`${key}_plain_us`] = baseUs;
    }
    const streams: Array<{ label: string; key: string; c: Client; kind: PageKind; wire?: string }> = [
      { label: "text pages, 'auto'", key: 'throughput', c: auto, kind: 'text' },
      { label: "text pages, 'never'", key: 'throughput_raw', c: never, kind: 'text' },
      { label: "text pages, 'always'", key: 'throughput_lz4', c: always, kind: 'text', wire: 'wire_text_ratio' },
      { label: "random pages, 'auto'", key: 'throughput_random', c: auto, kind: 'random' },
      { label: "random pages, 'always'", key: 'throughput_random_lz4', c: always, kind: 'random', wire: 'wire_random_ratio' },
      { label: 'zero pages', key: 'throughput_zero', c: auto, kind: 'zero', wire: 'wire_zero_ratio' },
    ];
    for (const { label, key, c, kind, wire } of streams) {
      const pages = pool(kind);
      await transportStream(c.t, pages, streamPages / 4);
      await plainStream(c.peer.plainPort!, pages, streamPages / 4, PAGES_PER_MESSAGE);
      const ours: number[] = [];
      const base: number[] = [];
      let ratio = 0;
      for (let i = 0; i < trials; i++) {
        log(`transport: stream of ${label}, trial ${i + 1}/${trials}`);
        const r = await transportStream(c.t, pages, streamPages);
        ours.push(r.rate);
        ratio = r.wire;
        base.push(await plainStream(c.peer.plainPort!, pages, streamPages, PAGES_PER_MESSAGE));
      }
      const rate = median(ours);
      const baseRate = median(base);
      rows.push({
        test: `stream, ${label}`,
        transport: `${(rate / 1000).toFixed(0)}k pages/s`,
        'plain net': `${(baseRate / 1000).toFixed(0)}k pages/s`,
        ratio: rate / baseRate,
        'wire/raw': ratio,
      });
      figures[`${key}_ratio`] = rate / baseRate;
      figures[`${key}_pages_per_s`] = rate;
      if (wire) figures[wire] = ratio;
    }
  } catch (err) {
    for (const p of Object.values(peers)) log(`transport peer's log:\n${p.logs}`);
    throw err;
  } finally {
    await Promise.all(clients.map((c) => c.t.close()));
    for (const p of Object.values(peers)) p.child.kill();
  }
  return {
    title: 'transport: Naplus link vs plain net socket (two processes, loopback)',
    note:
      `RTT: median of ${rttN} sequential 4 KiB page requests, taken in turns with the baseline's (target ratio <= 1.3). ` +
      `Stream: ${streamPages} pages, ${PAGES_PER_MESSAGE} per message, median of ${trials} runs (target ratio >= 0.8). ` +
      `wire/raw: page bytes on the wire (table + data) per page byte. Text pages: words and numbers. ` +
      `compress 'auto' (the default) uses LZ4 only while the link is backlogged and drains more slowly than LZ4 compresses (on loopback: never, so 'auto' and 'never' run the same path); 'always' tries it on every batch.`,
    rows,
    figures,
    discussion: [
      `A 4 KiB page round trip through the Naplus link costs ${figures.rtt_us!.toFixed(1)} µs against ${figures.rtt_plain_us!.toFixed(1)} µs on a plain socket, ` +
        `ratio ${figures.rtt_ratio!.toFixed(2)}, ${meets(figures.rtt_ratio!, 1.3)}; streaming text pages with the default 'auto' runs at ${figures.throughput_ratio!.toFixed(2)} of a plain socket, ${meets(figures.throughput_ratio!, 0.8, 'at least')}.`,
      `LZ4 ('always') shrinks text pages to ${figures.wire_text_ratio!.toFixed(2)} of their size on the wire but streams ${(figures.throughput_lz4_pages_per_s! / 1000).toFixed(0)}k pages/s ` +
        `against ${(figures.throughput_raw_pages_per_s! / 1000).toFixed(0)}k without ('never'): on loopback compressing costs more time than the bytes it saves, ` +
        'which is why the default compresses only while a link is backlogged; it can pay only on links slower than LZ4 itself (see apps over rate-shaped links).',
    ],
  };
};
