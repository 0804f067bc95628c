// Page payloads: zero pages travel as markers, pages LZ4 does not shrink travel raw,
// the rest as one LZ4 block per message; stats count bytes before and after; every
// field of a received page section is checked before use; page data is snapshotted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compressSync } from 'lz4-napi';
import { CompressionPolicy } from '../src/transport/compression.js';
import { Encoding, PageCodec, type EncodedPages } from '../src/transport/pages.js';
import type { Message, PagePayload } from '../src/transport/index.js';
import { cleanup, makePage } from './fixtures/transport-protocol.js';
import { startCluster } from './fixtures/transport-nodes.js';

const PAGE = 4096;
const codec = new PageCodec(PAGE, 64 * PAGE);

/** A page section as it sits in a frame (after a 3-byte stand-in for the message head). */
function section(e: EncodedPages): Buffer {
  const b = Buffer.alloc(3 + e.bytes);
  codec.write(b, 3, e);
  return b;
}

function roundTrip(pages: PagePayload[], lz4: boolean): { e: EncodedPages; back: PagePayload[] } {
  const e = codec.encode(pages, lz4);
  return { e, back: codec.decode(section(e), 3) };
}

function assertProto(f: () => unknown, re: RegExp): void {
  assert.throws(f, (e: { code?: string; message: string }) => e.code === 'EPROTO' && re.test(e.message));
}

test('a zero page is a 7-byte marker and comes back as zeroes flagged zero', () => {
  const { e, back } = roundTrip([{ page: 2 ** 48 - 1, data: new Uint8Array(PAGE) }], true);
  assert.is(e.bytes, 5 + 7);
  assert.is(e.attempted, false);
  assert.is(back[0]!.page, 2 ** 48 - 1);
  assert.is(back[0]!.zero, true);
  assert.ok(back[0]!.data.length === PAGE && back[0]!.data.every((b) => b === 0));
});

test('a batch is one LZ4 block when that shrinks it, raw when it does not', () => {
  const text = [0, 1, 2].map((i) => ({ page: i, data: makePage('text', i) }));
  const packed = roundTrip(text, true);
  assert.is(packed.e.encoding, Encoding.Lz4);
  assert.is(packed.e.parts.length, 1);
  assert.ok(packed.e.dataBytes < 0.8 * 3 * PAGE);
  packed.back.forEach((p, i) => assert.ok(Buffer.from(p.data).equals(text[i]!.data)));
  const random = [{ page: 7, data: makePage('random', 7) }, { page: 8, data: new Uint8Array(PAGE) }];
  const raw = roundTrip(random, true);
  assert.is(raw.e.encoding, Encoding.Raw);
  assert.is(raw.e.attempted, true);
  assert.is(raw.e.bytes, 5 + 2 * 7 + PAGE);
  assert.ok(Buffer.from(raw.back[0]!.data).equals(random[0]!.data));
  assert.is(raw.back[1]!.zero, true);
});

test('a received page section is bounds-checked field by field', () => {
  const good = section(codec.encode([{ page: 1, data: makePage('text', 1) }, { page: 2, data: new Uint8Array(PAGE) }], true));
  const mutate = (f: (b: Buffer) => void) => {
    const b = Buffer.from(good);
    f(b);
    return () => codec.decode(b, 3);
  };
  assertProto(() => codec.decode(good.subarray(0, 6), 3), /page section cut short/);
  assertProto(mutate((b) => b.writeUInt32LE(0, 3)), /page section of 0 pages/);
  assertProto(mutate((b) => b.writeUInt32LE(65, 3)), /page section of 65 pages \(at most 64\)/);
  const zero = section(codec.encode([{ page: 1, data: new Uint8Array(PAGE) }], true));
  zero.writeUInt32LE(2, 3);
  assertProto(() => codec.decode(zero, 3), /page table of 2 pages cut short/);
  assertProto(mutate((b) => (b[3 + 5 + 6] = 2)), /page flags 2/);
  assertProto(mutate((b) => (b[3 + 4] = 9)), /page encoding 9/);
  assertProto(mutate((b) => (b[3 + 5 + 7 + 6] = 0)), /LZ4 page data whose size prefix is not the 8192 bytes/);
  assertProto(mutate((b) => b.fill(0xee, 3 + 5 + 14 + 4)), /LZ4 page data that does not decompress|LZ4 page data of \d+ bytes/);
  const raw = section(codec.encode([{ page: 1, data: makePage('random', 1) }], false));
  assertProto(() => codec.decode(raw.subarray(0, raw.length - 1), 3), /raw page data of 4095 bytes where 4096 were due/);
  // A size prefix that would make LZ4 allocate 2 GiB is refused before LZ4 runs.
  const huge = Buffer.concat([raw.subarray(0, 3 + 5 + 7), compressSync(Buffer.alloc(16))]);
  huge[3 + 4] = Encoding.Lz4;
  huge.writeUInt32LE(0x7fffffff, 3 + 5 + 7);
  assertProto(() => codec.decode(huge, 3), /size prefix/);
});

