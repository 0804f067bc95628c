// Locks and barriers doing real work across 2 hosts x 2 nodes, one worker per node: a
// lock-protected shared queue whose producers and consumers are on every node delivers
// every item exactly once, and an iterative computation paced by barriers gets exactly
// the sequential result.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { makeCluster, type TestCluster } from './helpers/cluster.js';
import { step } from './fixtures/ring-step.js';

const WORK = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/sync-work.js');
const run = promisify(execFile);

async function everyNode(c: TestCluster, mode: string, count: number): Promise<number[][]> {
  const workers = c.files.nodes.length;
  const outs = await Promise.all(c.files.nodes.map((n, w) => run(process.execPath, [WORK, mode, n.socketDir, String(w), String(workers), String(count)], { timeout: 120_000 })));
  return outs.map((o) => (JSON.parse(o.stdout.trim()) as { result: number[] }).result);
}

test('a lock-protected queue with producers and consumers on every node delivers every item exactly once', async () => {
  const c = await makeCluster({ hosts: 2, nodesPerHost: 2, regions: [{ name: 'data', size: 1 << 20 }] });
  try {
    const items = 300;
    const consumed = await everyNode(c, 'queue', items);
    const all = consumed.flat().sort((a, b) => a - b);
    const expected = [0, 1, 2, 3].flatMap((w) => Array.from({ length: items }, (_, i) => w * 1_000_000 + i));
    assert.equal(all, expected, 'each item consumed once, none lost, none invented');
    assert.ok(consumed.filter((list) => list.length > 0).length >= 2, 'consumers on several nodes took items');
    // Items of one producer come out in the order it put them in (the queue is FIFO).
    for (const list of consumed) {
      for (let w = 0; w < 4; w++) {
        const mine = list.filter((x) => Math.floor(x / 1_000_000) === w);
        assert.equal(mine, [...mine].sort((a, b) => a - b));
      }
    }
  } finally {
    await c.close();
  }
});

test('an iterative computation paced by barriers matches the sequential one exactly', async () => {
  const c = await makeCluster({ hosts: 2, nodesPerHost: 2, regions: [{ name: 'data', size: 1 << 20 }] });
  try {
    const rounds = 40;
    const finals = await everyNode(c, 'rounds', rounds);
    let ring = [0, 1, 2, 3].map((i) => i * 101);
    for (let t = 0; t < rounds; t++) ring = ring.map((v, i) => step(ring[(i + 3) % 4]!, v, ring[(i + 1) % 4]!));
    for (const f of finals) assert.equal(f, ring, 'every worker ends with the sequential result');
  } finally {
    await c.close();
  }
});

test.run();
