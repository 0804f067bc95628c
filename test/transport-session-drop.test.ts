// Sessions ended on purpose or by overflow. dropSession() on either end: that end sees
// 'peer-down' (byPeer false) before the call returns, the other end is told why and sees
// 'peer-down' (byPeer true), the requests pending on both ends fail with EPEERLOST, and
// the next connection starts a new session, never the old one again. A replay buffer that
// overflows (a peer that takes nothing for too long) loses the session with a reason that
// says so; the 'peer-down' comes on the next tick, never inside the send() that overflowed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import type { NaplusError } from '../src/errors.js';
import { Transport, type Message } from '../src/transport/index.js';
import { cleanup, ECHO, makePage, SINK, startPeer, track, type PeerEvent } from './fixtures/transport-protocol.js';
import { closeAll, connectionSocket, startCluster, type TestNode } from './fixtures/transport-nodes.js';

type Seen = ['down', boolean, string] | ['up'];

function watch(n: TestNode): Seen[] {
  const seen: Seen[] = [];
  n.t.on('peer-down', (_p, reason, byPeer) => seen.push(['down', byPeer, reason.message]));
  n.t.on('peer-up', () => seen.push(['up']));
  return seen;
}

function settle(p: Promise<Message>): Promise<NaplusError | Message> {
  return p.catch((e: NaplusError) => e);
}

const until = async (what: () => boolean) => {
  while (!what()) await new Promise((resolve) => setTimeout(resolve, 5));
};

for (const dropper of [1, 2]) {
  test(`dropSession by node ${dropper} (${dropper === 1 ? 'the dialing end' : 'the listening end'}): both ends lose the session, then start a new one`, async () => {
    const nodes = await startCluster(2);
    const [a, b] = nodes as [TestNode, TestNode];
    await a.t.waitForPeers([2], 10_000);
    await b.t.waitForPeers([1], 10_000);
    const [mine, theirs] = dropper === 1 ? [a, b] : [b, a];
    const other = 3 - dropper;
    // Nobody answers anything: requests stay pending on both ends.
    for (const n of nodes) n.t.onMessage(() => {});
    const seenHere = watch(mine);
    const seenThere = watch(theirs);
    const heldHere = settle(mine.t.request(other, { type: 1 }));
    const heldThere = settle(theirs.t.request(dropper, { type: 1 }));
    assert.ok(mine.t.dropSession(other, 'a transaction on page 7 got no answer'));
    // Before dropSession returned: this end's peer-down, and no session.
    assert.equal(seenHere, [['down', false, `Lost node ${other}: dropped on request: a transaction on page 7 got no answer`]]);
    assert.not.ok(mine.t.isUp(other));
    assert.is(mine.t.dropSession(other, 'again'), false, 'no session left to drop');
    const here = (await heldHere) as NaplusError;
    assert.is(here.code, 'EPEERLOST');
    assert.match(here.message, new RegExp(`Request of type 1 to node ${other} failed: Lost node ${other}: dropped on request`));
    // The other end is told why, and its pending request fails too.
    const there = (await heldThere) as NaplusError;
    assert.is(there.code, 'EPEERLOST');
    assert.match(there.message, new RegExp(`Lost node ${dropper}: node ${dropper} gave the session up: dropped on request: a transaction on page 7 got no answer`));
    await until(() => seenHere.length === 2 && seenThere.length === 2);
    assert.equal(seenHere.slice(1), [['up']]);
    assert.equal(seenThere[0]!.slice(0, 2), ['down', true]);
    assert.equal(seenThere[1], ['up']);
    // The new session works, and is new on both ends.
    b.t.onMessage((_p, msg, reply) => reply?.(msg));
    assert.is((await a.t.request(2, { type: ECHO, body: 'new' })).body, 'new');
    for (const [n, p] of [[a, 2], [b, 1]] as const) {
      assert.is(n.t.stats()[p]!.sessions, 2);
      assert.is(n.t.stats()[p]!.resumes, 0);
    }
    assert.throws(() => a.t.dropSession(9, 'x'), (e: NaplusError) => e.code === 'EINVAL');
    await closeAll(nodes);
  });
}

