// Synchronization is a durability point: what an app wrote before a barrier, a lock
// release or region.flush() is in its pages' master copies (the home hosts' segments),
// so it survives the loss of the node that wrote it. And a home that dies does not take
// with it the pages other nodes hold dirty: they keep them, and the restarted home takes
// them back from them before it serves them again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCluster, type TestApp } from './helpers/cluster.js';

const MiB = 1 << 20;
const PAGES = (4 * MiB) / 4096;
/** With 'block' placement node n homes the n-th quarter of the region. */
const quarter = (node: number, pages = 8) => ({ from: ((node - 1) * PAGES) / 4, to: ((node - 1) * PAGES) / 4 + pages });
const INTACT = { bad: 0, firstBad: -1 };

const cluster = () =>
  makeCluster({ hosts: 2, nodesPerHost: 2, regions: [{ name: 'data', size: 4 * MiB }], transport: { heartbeatMs: 100, peerTimeoutMs: 1000 } });

for (const sync of ['barrier', 'unlock', 'flush'] as const) {
  test(`what an app wrote before ${sync === 'unlock' ? 'releasing a lock' : `a ${sync}`} survives SIGKILL of its node, on every home`, async () => {
    const c = await cluster();
    try {
      const [writer, ...readers] = await Promise.all([1, 2, 3, 4].map((id) => c.app(id, 'data')));
      if (sync === 'unlock') assert.equal(await writer!.cmd({ op: 'lock', name: 'L' }), { locked: 'L' });
      // Pages homed on the writer's own node, on its co-resident node, and on both nodes of the other host.
      for (const home of [1, 2, 3, 4]) assert.equal(await writer!.cmd({ op: 'write-pattern', seed: 70 + home, ...quarter(home) }), { ok: true });
      const done = sync === 'barrier' ? { passed: 'b' } : sync === 'unlock' ? { unlocked: 'L' } : { flushed: true };
      assert.equal(await writer!.cmd(sync === 'barrier' ? { op: 'barrier', name: 'b', parties: 1 } : sync === 'unlock' ? { op: 'unlock', name: 'L' } : { op: 'flush' }), done);
      await c.stopNode(1, 'SIGKILL');
      for (const r of readers as TestApp[]) {
        for (const home of [2, 3, 4]) assert.equal(await r.cmd({ op: 'check-pattern', seed: 70 + home, ...quarter(home) }), INTACT, `node ${r.hello.nodeId} reads the writes homed on node ${home}`);
      }
      await c.start(1);
      await c.linked();
      const back = await c.app(1, 'data');
      for (const home of [1, 2, 3, 4]) assert.equal(await back.cmd({ op: 'check-pattern', seed: 70 + home, ...quarter(home) }), INTACT, `the restarted node reads what was written to its own pages (home ${home})`);
    } finally {
      await c.close();
    }
  });
}

test('a home SIGKILLed and restarted: the pages others held dirty come back to it from them, none lost', async () => {
  const c = await cluster();
  try {
    const apps = await Promise.all([1, 2, 3, 4].map((id) => c.app(id, 'data')));
    const [, a2, a3] = apps as [TestApp, TestApp, TestApp, TestApp];
    // Node 3 (other host) and node 2 (same host) write pages homed on node 1, and do not synchronize.
    assert.equal(await a3.cmd({ op: 'write-pattern', seed: 5, ...quarter(1) }), { ok: true });
    assert.equal(await a2.cmd({ op: 'write-pattern', seed: 6, from: quarter(1).to, to: quarter(1).to + 8 }), { ok: true });
    await c.stopNode(1, 'SIGKILL');
    // The writers go on with their pages while the home is gone.
    assert.equal(await a3.cmd({ op: 'check-pattern', seed: 5, ...quarter(1) }), INTACT);
    await c.start(1);
    await c.linked();
    // Everyone reads the writes: the restarted home learnt who held them.
    const back = await c.app(1, 'data');
    for (const a of [back, apps[3]!]) {
      assert.equal(await a.cmd({ op: 'check-pattern', seed: 5, ...quarter(1) }), INTACT, `node ${a.hello.nodeId} reads node 3's writes`);
      assert.equal(await a.cmd({ op: 'check-pattern', seed: 6, from: quarter(1).to, to: quarter(1).to + 8 }), INTACT, `node ${a.hello.nodeId} reads node 2's writes`);
    }
    assert.ok(c.nodeLog(1).some((l) => /page\(s\) homed here had owners when this node last ran/.test(l)), 'the restarted home says it waits for the owners');
  } finally {
    await c.close();
  }
});

test.run();