test("'auto' compression: only on a backlogged link, backing off from incompressible data", () => {
  const p = new CompressionPolicy('auto');
  assert.is(p.shouldTry(false), false);
  assert.is(p.shouldTry(true), true);
  p.record(false, 4096, 0.015);
  assert.equal([p.shouldTry(true), p.shouldTry(true)], [false, true]);
  p.record(false, 4096, 0.015);
  assert.equal([p.shouldTry(true), p.shouldTry(true), p.shouldTry(true)], [false, false, true]);
  p.record(true, 4096, 0.015);
  assert.is(p.shouldTry(true), true);
  assert.is(new CompressionPolicy('always').shouldTry(false), true);
  assert.is(new CompressionPolicy('never').shouldTry(true), false);
});

test("'auto' compression: only where the link drains more slowly than LZ4 compresses", () => {
  // LZ4 at ~270 MB/s (4 KiB in 15 µs).
  const slowLink = new CompressionPolicy('auto');
  slowLink.record(true, 4096, 0.015);
  slowLink.recordDrain(125_000, 1); // 125 MB/s: a 1 Gbit/s link
  assert.is(slowLink.shouldTry(true), true, 'the link is the bottleneck: compress');
  const fastLink = new CompressionPolicy('auto');
  fastLink.record(true, 4096, 0.015);
  fastLink.recordDrain(2_000_000, 1); // 2 GB/s: loopback
  assert.is(fastLink.shouldTry(true), false, 'LZ4 would be the bottleneck: send raw');
  // The averages follow the link: it slows down (shaped, congested), LZ4 comes back.
  for (let i = 0; i < 30; i++) fastLink.recordDrain(100_000, 1);
  assert.is(fastLink.shouldTry(true), true);
  assert.is(fastLink.shouldTry(false), false, 'never while the link keeps up');
});

test('stats count pages by encoding and bytes before and after; data is snapshotted at send', async () => {
  const [a, b] = await startCluster(2, (o) => ({ ...o, compress: o.nodeId === 1 ? 'always' : 'never' }));
  await a!.t.waitForPeers([2], 10_000);
  const got: Message[] = [];
  b!.t.onMessage((_p, msg, reply) => (reply ? reply({ type: 2, pages: msg.pages }) : got.push(msg)));
  const text = makePage('text', 4);
  const scratch = Buffer.from(text);
  a!.t.send(2, { type: 1, pages: [{ page: 1, data: scratch }, { page: 2, data: new Uint8Array(PAGE) }] });
  scratch.fill(0x55); // after send() returned: must not change what travels
  a!.t.send(2, { type: 1, pages: [{ page: 3, data: makePage('random', 3) }] });
  // Node 2 compresses nothing: the echo of a text page comes back raw.
  const echo = await a!.t.request(2, { type: 1, pages: [{ page: 4, data: text }] });
  assert.ok(Buffer.from(echo.pages![0]!.data).equals(text));
  assert.ok(Buffer.from(got[0]!.pages![0]!.data).equals(text), 'the snapshot taken at send() travelled');
  assert.is(got[0]!.pages![1]!.zero, true);
  const sa = a!.t.stats()[2]!;
  assert.equal([sa.pagesOut, sa.zeroPages, sa.rawPages, sa.lz4Pages], [4, 1, 1, 2]);
  assert.is(sa.pageBytesRaw, 4 * PAGE);
  assert.ok(sa.pageBytesWire < sa.pageBytesRaw);
  const sb = b!.t.stats()[1]!;
  assert.equal([sb.pagesIn, sb.pagesOut, sb.rawPages, sb.lz4Pages], [4, 1, 1, 0]);
  assert.is(sb.pageBytesWire, 5 + 7 + PAGE);
  assert.is(sb.bytesIn, sa.bytesOut);
});

test('bad arguments are refused with the field named, before anything is sent', async () => {
  const [a] = await startCluster(2, (o) => ({ ...o, maxFrameBytes: 16 * PAGE }));
  await a!.t.waitForPeers([2], 10_000);
  const before = a!.t.stats()[2]!;
  const code = (f: () => unknown, c: string, re: RegExp) => assert.throws(f, (e: { code?: string; message: string }) => e.code === c && re.test(e.message));
  code(() => a!.t.send(2, { type: 1, pages: [{ page: 0, data: new Uint8Array(100) }] }), 'EINVAL', /pages\[0\]\.data/);
  code(() => a!.t.send(2, { type: 1, pages: [{ page: -1, data: new Uint8Array(PAGE) }] }), 'EINVAL', /pages\[0\]\.page/);
  code(() => a!.t.send(2, { type: 70000 }), 'EINVAL', /msg\.type/);
  code(() => a!.t.send(2, { type: 1, body: () => 1 }), 'EINVAL', /msg\.body/);
  code(() => a!.t.send(2, { type: 1, pages: Array.from({ length: 17 }, (_, i) => ({ page: i, data: new Uint8Array(PAGE) })) }), 'E2BIG', /17 pages to node 2/);
  code(() => a!.t.send(2, { type: 1, body: Buffer.alloc(16 * PAGE) }), 'E2BIG', /over the link's cap of 65536 bytes/);
  code(() => a!.t.send(7, { type: 1 }), 'EINVAL', /peer/);
  // Synchronously after the calls: no frame was taken into the session, none went out.
  const after = a!.t.stats()[2]!;
  assert.equal([after.framesOut, after.unackedBytes, after.queuedBytes], [before.framesOut, 0, 0]);
});

test.after.each(cleanup);

test.run();
