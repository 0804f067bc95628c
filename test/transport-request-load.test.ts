// Request/response under load: thousands of requests in flight at once to a peer in
// another process, each with its own body and pages, each answered with exactly its
// own reply; with LZ4 forced on both ends and with the default policy.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { Transport, type CompressMode, type Message } from '../src/transport/index.js';
import { cleanup, COUNT, ECHO, makePage, PAGE_KINDS, prng, SINK, startPeer, track } from './fixtures/transport-protocol.js';

const seed = Number(process.env.NAPLUS_TEST_SEED ?? Date.now() % 1_000_000);
console.log(`transport-request-load: seed ${seed} (replay with NAPLUS_TEST_SEED=${seed})`);

async function pair(compress: CompressMode) {
  const secret = randomBytes(32);
  const peer = await startPeer({
    cluster: 'load',
    nodeId: 2,
    listen: { host: '127.0.0.1', port: 0 },
    peers: [{ id: 1, host: '127.0.0.1', port: 1 }],
    secretHex: secret.toString('hex'),
    compress,
  });
  const t = track(await Transport.start({ cluster: 'load', nodeId: 1, listen: { host: '127.0.0.1', port: 0 }, peers: [{ id: 2, host: '127.0.0.1', port: peer.port }], secret, compress }));
  await t.waitForPeers([2], 10_000);
  return { t, peer };
}

/** A request with a random mix of body kinds and 0-8 pages of all kinds. */
function randomRequest(rand: () => number, i: number): Message {
  const bodyKind = Math.floor(rand() * 3);
  const body = bodyKind === 0 ? undefined : bodyKind === 1 ? Buffer.from(`req ${i} ${'x'.repeat(Math.floor(rand() * 100))}`) : { i, s: 'é'.repeat(Math.floor(rand() * 20)) };
  const pages = Array.from({ length: Math.floor(rand() * 9) }, (_, k) => ({
    page: i * 16 + k,
    data: makePage(PAGE_KINDS[Math.floor(rand() * 3)]!, i * 16 + k),
  }));
  return { type: ECHO, body, pages };
}

function same(reply: Message, sent: Message, i: number): void {
  if (sent.body instanceof Uint8Array) assert.ok(Buffer.from(sent.body).equals(reply.body as Buffer), `body of request ${i}`);
  else assert.equal(reply.body, sent.body, `body of request ${i}`);
  assert.is(reply.pages?.length ?? 0, sent.pages!.length, `page count of request ${i}`);
  reply.pages?.forEach((p, k) => {
    assert.is(p.page, sent.pages![k]!.page);
    assert.ok(Buffer.from(p.data).equals(sent.pages![k]!.data), `page ${p.page} of request ${i}`);
  });
}

for (const compress of ['auto', 'always'] as const) {
  test(`5000 requests in flight with compress '${compress}': each gets its own reply`, async () => {
    // Neither making the workload nor sending it may be one long synchronous task: on a
    // loaded machine either takes seconds, during which this process neither sends nor
    // reads, and a peer rightly gives up on a process that does not run for peerTimeoutMs.
    // So the workload is made before the link exists, and sent in slices, one per turn of
    // the event loop (all 5000 are in flight at once all the same).
    const rand = prng(seed);
    const sent = Array.from({ length: 5000 }, (_, i) => randomRequest(rand, i));
    const { t, peer } = await pair(compress);
    const pending: Array<Promise<Message>> = [];
    for (let i = 0; i < sent.length; i++) {
      pending.push(t.request(2, sent[i]!));
      if (i % 250 === 249) await new Promise((resolve) => setImmediate(resolve));
    }
    const replies = await Promise.all(pending);
    replies.forEach((r, i) => same(r, sent[i]!, i));
    const s = t.stats()[2]!;
    assert.is(s.pending, 0);
    assert.ok(s.zeroPages > 0 && s.pagesOut === s.zeroPages + s.rawPages + s.lz4Pages);
    if (compress === 'always') assert.ok(s.lz4Pages > 0 && s.pageBytesWire < s.pageBytesRaw, 'LZ4 shrank the text pages');
    await t.close();
    peer.child.kill();
  });
}

test('a sender that awaits whenWritable() streams 64 MiB with little queued in memory', async () => {
  const { t, peer } = await pair('auto');
  const page = makePage('random', 1);
  let most = 0;
  for (let i = 0; i < 1024; i++) {
    t.send(2, { type: SINK, pages: Array.from({ length: 16 }, (_, k) => ({ page: i * 16 + k, data: page })) });
    await t.whenWritable(2);
    most = Math.max(most, t.stats()[2]!.queuedBytes);
  }
  assert.ok(most < 64 * 1024, `at most ${most} bytes queued after whenWritable()`);
  // FIFO: every message reached the peer before this request.
  const r = await t.request(2, { type: COUNT });
  assert.equal(r.body, { pages: 16 * 1024, messages: 1024 });
  await t.close();
  peer.child.kill();
});

test.after.each(cleanup);

test.run();
