// Losing a peer: killed mid-transfer, or frozen (heartbeat timeout). Every pending
// request fails promptly with EPEERLOST naming the peer and why, 'peer-down' says the
// same, nothing hangs, and the link comes back when the peer does.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import type { NaplusError } from '../src/errors.js';
import { Transport, type Message } from '../src/transport/index.js';
import { cleanup, ECHO, HOLD, makePage, startPeer, track, type RunningPeer } from './fixtures/transport-protocol.js';

const HEARTBEAT_MS = 50;
const TIMEOUT_MS = 400;

async function setup() {
  const secret = randomBytes(32);
  // This process is node 5 and listens; the child is node 1 and dials it, so a
  // restarted child finds this node again on the same port.
  const t = track(await Transport.start({
    cluster: 'loss',
    nodeId: 5,
    listen: { host: '127.0.0.1', port: 0 },
    peers: [{ id: 1, host: '127.0.0.1', port: 1 }],
    secret,
    heartbeatMs: HEARTBEAT_MS,
    peerTimeoutMs: TIMEOUT_MS,
  }));
  const spawn = () =>
    startPeer({
      cluster: 'loss',
      nodeId: 1,
      listen: { host: '127.0.0.1', port: 0 },
      peers: [{ id: 5, host: '127.0.0.1', port: t.port }],
      secretHex: secret.toString('hex'),
      heartbeatMs: HEARTBEAT_MS,
      peerTimeoutMs: TIMEOUT_MS,
    });
  const peer = await spawn();
  await t.waitForPeers([1], 10_000);
  return { t, peer, spawn };
}

function nextDown(t: Transport): Promise<{ peer: number; reason: NaplusError; byPeer: boolean }> {
  return new Promise((resolve) => t.once('peer-down', (peer, reason, byPeer) => resolve({ peer, reason, byPeer })));
}

function settle(p: Promise<Message>): Promise<{ ok: Message } | { err: NaplusError }> {
  return p.then(
    (ok) => ({ ok }),
    (err: NaplusError) => ({ err }),
  );
}

test('a peer killed mid-transfer: pending requests fail with EPEERLOST, nothing hangs', async () => {
  const { t, peer } = await setup();
  const page = makePage('random', 7);
  const pages = Array.from({ length: 64 }, (_, k) => ({ page: k, data: page }));
  // Large echoes (256 KiB each way) keep bytes in flight; held requests are never answered.
  const echoes = Array.from({ length: 100 }, (_, i) => settle(t.request(1, { type: ECHO, body: i, pages })));
  const held = Array.from({ length: 50 }, (_, token) => settle(t.request(1, { type: HOLD, body: { batch: 1e9, seed: 1, token } })));
  const down = nextDown(t);
  await Promise.race(echoes);
  peer.child.kill('SIGKILL');
  const { peer: id, reason, byPeer } = await down;
  assert.is(id, 1);
  assert.ok(byPeer, 'a killed peer\'s kernel closed its end: the loss is in good order');
  assert.is(reason.code, 'EPEERLOST');
  assert.match(reason.message, /node 1/);
  const results = await Promise.all([...echoes, ...held]);
  let failed = 0;
  results.forEach((r, i) => {
    if ('ok' in r) {
      assert.ok(i < echoes.length, 'a held request was answered');
      assert.is(r.ok.body, i);
      assert.ok(r.ok.pages!.every((p) => Buffer.from(p.data).equals(page)));
    } else {
      failed++;
      assert.is(r.err.code, 'EPEERLOST');
      assert.match(r.err.message, /to node 1 failed: node 1 at \S+ closed the connection|to node 1 failed: the connection to node 1 at \S+ failed: ECONNRESET/);
    }
  });
  assert.ok(failed >= held.length);
  assert.not.ok(t.isUp(1));
  assert.is(t.stats()[1]!.pending, 0);
  // While the peer is down, send throws and request rejects, at once.
  assert.throws(() => t.send(1, { type: ECHO }), (e: NaplusError) => e.code === 'EPEERLOST' && /Node 1 is not connected/.test(e.message));
  const err = (await settle(t.request(1, { type: ECHO }))) as { err: NaplusError };
  assert.is(err.err.code, 'EPEERLOST');
  await t.close();
});

test('a frozen peer is lost on heartbeat timeout, and its link comes back when it thaws', async () => {
  const { t, peer } = await setup();
  const held = settle(t.request(1, { type: HOLD, body: { batch: 1e9, seed: 1, token: 0 } }));
  const down = nextDown(t);
  peer.child.kill('SIGSTOP');
  const { reason, byPeer } = await down;
  assert.not.ok(byPeer, 'this end gave up on a silent peer, which may still be running');
  assert.match(reason.message, /Lost node 1: no frames from node 1 at \S+ for \d+ ms \(heartbeat timeout 400 ms\)/);
  const r = (await held) as { err: NaplusError };
  assert.is(r.err.code, 'EPEERLOST');
  assert.match(r.err.message, /heartbeat timeout/);
  const up = new Promise<number>((resolve) => t.once('peer-up', resolve));
  peer.child.kill('SIGCONT');
  assert.is(await up, 1);
  const echo = await t.request(1, { type: ECHO, body: 'again' });
  assert.is(echo.body, 'again');
  assert.is(t.stats()[1]!.connects, 2);
  peer.child.kill();
  await t.close();
});

test('a restarted peer is a new link; requests work again', async () => {
  const { t, peer, spawn } = await setup();
  const down = nextDown(t);
  peer.child.kill('SIGKILL');
  await down;
  const up = new Promise<number>((resolve) => t.once('peer-up', resolve));
  const again: RunningPeer = await spawn();
  await up;
  assert.equal((await t.request(1, { type: ECHO, body: [1, 2] })).body, [1, 2]);
  again.child.kill();
  await t.close();
});

test('a process that stalls past the timeout judges its peers by what they sent meanwhile, not by its own silence', async () => {
  const secret = randomBytes(32);
  const t = track(await Transport.start({
    cluster: 'stall', nodeId: 5, listen: { host: '127.0.0.1', port: 0 }, peers: [{ id: 1, host: '127.0.0.1', port: 1 }],
    secret, heartbeatMs: HEARTBEAT_MS, peerTimeoutMs: TIMEOUT_MS,
  }));
  // The peer is patient with us; we are quick to judge it.
  await startPeer({
    cluster: 'stall', nodeId: 1, listen: { host: '127.0.0.1', port: 0 }, peers: [{ id: 5, host: '127.0.0.1', port: t.port }],
    secretHex: secret.toString('hex'), heartbeatMs: HEARTBEAT_MS, peerTimeoutMs: 60_000,
  });
  await t.waitForPeers([1], 10_000);
  let downs = 0;
  t.on('peer-down', () => downs++);
  const until = Date.now() + 3 * TIMEOUT_MS;
  while (Date.now() < until); // a long synchronous task: the peer's heartbeats pile up unread
  // The overdue heartbeat tick runs before the sockets are read; the echo comes after both.
  assert.is((await t.request(1, { type: ECHO, body: 'still there' })).body, 'still there');
  assert.is(downs, 0, 'the peer was not declared lost');
  assert.ok(t.isUp(1));
  await t.close();
});

test.after.each(cleanup);

test.run();
