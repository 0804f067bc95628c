// Replies that come back in another order than their requests went out still reach
// their own requesters; one-way messages and requests keep their order (FIFO per link);
// a request nobody answers times out with an error naming the peer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { Transport, type Message } from '../src/transport/index.js';
import { cleanup, HOLD, IGNORED, makePage, permutation, prng, startPeer, track } from './fixtures/transport-protocol.js';
import { closeAll, startCluster } from './fixtures/transport-nodes.js';

const seed = Number(process.env.NAPLUS_TEST_SEED ?? Date.now() % 1_000_000);
console.log(`transport-out-of-order: seed ${seed} (replay with NAPLUS_TEST_SEED=${seed})`);

test('replies in a shuffled order each resolve their own request', async () => {
  const secret = randomBytes(32);
  const peer = await startPeer({ cluster: 'ooo', nodeId: 2, listen: { host: '127.0.0.1', port: 0 }, peers: [{ id: 1, host: '127.0.0.1', port: 1 }], secretHex: secret.toString('hex') });
  const t = track(await Transport.start({ cluster: 'ooo', nodeId: 1, listen: { host: '127.0.0.1', port: 0 }, peers: [{ id: 2, host: '127.0.0.1', port: peer.port }], secret }));
  await t.waitForPeers([2], 10_000);
  const batch = 500;
  const order: number[] = [];
  const replies = await Promise.all(
    Array.from({ length: batch }, (_, token) =>
      t.request(2, { type: HOLD, body: { batch, seed, token } }).then((r) => {
        order.push(token);
        return r;
      }),
    ),
  );
  replies.forEach((r, token) => assert.equal(r.body, { batch, seed, token }));
  // The peer answered in permutation order, and replies resolved in that order.
  assert.equal(order, permutation(batch, seed));
  await t.close();
  peer.child.kill();
});

test('a request nobody answers rejects with ETIMEDOUT naming the peer; the link stays up', async () => {
  const secret = randomBytes(32);
  const peer = await startPeer({ cluster: 'ooo', nodeId: 2, listen: { host: '127.0.0.1', port: 0 }, peers: [{ id: 1, host: '127.0.0.1', port: 1 }], secretHex: secret.toString('hex') });
  const t = track(await Transport.start({ cluster: 'ooo', nodeId: 1, listen: { host: '127.0.0.1', port: 0 }, peers: [{ id: 2, host: '127.0.0.1', port: peer.port }], secret }));
  await t.waitForPeers([2], 10_000);
  const err = await t.request(2, { type: IGNORED }, 50).catch((e: unknown) => e);
  assert.is((err as { code: string }).code, 'ETIMEDOUT');
  assert.match((err as Error).message, /Request of type 6 to node 2 got no reply within 50 ms/);
  assert.ok(t.isUp(2));
  assert.is(t.stats()[2]!.pending, 0);
  await t.close();
  peer.child.kill();
});

test('messages and requests from several senders arrive in the order each sent them', async () => {
  const nodes = await startCluster(3);
  const [a, b, c] = nodes;
  await a!.t.waitForPeers([2, 3], 10_000);
  await b!.t.waitForPeers([3], 10_000);
  const next = new Map<number, number>();
  let misordered = 0;
  c!.t.onMessage((peer, msg, reply) => {
    const seq = (msg.body as Buffer).readUInt32LE(0);
    if (seq !== (next.get(peer) ?? 0)) misordered++;
    next.set(peer, seq + 1);
    reply?.({ type: msg.type });
  });
  const page = makePage('text', 3);
  const rand = prng(seed);
  const work: Array<Promise<Message>> = [];
  for (const sender of [a!, b!]) {
    for (let seq = 0; seq < 3000; seq++) {
      const body = Buffer.alloc(4);
      body.writeUInt32LE(seq);
      // Frames of very different sizes, so that they straddle socket reads.
      const msg: Message = { type: 1, body, pages: Array.from({ length: Math.floor(rand() * 4) }, (_, k) => ({ page: k, data: page })) };
      // Every third frame, and the last, is a request: once all are answered, all have arrived.
      if (seq % 3 === 0 || seq === 2999) work.push(sender.t.request(3, msg));
      else sender.t.send(3, msg);
    }
  }
  await Promise.all(work);
  assert.is(next.get(1), 3000);
  assert.is(next.get(2), 3000);
  assert.is(misordered, 0);
  await closeAll(nodes);
});

test.after.each(cleanup);

test.run();
