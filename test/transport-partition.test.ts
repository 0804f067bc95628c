// A network partition between two live nodes (a relay on the path stops all traffic;
// nothing is reset). Shorter than peerTimeoutMs: the session lives through it, isUp stays
// true, send() queues, a request waits (its own timeout still applies), and afterwards
// everything arrives exactly once, in order, with no 'peer-down'. Longer: both ends lose
// the session (byPeer false: each gave up on a peer that may still run), pending requests
// fail with EPEERLOST, and once the path heals a new session starts, never the old one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import type { NaplusError } from '../src/errors.js';
import { cleanup, numbered, NUMBERED, NumberedStreams } from './fixtures/transport-protocol.js';
import { baseOptions, closeAll, LOCAL, startNode, type TestNode } from './fixtures/transport-nodes.js';
import { LinkProxy } from './fixtures/transport-proxy.js';

const HEARTBEAT_MS = 100;
const TIMEOUT_MS = 3000;

/** Node 1 dials node 2 through a relay. */
async function pair(): Promise<{ a: TestNode; b: TestNode; proxy: LinkProxy; downs: string[]; streams: NumberedStreams }> {
  const secret = randomBytes(32);
  const opts = (o: ReturnType<typeof baseOptions>) => ({ ...o, heartbeatMs: HEARTBEAT_MS, peerTimeoutMs: TIMEOUT_MS });
  const b = await startNode(opts(baseOptions(2, [{ id: 1, host: LOCAL, port: 1 }], secret)));
  const proxy = await LinkProxy.start(b.t.port);
  const a = await startNode(opts(baseOptions(1, [{ id: 2, host: LOCAL, port: proxy.port }], secret)));
  await a.t.waitForPeers([2], 10_000);
  await b.t.waitForPeers([1], 10_000);
  const downs: string[] = [];
  for (const n of [a, b]) n.t.on('peer-down', (peer, reason, byPeer) => downs.push(`${n.address.id}: ${peer} ${byPeer} ${reason.message}`));
  const streams = new NumberedStreams();
  b.t.onMessage((peer, msg, reply) => {
    if (msg.type === NUMBERED) streams.take(peer, msg.body as Buffer);
    reply?.(msg);
  });
  return { a, b, proxy, downs, streams };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a partition shorter than peerTimeoutMs: isUp stays, sends queue, requests wait, nothing is lost', async () => {
  const { a, b, proxy, downs, streams } = await pair();
  let n = 0;
  const some = (count: number) => {
    for (const end = n + count; n < end; n++) a.t.send(2, { type: NUMBERED, body: numbered(n) });
  };
  some(500);
  proxy.partition();
  some(500);
  const waiting = a.t.request(2, { type: 9, body: 'across the partition' }, 60_000);
  const impatient = a.t.request(2, { type: 9 }, 200).catch((e: NaplusError) => e);
  // Long past the point where the silent connection is suspect and a new one is dialed alongside.
  await sleep(TIMEOUT_MS / 2);
  assert.ok(a.t.isUp(2) && b.t.isUp(1), 'both sessions live through the partition');
  some(500);
  assert.is(((await impatient) as NaplusError).code, 'ETIMEDOUT', "a request's own timeout still applies");
  proxy.heal();
  assert.is((await waiting).body, 'across the partition');
  const last = await a.t.request(2, { type: NUMBERED, body: numbered(n++) });
  assert.is((last.body as Buffer).readUInt32LE(0), n - 1);
  assert.equal(streams.status(1), { next: n, outOfTurn: 0 });
  assert.equal(downs, []);
  assert.is(a.t.stats()[2]!.sessions, 1);
  await closeAll([a, b]);
});

test('a partition longer than peerTimeoutMs: both ends lose the session, then start a new one once it heals', async () => {
  const { a, b, proxy, downs } = await pair();
  const held = a.t.request(2, { type: 9 }, 60_000).catch((e: NaplusError) => e);
  b.t.onMessage(() => {}); // the request above is never answered
  proxy.partition();
  const lost = (n: TestNode) => new Promise<void>((resolve) => n.t.once('peer-down', () => resolve()));
  await Promise.all([lost(a), lost(b)]);
  assert.equal(downs.length, 2);
  for (const line of downs) assert.match(line, /^\d: \d false Lost node \d: no frames from node \d for \d+ ms, over peerTimeoutMs \(3000 ms\)/);
  const err = (await held) as NaplusError;
  assert.is(err.code, 'EPEERLOST');
  assert.match(err.message, /over peerTimeoutMs/);
  const up = (n: TestNode) => new Promise<void>((resolve) => n.t.once('peer-up', () => resolve()));
  const ups = Promise.all([up(a), up(b)]);
  proxy.heal();
  await ups;
  assert.is(a.t.stats()[2]!.sessions, 2);
  assert.is(a.t.stats()[2]!.resumes, 0, 'the lost session never resumed');
  await closeAll([a, b]);
});

test.after.each(cleanup);

test.run();
