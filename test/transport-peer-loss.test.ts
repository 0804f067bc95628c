// Losing a peer, as opposed to losing a connection. A peer whose process dies is lost at
// once (its port refuses connections), whichever end dials, not after peerTimeoutMs: its
// pending requests fail with EPEERLOST naming the peer and why, and 'peer-down' says the
// same with byPeer. A frozen peer is lost after peerTimeoutMs of silence; thawed, both
// ends see a new session, never the old one resumed. A restarted peer (a new process
// behind the same address) is exactly one 'peer-down' (byPeer) and one 'peer-up'. And a
// process that stalls judges its peers by what they sent meanwhile, not by its own silence.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import type { NaplusError } from '../src/errors.js';
import { Transport, type Message } from '../src/transport/index.js';
import { cleanup, ECHO, HOLD, makePage, startPeer, track, type PeerEvent, type PeerSpec, type RunningPeer } from './fixtures/transport-protocol.js';

const HEARTBEAT_MS = 50;
const TIMEOUT_MS = 400;
/** For tests where only a dead process may be lost: far longer than any of them takes. */
const PATIENT_MS = 120_000;

interface Pair {
  t: Transport;
  peer: RunningPeer;
  spawn(): Promise<RunningPeer>;
}

/**
 * This process as node 5 and a child as node 1 (`childDials`: the child is the lower id
 * and dials us), or this process as node 1 and the child as node 5 (we dial it).
 */
async function setup(childDials: boolean, peerTimeoutMs = TIMEOUT_MS): Promise<Pair> {
  const secret = randomBytes(32);
  const [self, other] = childDials ? [5, 1] : [1, 5];
  const spec = (port: number): PeerSpec => ({
    cluster: 'loss',
    nodeId: other,
    listen: { host: '127.0.0.1', port },
    peers: [{ id: self, host: '127.0.0.1', port: childDials ? t.port : 1 }],
    secretHex: secret.toString('hex'),
    heartbeatMs: HEARTBEAT_MS,
    peerTimeoutMs,
  });
  // When we dial, the child listens first and keeps its port across restarts.
  const first = childDials ? undefined : await startPeer(spec(0));
  const t = track(
    await Transport.start({
      cluster: 'loss',
      nodeId: self,
      listen: { host: '127.0.0.1', port: 0 },
      peers: [{ id: other, host: '127.0.0.1', port: first?.port ?? 1 }],
      secret,
      heartbeatMs: HEARTBEAT_MS,
      peerTimeoutMs,
    }),
  );
  const port = first?.port ?? 0;
  const spawn = () => startPeer(spec(port));
  const peer = first ?? (await spawn());
  await t.waitForPeers([other], 10_000);
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

const events = (p: RunningPeer) => p.events.map((e) => (e.event === 'peer-down' ? `down${e.byPeer ? ' by peer' : ''}` : 'up'));

for (const childDials of [true, false]) {
  const other = childDials ? 1 : 5;
  test(`a peer killed mid-transfer (${childDials ? 'it dialed us' : 'we dialed it'}) is lost at once, by its refused port: pending requests fail, nothing hangs`, async () => {
    // With a patient timeout, only the refused port can tell us the process is gone.
    const { t, peer } = await setup(childDials, PATIENT_MS);
    const page = makePage('random', 7);
    const pages = Array.from({ length: 64 }, (_, k) => ({ page: k, data: page }));
    // Large echoes (256 KiB each way) keep bytes in flight; held requests are never answered.
    const echoes = Array.from({ length: 100 }, (_, i) => settle(t.request(other, { type: ECHO, body: i, pages })));
    const held = Array.from({ length: 50 }, (_, token) => settle(t.request(other, { type: HOLD, body: { batch: 1e9, seed: 1, token } })));
    const down = nextDown(t);
    await Promise.race(echoes);
    peer.child.kill('SIGKILL');
    const { peer: id, reason, byPeer } = await down;
    assert.is(id, other);
    assert.ok(byPeer, "a process that is gone holds nothing of the session: the loss is in good order");
    assert.is(reason.code, 'EPEERLOST');
    assert.match(reason.message, new RegExp(`Lost node ${other}: node ${other}'s process is gone: nothing listens at 127\\.0\\.0\\.1:\\d+ any more \\(connection refused\\)`));
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
        assert.match(r.err.message, new RegExp(`to node ${other} failed: Lost node ${other}: node ${other}'s process is gone`));
      }
    });
    assert.ok(failed >= held.length);
    assert.not.ok(t.isUp(other));
    assert.is(t.stats()[other]!.pending, 0);
    // Without a session, send throws and request rejects, at once.
    assert.throws(() => t.send(other, { type: ECHO }), (e: NaplusError) => e.code === 'EPEERLOST' && new RegExp(`No session with node ${other}: node ${other}'s process is gone`).test(e.message));
    const err = (await settle(t.request(other, { type: ECHO }))) as { err: NaplusError };
    assert.is(err.err.code, 'EPEERLOST');
  });

  test(`a frozen peer (${childDials ? 'it dialed us' : 'we dialed it'}) is lost after peerTimeoutMs; thawed, both ends start a new session`, async () => {
    const { t, peer } = await setup(childDials);
    const held = settle(t.request(other, { type: HOLD, body: { batch: 1e9, seed: 1, token: 0 } }));
    const down = nextDown(t);
    peer.child.kill('SIGSTOP');
    // Frozen but not yet lost: the session lives, sends queue, nothing throws.
    assert.ok(t.isUp(other));
    t.send(other, { type: ECHO });
    const { reason, byPeer } = await down;
    assert.not.ok(byPeer, 'this end gave up on a silent peer, which may still be running');
    assert.match(reason.message, new RegExp(`Lost node ${other}: no frames from node ${other} for \\d+ ms, over peerTimeoutMs \\(${TIMEOUT_MS} ms\\)`));
    const r = (await held) as { err: NaplusError };
    assert.is(r.err.code, 'EPEERLOST');
    assert.match(r.err.message, /over peerTimeoutMs/);
    const up = new Promise<number>((resolve) => t.once('peer-up', resolve));
    peer.child.kill('SIGCONT');
    assert.is(await up, other);
    // The thawed peer is told why its session ended, and starts a new one: never a resume.
    const lost = await peer.waitForEvent((e) => e.event === 'peer-down');
    await peer.waitForEvent((e) => e.event === 'peer-up' && peer.events.indexOf(e) > peer.events.indexOf(lost));
    assert.equal(events(peer), ['up', 'down by peer', 'up']);
    assert.match((lost as PeerEvent & { reason: string }).reason, new RegExp(`node ${childDials ? 5 : 1} gave the session up: no frames from node ${other} for \\d+ ms`));
    const echo = await t.request(other, { type: ECHO, body: 'again' });
    assert.is(echo.body, 'again');
    assert.is(t.stats()[other]!.sessions, 2);
    assert.is(t.stats()[other]!.resumes, 0, 'the lost session never resumed');
  });
}

