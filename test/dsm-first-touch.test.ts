// First-touch placement on two simulated hosts x two nodes: a page is homed on the host
// of the node that touched it first, nodes everywhere see the same data, and where the
// pages went (and what they hold) survives every node restarting.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCluster, type TestApp } from './helpers/cluster.js';

const MiB = 1 << 20;

async function served(app: TestApp, work: Record<string, unknown>): Promise<{ segment: number; remote: number }> {
  const before = (await app.cmd({ op: 'stats' })).regions.data;
  assert.equal(await app.cmd(work), { bad: 0, firstBad: -1 });
  const after = (await app.cmd({ op: 'stats' })).regions.data;
  return { segment: after.servedFromSegment - before.servedFromSegment, remote: after.servedFromRemote - before.servedFromRemote };
}

test('pages are homed where they were first touched, and stay there across restarts', async () => {
  const c = await makeCluster({ hosts: 2, nodesPerHost: 2, regions: [{ name: 'data', size: 4 * MiB, placement: 'first-touch' }] });
  try {
    let [a1, a2, a3, a4] = await Promise.all([1, 2, 3, 4].map((id) => c.app(id, 'data'))) as TestApp[];
    // Node 1 (host h1) touches the first 256 pages first, node 3 (host h2) the next 256.
    assert.equal(await a1!.cmd({ op: 'write-pattern', seed: 1, from: 0, to: 256 }), { ok: true });
    assert.equal(await a3!.cmd({ op: 'write-pattern', seed: 3, from: 256, to: 512 }), { ok: true });
    const h1Pages = { op: 'check-pattern', seed: 1, from: 0, to: 256 };
    const h2Pages = { op: 'check-pattern', seed: 3, from: 256, to: 512 };
    // Node 2 shares h1: node 1's pages come from the segment, node 3's over the network.
    let s = await served(a2!, h1Pages);
    assert.ok(s.segment > 0 && s.remote === 0, `node 2 reads h1's pages from its segment (${JSON.stringify(s)})`);
    s = await served(a2!, h2Pages);
    assert.ok(s.remote > 0 && s.segment === 0, `node 2 fetches h2's pages (${JSON.stringify(s)})`);
    s = await served(a4!, h2Pages);
    assert.ok(s.segment > 0 && s.remote === 0, `node 4 reads h2's pages from its segment (${JSON.stringify(s)})`);
    // Every node stops (dirty pages go home) and starts again on the same segments.
    for (const id of [1, 2, 3, 4]) assert.is(await c.stopNode(id), 0);
    for (const id of [4, 3, 2, 1]) await c.start(id);
    await c.linked();
    [a1, a2, a3, a4] = await Promise.all([1, 2, 3, 4].map((id) => c.app(id, 'data'))) as TestApp[];
    s = await served(a2!, h1Pages);
    assert.ok(s.segment > 0 && s.remote === 0, `after the restart, h1's pages are still homed on h1 (${JSON.stringify(s)})`);
    s = await served(a4!, h2Pages);
    assert.ok(s.segment > 0 && s.remote === 0, `and h2's on h2 (${JSON.stringify(s)})`);
    assert.equal(await a1!.cmd(h2Pages), { bad: 0, firstBad: -1 });
    assert.equal(await a3!.cmd(h1Pages), { bad: 0, firstBad: -1 });
  } finally {
    await c.close();
  }
});

test.run();
