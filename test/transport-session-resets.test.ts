// A connection that breaks between two live nodes costs time, never a message: streams of
// numbered messages and requests both ways, with the connection under them broken at
// seeded random points (the socket destroyed by either end, reset by either end, or
// killed from outside with `ss -K` on its real port), arrive exactly once and in order,
// every request gets its own reply, and neither node ever sees 'peer-down'.
// NAPLUS_TEST_SEED replays a run; NAPLUS_RESET_SCHEDULES sets how many schedules it tries.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import type { Message } from '../src/transport/index.js';
import { cleanup, makePage, numbered, NUMBERED, NumberedStreams, prng } from './fixtures/transport-protocol.js';
import { closeAll, connectionSocket, startCluster, type TestNode } from './fixtures/transport-nodes.js';

const seed = Number(process.env.NAPLUS_TEST_SEED ?? Date.now() % 1_000_000);
const SCHEDULES = Number(process.env.NAPLUS_RESET_SCHEDULES ?? 12);
const PER_DIRECTION = 1500;
console.log(`transport-session-resets: seed ${seed}, ${SCHEDULES} schedules (replay with NAPLUS_TEST_SEED=${seed})`);

const run = promisify(execFile);

/** Whether `ss -K` kills a TCP socket here (it needs root and a kernel with socket destroy): tried on a pair of our own. */
async function ssKillWorks(): Promise<boolean> {
  const server = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  await new Promise((resolve) => client.once('connect', resolve));
  const killed = new Promise<boolean>((resolve) => {
    client.once('close', () => resolve(true));
    setTimeout(() => resolve(false), 2000);
  });
  const ok = await run('ss', ['-K', 'src', '127.0.0.1', 'sport', '=', `:${client.localPort}`]).then(() => killed, () => false);
  client.destroy();
  server.close();
  return ok;
}
const SS = await ssKillWorks();
if (!SS) console.log('SKIP: ss -K cannot kill sockets here (it needs iproute2, root and socket destroy); resets use socket.destroy() only');

type Break = 'destroy' | 'reset' | 'ss -K';

/** Breaks the connection `from` has to `to` as `how` says; false if there is none right now. */
async function breakConnection(from: TestNode, to: number, how: Break): Promise<boolean> {
  const socket = connectionSocket(from.t, to);
  if (!socket || socket.destroyed) return false;
  if (how === 'destroy') socket.destroy();
  else if (how === 'reset') socket.resetAndDestroy();
  else await run('ss', ['-K', 'src', '127.0.0.1', 'sport', '=', `:${socket.localPort}`]);
  return true;
}

interface Outcome {
  breaks: Record<Break, number>;
  resumes: number;
  replayed: number;
}

async function schedule(k: number): Promise<Outcome> {
  const rand = prng(seed * 1000 + k);
  const int = (n: number) => Math.floor(rand() * n);
  // A long peerTimeoutMs: no session may be lost here, however slow this machine is.
  const nodes = await startCluster(2, (o) => ({ ...o, heartbeatMs: 100, peerTimeoutMs: 20_000 }));
  const [a, b] = nodes as [TestNode, TestNode];
  await a.t.waitForPeers([2], 10_000);
  await b.t.waitForPeers([1], 10_000);
  const downs: string[] = [];
  const received = new Map<TestNode, NumberedStreams>();
  for (const n of nodes) {
    const streams = new NumberedStreams();
    received.set(n, streams);
    n.t.on('peer-down', (peer, reason) => downs.push(`node ${n.address.id} lost node ${peer}: ${reason.message}`));
    n.t.onMessage((peer, msg, reply) => {
      streams.take(peer, msg.body as Buffer);
      reply?.({ type: NUMBERED, body: msg.body });
    });
  }
  const kinds: Break[] = SS ? ['destroy', 'reset', 'ss -K'] : ['destroy', 'reset'];
  const breaks: Record<Break, number> = { destroy: 0, reset: 0, 'ss -K': 0 };
  const pending: Array<Promise<unknown>> = [];
  const page = makePage('random', k);
  const stream = async (from: TestNode, to: number) => {
    const replies: Array<Promise<void>> = [];
    for (let n = 0; n < PER_DIRECTION; n++) {
      if (rand() < 1 / 150) {
        // A break at a random moment soon, by either end, of a random kind.
        const [who, peer] = rand() < 0.5 ? [a, 2] : [b, 1];
        const how = kinds[int(kinds.length)]!;
        pending.push(
          new Promise((resolve) => setTimeout(resolve, int(4))).then(async () => {
            if (await breakConnection(who, peer, how)) breaks[how]++;
          }),
        );
      }
      // Frames of varied sizes (a page now and then), so that breaks fall inside frames too.
      const msg: Message = { type: NUMBERED, body: numbered(n), pages: rand() < 0.2 ? [{ page: n, data: page }] : undefined };
      if (rand() < 0.3) {
        replies.push(
          from.t.request(to, msg, 60_000).then((r) => {
            assert.ok((r.body as Buffer).equals(msg.body as Buffer), `reply to request ${n} from node ${from.address.id}`);
          }),
        );
      } else from.t.send(to, msg);
      if (n % 25 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(replies);
    // FIFO: once this last request is answered, everything sent before it has been handled.
    const last = await from.t.request(to, { type: NUMBERED, body: numbered(PER_DIRECTION) }, 60_000);
    assert.is((last.body as Buffer).readUInt32LE(0), PER_DIRECTION);
  };
  await Promise.all([stream(a, 2), stream(b, 1)]);
  await Promise.all(pending);
  assert.equal(downs, [], 'no session was lost');
  assert.equal(received.get(b)!.status(1), { next: PER_DIRECTION + 1, outOfTurn: 0 }, 'node 1 -> node 2: each message once, in order');
  assert.equal(received.get(a)!.status(2), { next: PER_DIRECTION + 1, outOfTurn: 0 }, 'node 2 -> node 1: each message once, in order');
  const sa = a.t.stats()[2]!;
  const sb = b.t.stats()[1]!;
  assert.is(sa.sessions, 1);
  assert.is(sb.sessions, 1);
  assert.ok(sa.up && sb.up);
  await closeAll(nodes);
  return { breaks, resumes: sa.resumes, replayed: sa.replayedFrames + sb.replayedFrames };
}

test(`${SCHEDULES} schedules of broken connections under two-way streams: nothing lost, nothing twice, no peer-down`, async () => {
  const total: Outcome = { breaks: { destroy: 0, reset: 0, 'ss -K': 0 }, resumes: 0, replayed: 0 };
  for (let k = 0; k < SCHEDULES; k++) {
    const o = await schedule(k);
    for (const how of Object.keys(o.breaks) as Break[]) total.breaks[how] += o.breaks[how];
    total.resumes += o.resumes;
    total.replayed += o.replayed;
  }
  console.log(`resets: ${JSON.stringify(total)}`);
  // The schedules did break connections of every kind, and sessions did resume with frames sent again.
  assert.ok(total.breaks.destroy > 0 && total.breaks.reset > 0 && (!SS || total.breaks['ss -K'] > 0), JSON.stringify(total.breaks));
  assert.ok(total.resumes > 0, 'sessions resumed');
  assert.ok(total.replayed > 0, 'frames were sent again after a break');
});

test.after.each(cleanup);

test.run();
