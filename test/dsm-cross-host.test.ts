// Two simulated hosts x two nodes, each host its own /dev/shm segment, nodes linked by
// real TCP: the cluster is one memory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCluster } from './helpers/cluster.js';

const MiB = 1 << 20;

test('disjoint writes on every node, then every node reads everything', async () => {
  const c = await makeCluster({ hosts: 2, nodesPerHost: 2, regions: [{ name: 'data', size: 4 * MiB }] });
  try {
    const apps = await Promise.all([1, 2, 3, 4].map((id) => c.app(id, 'data')));
    const pages = (4 * MiB) / 4096;
    const quarter = pages / 4;
    await Promise.all(apps.map((a, i) => a.cmd({ op: 'write-pattern', seed: i + 1, from: i * quarter, to: (i + 1) * quarter })));
    for (const a of apps) {
      for (let i = 0; i < 4; i++) {
        assert.equal(await a.cmd({ op: 'check-pattern', seed: i + 1, from: i * quarter, to: (i + 1) * quarter }), { bad: 0, firstBad: -1 }, `node ${a.hello.nodeId} reads node ${i + 1}'s quarter`);
      }
    }
  } finally {
    await c.close();
  }
});

test('contended Atomics.add on shared counters from every node: the sum is exact', async () => {
  const c = await makeCluster({ hosts: 2, nodesPerHost: 2, regions: [{ name: 'data', size: 1 * MiB }] });
  try {
    const apps = await Promise.all([1, 2, 3, 4].map((id) => c.app(id, 'data')));
    // Eight counters on one page, every app adding to all of them for the same 1.5 s.
    const counts = await Promise.all(apps.map((a) => a.cmd({ op: 'add-u32-for', index: 0, spread: 8, ms: 1500 })));
    const total = counts.reduce((s, r) => s + r.count, 0);
    for (const a of apps) {
      let sum = 0;
      for (let i = 0; i < 8; i++) sum += (await a.cmd({ op: 'read-u32', index: i })).value;
      assert.is(sum, total, `the counters seen from node ${a.hello.nodeId} add up to every add made`);
    }
    const stats = await Promise.all(apps.map((a) => a.cmd({ op: 'stats' })));
    const moves = stats.reduce((s, st) => s + st.regions.data.fromRemote + st.regions.data.fromSegment, 0);
    console.log(`${total} adds, the page moved ${moves} times`);
    assert.ok(moves > 20, `the page really moved between nodes (${moves} times)`);
  } finally {
    await c.close();
  }
});

test.run();
