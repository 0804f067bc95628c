// Refused connections cannot flood the log: thousands of them (garbage, cut hellos,
// oversize frames, slowloris connections that never speak) give a few lines in full per
// interval and one summary line per interval, whose counts, with the lines in full, add
// up to exactly the connections refused, reason by reason. A good peer is served meanwhile.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { frameOf } from '../src/transport/frame.js';
import { REJECTIONS_IN_FULL } from '../src/transport/reject-log.js';
import { cleanup, prng } from './fixtures/transport-protocol.js';
import { baseOptions, LOCAL, startNode } from './fixtures/transport-nodes.js';
import { rawConnect } from './fixtures/transport-raw.js';

const seed = Number(process.env.NAPLUS_TEST_SEED ?? Date.now() % 1_000_000);
console.log(`transport-rejection-log: seed ${seed} (replay with NAPLUS_TEST_SEED=${seed})`);
const INTERVAL_MS = 1000;
const TIMEOUT_MS = 1000;

/** Each kind of hostile connection, what it sends, and how the log line in full reads. */
const KINDS = {
  'refused in the handshake': { count: 1200, send: frameOf(Buffer.from('\x01GET / HTTP/1.1, not a Naplus node')), full: /handshake with the node at \S+ failed: it is not a Naplus node/ },
  'closed during the handshake': { count: 1200, send: frameOf(Buffer.alloc(100)).subarray(0, 30), full: /the node at \S+ closed the connection during the handshake/ },
  'bad frame': { count: 1200, send: Buffer.from([0xff, 0xff, 0xff, 0xff]), full: /the node at \S+ sent a frame of 4294967295 bytes, over the cap/ },
  'handshake timeout': { count: 300, send: undefined, full: /the node at \S+ did not complete the handshake within 1000 ms/ },
} as const;
type Why = keyof typeof KINDS;

test('3900 refused connections: a bounded number of log lines, and summaries that count them right', async () => {
  const secret = randomBytes(32);
  const good = await startNode({ ...baseOptions(3, [{ id: 2, host: LOCAL, port: 1 }], secret) });
  const node = await startNode({
    ...baseOptions(2, [{ id: 1, host: LOCAL, port: 1 }, good.address], secret),
    heartbeatMs: 100,
    peerTimeoutMs: TIMEOUT_MS,
    rejectionLogMs: INTERVAL_MS,
  });
  good.t.onMessage((_p, msg, reply) => reply?.(msg));
  await node.t.waitForPeers([3], 10_000);
  const rand = prng(seed);
  const order = (Object.keys(KINDS) as Why[]).flatMap((why) => Array.from({ length: KINDS[why].count }, () => why));
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const started = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < order.length) {
      const why = order[next++]!;
      const raw = await rawConnect(node.t.port);
      const { send } = KINDS[why];
      if (why === 'closed during the handshake') raw.socket.end(send!);
      else if (send) raw.socket.write(send);
      await raw.closed;
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  // Served all along.
  assert.equal((await node.t.request(3, { type: 1, body: 'still here' })).body, 'still here');
  const elapsed = Date.now() - started;
  await node.t.close(); // ends the interval: its summary is written now
  const lines = node.logs.lines;
  const counted = new Map<string, number>();
  const summaries = lines.filter((l) => /refused \d+ more connection\(s\)/.test(l));
  for (const s of summaries) {
    const m = /refused (\d+) more connection\(s\) in the last \d+ ms, beyond the \d+ logged in full: (.*)$/.exec(s);
    assert.ok(m, s);
    let sum = 0;
    for (const part of m![2]!.split(', ')) {
      const [, n, why] = /^(\d+) (.*)$/.exec(part)!;
      counted.set(why!, (counted.get(why!) ?? 0) + Number(n));
      sum += Number(n);
    }
    assert.is(sum, Number(m![1]), s);
  }
  let full = 0;
  for (const why of Object.keys(KINDS) as Why[]) {
    const inFull = lines.filter((l) => KINDS[why].full.test(l)).length;
    full += inFull;
    assert.is(inFull + (counted.get(why) ?? 0), KINDS[why].count, `${why}: ${inFull} in full + ${counted.get(why) ?? 0} summed up`);
  }
  // At most REJECTIONS_IN_FULL lines in full and one summary per interval that had any.
  const intervals = Math.ceil(elapsed / INTERVAL_MS) + 2;
  assert.ok(full <= REJECTIONS_IN_FULL * intervals, `${full} lines in full over ${elapsed} ms`);
  assert.ok(summaries.length <= intervals, `${summaries.length} summaries over ${elapsed} ms`);
  assert.ok(lines.length < 100, `${lines.length} log lines for ${order.length} refused connections`);
  console.log(`${order.length} refused connections in ${elapsed} ms: ${lines.length} log lines, ${full} in full, ${summaries.length} summaries`);
  await good.t.close();
});

test.after.each(cleanup);

test.run();
