// Locks and barriers through the public API, with real app processes: all on one node,
// and spread over two hosts x two nodes (where each name's home is one of the nodes
// and the others reach it over the transport).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCluster, type TestCluster } from './helpers/cluster.js';
import { controlRequest } from '../src/control-client.js';

const MiB = 1 << 20;

const SHAPES = [
  { label: 'one node', hosts: 1, nodesPerHost: 1, appNodes: [1, 1, 1] },
  { label: '2 hosts x 2 nodes', hosts: 2, nodesPerHost: 2, appNodes: [2, 3, 4] },
];

interface SyncStats {
  locks: Record<string, { waiting: number }>;
  barriers: Record<string, { arrived: number }>;
}

/** Waits until `count` over the nodes' sync stats (whichever node is the name's home) reaches `n`. */
async function until(c: TestCluster, count: (s: SyncStats) => number, n: number): Promise<void> {
  for (;;) {
    let total = 0;
    for (const node of c.files.nodes) total += count((await controlRequest<{ sync: SyncStats }>(node.socketDir, 'stats')).sync);
    if (total === n) return;
    await new Promise((r) => setImmediate(r));
  }
}

const waiters = (c: TestCluster, name: string, n: number) => until(c, (s) => s.locks[name]?.waiting ?? 0, n);

for (const shape of SHAPES) {
  const cluster = () => makeCluster({ hosts: shape.hosts, nodesPerHost: shape.nodesPerHost, regions: [{ name: 'data', size: MiB }] });
  const apps = (c: TestCluster) => Promise.all(shape.appNodes.map((id) => c.app(id, 'data')));

  test(`${shape.label}: a lock is exclusive and granted in FIFO order`, async () => {
    const c = await cluster();
    try {
      const [a, b, d] = await apps(c);
      assert.equal(await a.cmd({ op: 'lock', name: 'q' }), { locked: 'q' });
      const order: string[] = [];
      const gotB = b.cmd({ op: 'lock', name: 'q' }).then((r) => order.push(`b:${r.locked}`));
      await waiters(c, 'q', 1);
      const gotD = d.cmd({ op: 'lock', name: 'q' }).then((r) => order.push(`d:${r.locked}`));
      await waiters(c, 'q', 2);
      assert.equal(order, [], 'nobody gets a held lock');
      assert.equal(await a.cmd({ op: 'lock', name: 'q' }), { error: "Lock 'q' is already held by this app", code: 'EDEADLK' });
      await a.cmd({ op: 'unlock', name: 'q' });
      await gotB;
      assert.equal(order, ['b:q']);
      const again = await a.cmd({ op: 'unlock', name: 'q' });
      assert.is(again.code, 'EPERM', 'releasing a lock twice');
      await b.cmd({ op: 'unlock', name: 'q' });
      await gotD;
      assert.equal(order, ['b:q', 'd:q']);
    } finally {
      await c.close();
    }
  });

  test(`${shape.label}: a lock whose holder is killed passes on, and the next waiter is told`, async () => {
    const c = await cluster();
    try {
      const [holder, next, after] = await apps(c);
      await holder.cmd({ op: 'lock', name: 'q' });
      const told = next.cmd({ op: 'lock', name: 'q' });
      await waiters(c, 'q', 1);
      const granted = after.cmd({ op: 'lock', name: 'q' });
      await waiters(c, 'q', 2);
      holder.child.kill('SIGKILL');
      const r = await told;
      assert.is(r.code, 'EOWNERDEAD');
      assert.match(r.error, /holder of lock 'q' \(pid \d+.*\) died/);
      assert.equal(await granted, { locked: 'q' }, 'the waiter after it holds the lock');
    } finally {
      await c.close();
    }
  });

  test(`${shape.label}: a barrier releases all parties at once, round after round`, async () => {
    const c = await cluster();
    try {
      const parties = await apps(c);
      for (let round = 0; round < 3; round++) {
        let passed = 0;
        const first = parties.slice(0, 2).map((a) => a.cmd({ op: 'barrier', name: 'step', parties: 3 }).then(() => passed++));
        // Both arrivals are registered at the barrier's home before the last party comes.
        await until(c, (s) => s.barriers.step?.arrived ?? 0, 2);
        assert.is(passed, 0, 'nobody passes before the last party arrives');
        await parties[2]!.cmd({ op: 'barrier', name: 'step', parties: 3 });
        await Promise.all(first);
        assert.is(passed, 2);
      }
    } finally {
      await c.close();
    }
  });
}

test.run();