test('a restarted peer (a new process on the same port, seen before its death was) is one peer-down by the peer, then one peer-up', async () => {
  // Node 1 watches node 2 die and come back while it is itself frozen, so that the first
  // it hears of node 2 is a new process answering at its address.
  const secret = randomBytes(32).toString('hex');
  const node2 = (port: number) =>
    startPeer({ cluster: 'restart', nodeId: 2, listen: { host: '127.0.0.1', port }, peers: [{ id: 1, host: '127.0.0.1', port: 1 }], secretHex: secret, heartbeatMs: HEARTBEAT_MS, peerTimeoutMs: 60_000 });
  const first = await node2(0);
  const watcher = await startPeer({
    cluster: 'restart', nodeId: 1, listen: { host: '127.0.0.1', port: 0 }, peers: [{ id: 2, host: '127.0.0.1', port: first.port }], secretHex: secret,
    heartbeatMs: HEARTBEAT_MS, peerTimeoutMs: 60_000,
  });
  await watcher.waitForEvent((e) => e.event === 'peer-up');
  watcher.child.kill('SIGSTOP');
  first.child.kill('SIGKILL');
  await first.exited;
  const second = await node2(first.port);
  watcher.child.kill('SIGCONT');
  const down = await watcher.waitForEvent((e) => e.event === 'peer-down');
  await watcher.waitForEvent((e) => e.event === 'peer-up' && watcher.events.indexOf(e) > watcher.events.indexOf(down));
  assert.equal(events(watcher), ['up', 'down by peer', 'up']);
  assert.match((down as PeerEvent & { reason: string }).reason, /Lost node 2: node 2 restarted: its new process \(incarnation [0-9a-f]{16}\) holds no session with node 1/);
  await second.waitForEvent((e) => e.event === 'peer-up');
  assert.equal(events(second), ['up']);
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
});

test.after.each(cleanup);

test.run();
