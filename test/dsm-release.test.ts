// Release consistency over real processes (2 hosts x 2 nodes, apps on every node): writes
// reach other nodes at synchronizations, and only there; several nodes write one page at
// once and keep every word; region.atomics are atomic across nodes in both modes; the heap
// works; a synchronization is a durability point, also across a home's restart.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCluster, type TestApp, type TestCluster } from './helpers/cluster.js';
import type { Consistency } from '../src/config.js';

const MiB = 1 << 20;
const PAGES = (4 * MiB) / 4096;
/** With 'block' placement node n homes the n-th quarter of the region. */
const quarter = (node: number, pages = 16) => ({ from: ((node - 1) * PAGES) / 4, to: ((node - 1) * PAGES) / 4 + pages });
const INTACT = { bad: 0, firstBad: -1 };
/** A word of a page homed on node 4 (the other host for nodes 1 and 2). */
const SHARED = (quarter(4).from * 4096) / 4;

function cluster(consistency: Consistency = 'release'): Promise<TestCluster> {
  return makeCluster({ hosts: 2, nodesPerHost: 2, regions: [{ name: 'data', size: 4 * MiB, consistency }], transport: { heartbeatMs: 100, peerTimeoutMs: 1000 } });
}

async function withApps(run: (apps: TestApp[], c: TestCluster) => Promise<void>, consistency?: Consistency): Promise<void> {
  const c = await cluster(consistency);
  try {
    await run(await Promise.all([1, 2, 3, 4].map((id) => c.app(id, 'data'))), c);
  } finally {
    await c.close();
  }
}

test('a lock passed around the cluster carries every holder\'s writes to the next; writers of one page keep each other\'s words', () =>
  withApps(async (apps) => {
    const rounds = 6;
    // Each round every app, holding L, adds 1 to a shared counter (read-modify-write, plain
    // loads and stores) and writes its round into its own word of the same page.
    for (let r = 1; r <= rounds; r++) {
      for (const [i, a] of apps.entries()) {
        assert.equal(await a.cmd({ op: 'lock', name: 'L' }), { locked: 'L' });
        const { value } = await a.cmd({ op: 'read-u32', index: SHARED });
        assert.is(value, (r - 1) * apps.length + i, `node ${a.hello.nodeId} sees the counter as the last holder left it`);
        await a.cmd({ op: 'write-u32', index: SHARED, value: value + 1 });
        await a.cmd({ op: 'write-u32', index: SHARED + 1 + i, value: r });
        assert.equal(await a.cmd({ op: 'unlock', name: 'L' }), { unlocked: 'L' });
      }
    }
    for (const a of apps) {
      await a.cmd({ op: 'lock', name: 'L' });
      assert.is((await a.cmd({ op: 'read-u32', index: SHARED })).value, rounds * apps.length);
      for (let i = 0; i < apps.length; i++) assert.is((await a.cmd({ op: 'read-u32', index: SHARED + 1 + i })).value, rounds, `word of app ${i} as seen from node ${a.hello.nodeId}`);
      await a.cmd({ op: 'unlock', name: 'L' });
    }
    const stats = await Promise.all(apps.map((a) => a.cmd({ op: 'stats' })));
    for (const s of stats) {
      const r = s.regions.data;
      assert.is(r.consistency, 'release');
      assert.ok(r.coherence.twins > 0 && r.coherence.diffs > 0 && r.coherence.diffBytes > 0, `node ${s.node} made twins and sent diffs`);
      // A whole page moves only when it is fetched: the diffs of a few words are small.
      assert.ok(r.coherence.diffBytes < r.coherence.diffs * 1024, `diffs are words, not pages (${r.coherence.diffBytes} bytes in ${r.coherence.diffs} diffs)`);
    }
  }));

test('barrier phases: what each node wrote is what every node reads after the barrier, phase after phase, stale copies dropped', () =>
  withApps(async (apps) => {
    for (let phase = 0; phase < 3; phase++) {
      // In each phase app i writes the quarter homed on node (i + phase) % 4 + 1 (so each is
      // written by a different node each phase), then everyone reads everything.
      await Promise.all(apps.map((a, i) => a.cmd({ op: 'write-pattern', seed: 10 * phase + i, ...quarter(((i + phase) % 4) + 1) })));
      await Promise.all(apps.map((a) => a.cmd({ op: 'barrier', name: 'phase', parties: apps.length })));
      for (const a of apps) {
        for (let i = 0; i < apps.length; i++) {
          assert.equal(await a.cmd({ op: 'check-pattern', seed: 10 * phase + i, ...quarter(((i + phase) % 4) + 1) }), INTACT, `phase ${phase}: node ${a.hello.nodeId} reads app ${i}'s writes`);
        }
      }
      await Promise.all(apps.map((a) => a.cmd({ op: 'barrier', name: 'read', parties: apps.length })));
    }
  }));

test('a data race is not synchronization: a plain flag written on one node is not seen on another until they synchronize', () =>
  withApps(async (apps) => {
    const [writer, , reader] = apps as [TestApp, TestApp, TestApp];
    assert.is((await reader.cmd({ op: 'read-u32', index: SHARED })).value, 0, 'the reader caches the page');
    await writer.cmd({ op: 'write-u32', index: SHARED, value: 1 });
    await writer.cmd({ op: 'flush' }); // durable, but nobody acquired anything
    assert.is((await reader.cmd({ op: 'read-u32', index: SHARED })).value, 0, 'no synchronization between them: the reader keeps its copy');
    // The writer releases a lock the reader then takes: the notice comes with the grant.
    await writer.cmd({ op: 'lock', name: 'flag' });
    await writer.cmd({ op: 'unlock', name: 'flag' });
    await reader.cmd({ op: 'lock', name: 'flag' });
    assert.is((await reader.cmd({ op: 'read-u32', index: SHARED })).value, 1, 'after acquiring what the writer released, the reader sees the write');
    await reader.cmd({ op: 'unlock', name: 'flag' });
  }));

