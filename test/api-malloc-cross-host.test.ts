// The heap across two simulated hosts x two nodes: each node's apps learn which ranges
// are homed on their host and get 'local' blocks there, blocks are found and read from
// every node, seeded stress from all four nodes at once, and the examples with one
// worker per node.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCluster } from './helpers/cluster.js';
import { stressHeap } from './helpers/heap-stress.js';
import { runWorkers } from '../cli/demo.js';

const MiB = 1 << 20;
const PAGE = 4096;
const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../examples');

async function cluster(placement: 'block' | 'interleave' = 'block') {
  const c = await makeCluster({ hosts: 2, nodesPerHost: 2, regions: [{ name: 'data', size: 4 * MiB, placement }] });
  await c.linked();
  return c;
}

test("'local' blocks on each host's pages, read from every node; stress from four nodes", async () => {
  const c = await cluster();
  try {
    const apps = await Promise.all([1, 2, 3, 4].map((id) => c.app(id, 'data')));
    assert.equal(apps.map((a) => a.hello.localRanges), [[[0, 2 * MiB]], [[0, 2 * MiB]], [[2 * MiB, 4 * MiB]], [[2 * MiB, 4 * MiB]]], "'block' placement: h1 homes the first half");
    for (const a of apps) {
      const b = await a.cmd({ op: 'malloc', bytes: 3 * PAGE, home: 'local', name: `on${a.hello.nodeId}` });
      const [[from, to]] = a.hello.localRanges;
      assert.ok(from <= b.offset && b.offset + 3 * PAGE <= to, `node ${a.hello.nodeId}: block at ${b.offset} (${b.error ?? 'homed on its host'})`);
      await a.cmd({ op: 'fill', offset: b.offset, length: 3 * PAGE, seed: a.hello.nodeId });
    }
    for (const a of apps) {
      for (const id of [1, 2, 3, 4]) {
        const b = await a.cmd({ op: 'lookup', name: `on${id}` });
        assert.equal(await a.cmd({ op: 'check', offset: b.offset, length: 3 * PAGE, seed: id }), { bad: 0, firstBad: -1 }, `node ${a.hello.nodeId} reads node ${id}'s block`);
      }
    }
    // Each block freed from another node than its allocator's.
    for (const id of [1, 2, 3, 4]) {
      const b = await apps[id % 4]!.cmd({ op: 'lookup', name: `on${id}` });
      assert.equal(await apps[id % 4]!.cmd({ op: 'free', offset: b.offset }), { freed: b.offset });
    }
    await stressHeap(apps, 200, 64 * 1024);
  } finally {
    await c.close();
  }
});

test("'interleave' over two hosts: single pages are local, a longer 'local' block is EINVAL", async () => {
  const c = await cluster('interleave');
  try {
    const a = await c.app(3, 'data'); // host h2: pages 2 and 3 of every 4
    assert.equal(a.hello.localRanges.slice(0, 2), [[2 * PAGE, 4 * PAGE], [6 * PAGE, 8 * PAGE]]);
    const two = await a.cmd({ op: 'malloc', bytes: 2 * PAGE, home: 'local' });
    assert.is(Math.floor(two.offset / PAGE) % 4, 2, `two pages at ${two.offset}, both homed on h2`);
    const r = await a.cmd({ op: 'malloc', bytes: 2 * PAGE + 1, home: 'local' });
    assert.is(r.code, 'EINVAL');
    assert.match(r.error, /longest run of heap pages homed there is 8192 bytes \(placement 'interleave' puts consecutive pages on different nodes\)/);
  } finally {
    await c.close();
  }
});

test('counter-table and matmul with one worker on each of four nodes', async () => {
  const c = await cluster();
  try {
    const dirs = c.files.nodes.map((n) => n.socketDir);
    assert.equal(await runWorkers(path.join(EXAMPLES, 'counter-table.js'), dirs, ['2000']), { workers: 4, increments: 2000, expected: 8000, total: 8000, wrongCounters: 0, ok: true });
    assert.equal(await runWorkers(path.join(EXAMPLES, 'matmul.js'), dirs, ['48']), { n: 48, workers: 4, mismatches: 0, ok: true });
  } finally {
    await c.close();
  }
});

test.run();
