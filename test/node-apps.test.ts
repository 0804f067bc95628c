// One node, several app processes on one simulated host: they share the node's single
// cached copy of a region, and the node survives what apps do to it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCluster } from './helpers/cluster.js';

const MiB = 1 << 20;

test('apps on one node see each other\'s writes through the one cached copy', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: 4 * MiB }] });
  try {
    const [a, b, d] = await Promise.all([c.app(1, 'data'), c.app(1, 'data'), c.app(1, 'data')]);
    assert.equal(a.hello.attached, true);
    assert.equal(await a.cmd({ op: 'write-pattern', seed: 1, from: 0, to: 100 }), { ok: true });
    assert.equal(await b.cmd({ op: 'check-pattern', seed: 1, from: 0, to: 100 }), { bad: 0, firstBad: -1 });
    assert.equal(await b.cmd({ op: 'write-pattern', seed: 2, from: 50, to: 150 }), { ok: true });
    assert.equal(await d.cmd({ op: 'check-pattern', seed: 1, from: 0, to: 50 }), { bad: 0, firstBad: -1 });
    assert.equal(await d.cmd({ op: 'check-pattern', seed: 2, from: 50, to: 150 }), { bad: 0, firstBad: -1 });
    assert.equal(await a.cmd({ op: 'check-pattern', seed: 2, from: 50, to: 150 }), { bad: 0, firstBad: -1 });
    const stats = (await a.cmd({ op: 'stats' })).regions.data;
    assert.is(stats.apps, 3);
    assert.ok(stats.minor > 0, 'apps after the first map pages without copying (MINOR faults)');
  } finally {
    await c.close();
  }
});

test('a region four times the node\'s cache is written and read back entirely', async () => {
  const c = await makeCluster({ regions: [{ name: 'big', size: 8 * MiB }], nodeArgs: ['--cache', '2M'] });
  try {
    const a = await c.app(1, 'big');
    const pages = (8 * MiB) / 4096;
    assert.equal(await a.cmd({ op: 'write-pattern', seed: 7, from: 0, to: pages }), { ok: true });
    const b = await c.app(1, 'big');
    assert.equal(await b.cmd({ op: 'check-pattern', seed: 7, from: 0, to: pages }), { bad: 0, firstBad: -1 });
    const s = (await b.cmd({ op: 'stats' })).regions.big;
    assert.ok(s.residentPages <= s.cacheLimitPages, `resident ${s.residentPages} within limit ${s.cacheLimitPages}`);
    assert.ok(s.evictions >= pages - s.cacheLimitPages, `evicted ${s.evictions}`);
    assert.ok(s.writebacks >= pages - s.cacheLimitPages, `wrote back ${s.writebacks}`);
  } finally {
    await c.close();
  }
});

test('an app killed with SIGKILL mid-run leaves the node serving the others', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: 16 * MiB }] });
  try {
    const victim = await c.app(1, 'data');
    const other = await c.app(1, 'data');
    const pages = (16 * MiB) / 4096;
    void victim.cmd({ op: 'write-pattern', seed: 3, from: 0, to: pages }); // long: faults on every page
    await other.cmd({ op: 'write-pattern', seed: 4, from: 0, to: 8 });
    victim.child.kill('SIGKILL');
    assert.is(await victim.exited, null);
    assert.equal(await other.cmd({ op: 'write-pattern', seed: 5, from: 100, to: 400 }), { ok: true });
    assert.equal(await other.cmd({ op: 'check-pattern', seed: 5, from: 100, to: 400 }), { bad: 0, firstBad: -1 });
    const late = await c.app(1, 'data');
    assert.equal(await late.cmd({ op: 'check-pattern', seed: 5, from: 100, to: 400 }), { bad: 0, firstBad: -1 });
    assert.is((await late.cmd({ op: 'stats' })).regions.data.apps, 2, 'the killed app was detached');
    assert.ok(c.nodes.get(1)!.log().some((l) => /detached/.test(l)));
  } finally {
    await c.close();
  }
});

test('a node restarted on the same segment finds the data written before', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: 2 * MiB }] });
  try {
    const a = await c.app(1, 'data');
    assert.equal(await a.cmd({ op: 'write-pattern', seed: 9, from: 0, to: 512 }), { ok: true });
    assert.is(await c.stopNode(1), 0, 'clean exit on SIGTERM');
    assert.ok((await a.cmd({ op: 'stats' })).code === 'ESHUTDOWN', 'the app was told the node stopped');
    await c.start(1);
    assert.ok(c.nodes.get(1)!.log().some((l) => /checked/.test(l)), 'the segment header was checked, not reformatted');
    const b = await c.app(1, 'data');
    assert.equal(await b.cmd({ op: 'check-pattern', seed: 9, from: 0, to: 512 }), { bad: 0, firstBad: -1 });
  } finally {
    await c.close();
  }
});

test.run();