test('dropSession while the connection is down: the peer hears why at the next connection', async () => {
  const nodes = await startCluster(2);
  const [a, b] = nodes as [TestNode, TestNode];
  await a.t.waitForPeers([2], 10_000);
  await b.t.waitForPeers([1], 10_000);
  const seenThere = watch(b);
  // Node 1's end of the connection is gone before it can send anything more on it.
  connectionSocket(a.t, 2)!.destroy();
  a.t.dropSession(2, 'testing a drop without a connection');
  await until(() => seenThere.length === 2);
  assert.equal(seenThere[0]!.slice(0, 2), ['down', true]);
  assert.match(seenThere[0]![2] as string, /Lost node 1: node 1 gave the session up: dropped on request: testing a drop without a connection/);
  assert.equal(seenThere[1], ['up']);
  await closeAll(nodes);
});

test('a replay buffer that overflows loses the session, with a reason that says so, after send() returned', async () => {
  const secret = randomBytes(32);
  const t = track(
    await Transport.start({
      cluster: 'overflow', nodeId: 5, listen: { host: '127.0.0.1', port: 0 }, peers: [{ id: 1, host: '127.0.0.1', port: 1 }], secret,
      heartbeatMs: 50, peerTimeoutMs: 60_000, maxFrameBytes: 256 * 1024, replayBufferBytes: 1 << 20,
    }),
  );
  const peer = await startPeer({
    cluster: 'overflow', nodeId: 1, listen: { host: '127.0.0.1', port: 0 }, peers: [{ id: 5, host: '127.0.0.1', port: t.port }],
    secretHex: secret.toString('hex'), heartbeatMs: 50, peerTimeoutMs: 60_000, maxFrameBytes: 256 * 1024,
  });
  await t.waitForPeers([1], 10_000);
  // A peer that reads nothing (stopped) acknowledges nothing: what is sent to it piles up.
  peer.child.kill('SIGSTOP');
  const page = makePage('random', 1);
  let downs = 0;
  t.on('peer-down', () => downs++);
  const down = new Promise<[NaplusError, boolean]>((resolve) => t.once('peer-down', (_p, reason, byPeer) => resolve([reason, byPeer])));
  let err: NaplusError | undefined;
  let sent = 0;
  for (; sent < 100 && !err; sent++) {
    try {
      t.send(1, { type: SINK, pages: Array.from({ length: 16 }, (_, k) => ({ page: k, data: page })) });
    } catch (e) {
      err = e as NaplusError;
    }
  }
  assert.ok(err, 'a send overflowed');
  assert.is(err!.code, 'EPEERLOST');
  const why = /the replay buffer for node 1 overflowed: \d+ bytes sent and not acknowledged \((connected|no connection)\), over replayBufferBytes \(1048576\)/;
  assert.match(err!.message, why);
  assert.ok(sent > 10 && sent < 20, `${sent} messages of 64 KiB fit in 1 MiB`);
  assert.is(downs, 0, 'no peer-down inside send()');
  assert.not.ok(t.isUp(1), 'but the session is gone at once');
  const [reason, byPeer] = await down;
  assert.match(reason.message, why);
  assert.not.ok(byPeer);
  // Thawed, the peer learns why and both start anew.
  const up = new Promise((resolve) => t.once('peer-up', resolve));
  peer.child.kill('SIGCONT');
  await up;
  const lost = (await peer.waitForEvent((e) => e.event === 'peer-down')) as PeerEvent & { reason: string; byPeer: boolean };
  assert.ok(lost.byPeer);
  assert.match(lost.reason, /Lost node 5: node 5 gave the session up: the replay buffer for node 1 overflowed/);
  assert.is((await t.request(1, { type: ECHO, body: 'after' })).body, 'after');
});

test.after.each(cleanup);

test.run();