for (const consistency of ['release', 'sequential'] as const) {
  test(`region.atomics (${consistency}): concurrent adds from every node lose none; compareExchange and 64-bit words work`, () =>
    withApps(async (apps) => {
      const counts = await Promise.all(apps.map((a) => a.cmd({ op: 'atomic-add-for', offset: SHARED * 4, ms: 700 })));
      const total = counts.reduce((s, r) => s + r.count, 0);
      assert.ok(total > apps.length, `apps added (${total})`);
      for (const a of apps) assert.equal(await a.cmd({ op: 'atomic', width: 4, method: 'load', offset: SHARED * 4 }), { old: String(total) }, `node ${a.hello.nodeId} loads the exact sum`);
      const [a, b] = apps as [TestApp, TestApp];
      const big = 2n ** 40n + 5n;
      assert.equal(await a.cmd({ op: 'atomic', width: 8, method: 'store', offset: SHARED * 4 + 8, value: String(big) }), { old: String(big) });
      assert.equal(await b.cmd({ op: 'atomic', width: 8, method: 'compareExchange', offset: SHARED * 4 + 8, expected: '1', value: '9' }), { old: String(big) }, 'a compareExchange that does not match changes nothing');
      assert.equal(await b.cmd({ op: 'atomic', width: 8, method: 'compareExchange', offset: SHARED * 4 + 8, expected: String(big), value: '9' }), { old: String(big) });
      assert.equal(await a.cmd({ op: 'atomic', width: 8, method: 'add', offset: SHARED * 4 + 8, value: '1' }), { old: '9' });
      assert.equal(await apps[3]!.cmd({ op: 'atomic', width: 4, method: 'sub', offset: SHARED * 4 + 4, value: 1 }), { old: '0' });
      assert.equal(await apps[2]!.cmd({ op: 'atomic', width: 4, method: 'load', offset: SHARED * 4 + 4 }), { old: String(2 ** 32 - 1) }, 'words are unsigned and wrap');
    }, consistency));
}

test('the heap in release mode: blocks allocated on one node are found and intact on every other; malloc/free stress from every node', () =>
  withApps(async (apps) => {
    const [a, b, c, d] = apps as [TestApp, TestApp, TestApp, TestApp];
    const block = await a.cmd({ op: 'malloc', bytes: 3 * 4096, name: 'shared' });
    await a.cmd({ op: 'fill', offset: block.offset, length: 3 * 4096, seed: 7 });
    await a.cmd({ op: 'flush' });
    for (const x of [b, c, d]) {
      const found = await x.cmd({ op: 'lookup', name: 'shared' });
      assert.is(found.offset, block.offset, `node ${x.hello.nodeId} finds the block`);
    }
    // The heap lock orders the allocations; the block's bytes reach whoever takes the lock after.
    await a.cmd({ op: 'lock', name: 'bytes' });
    await a.cmd({ op: 'unlock', name: 'bytes' });
    for (const x of [b, c, d]) {
      await x.cmd({ op: 'lock', name: 'bytes' });
      assert.equal(await x.cmd({ op: 'check', offset: block.offset, length: 3 * 4096, seed: 7 }), INTACT, `node ${x.hello.nodeId} reads the block's bytes`);
      await x.cmd({ op: 'unlock', name: 'bytes' });
    }
    const results = await Promise.all(apps.map((x, i) => x.cmd({ op: 'heap-stress', seed: 100 + i, rounds: 40, maxBytes: 3 * 4096 })));
    for (const r of results) assert.equal(r.damaged, [], 'no block was damaged or lost');
  }));

test('what a release made durable survives SIGKILL of the writer, and copies and diffs survive a home restart', () =>
  withApps(async (apps, c) => {
    const [writer, other, , far] = apps as [TestApp, TestApp, TestApp, TestApp];
    for (const home of [1, 2, 3, 4]) await writer.cmd({ op: 'write-pattern', seed: 40 + home, ...quarter(home, 4) });
    await writer.cmd({ op: 'barrier', name: 'b', parties: 1 });
    await c.stopNode(1, 'SIGKILL');
    for (const home of [2, 3, 4]) assert.equal(await far.cmd({ op: 'check-pattern', seed: 40 + home, ...quarter(home, 4) }), INTACT, `node 4 reads the writes homed on node ${home}`);
    // Node 4 writes pages homed on node 2, which then dies before node 4 synchronizes: the
    // diffs wait for it and go when it is back.
    await far.cmd({ op: 'write-pattern', seed: 99, from: quarter(2).to, to: quarter(2).to + 4 });
    await c.stopNode(2, 'SIGKILL');
    await c.start(2);
    await c.start(1);
    await c.linked();
    assert.equal(await far.cmd({ op: 'barrier', name: 'b2', parties: 1 }), { passed: 'b2' });
    const back = await c.app(2, 'data');
    assert.equal(await back.cmd({ op: 'check-pattern', seed: 99, from: quarter(2).to, to: quarter(2).to + 4 }), INTACT, 'the restarted home has the writes made while it was away');
    for (const home of [1, 2, 3, 4]) assert.equal(await back.cmd({ op: 'check-pattern', seed: 40 + home, ...quarter(home, 4) }), INTACT, `and what was durable before (home ${home})`);
    void other;
  }));

test.run();
