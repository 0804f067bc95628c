// Locks and barriers through the public API, with real app processes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCluster } from './helpers/cluster.js';

const MiB = 1 << 20;

test('a lock is exclusive and granted in FIFO order', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  try {
    const [a, b, d] = await Promise.all([c.app(1, 'data'), c.app(1, 'data'), c.app(1, 'data')]);
    assert.equal(await a.cmd({ op: 'lock', name: 'q' }), { locked: 'q' });
    const order: string[] = [];
    const gotB = b.cmd({ op: 'lock', name: 'q' }).then((r) => order.push(`b:${r.locked}`));
    await b.cmd({ op: 'stats' }); // a round trip on b's channel: b's lock request is queued before d's
    const gotD = d.cmd({ op: 'lock', name: 'q' }).then((r) => order.push(`d:${r.locked}`));
    await d.cmd({ op: 'stats' });
    assert.equal(order, [], 'nobody gets a held lock');
    assert.equal(await a.cmd({ op: 'lock', name: 'q' }), { error: "Lock 'q' is already held by this app", code: 'EDEADLK' });
    await a.cmd({ op: 'unlock', name: 'q' });
    await gotB;
    assert.equal(order, ['b:q']);
    await b.cmd({ op: 'unlock', name: 'q' });
    await gotD;
    assert.equal(order, ['b:q', 'd:q']);
  } finally {
    await c.close();
  }
});

test('a lock whose holder is killed passes on, and the next waiter is told', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  try {
    const [holder, next, after] = await Promise.all([c.app(1, 'data'), c.app(1, 'data'), c.app(1, 'data')]);
    await holder.cmd({ op: 'lock', name: 'q' });
    const told = next.cmd({ op: 'lock', name: 'q' });
    await next.cmd({ op: 'stats' });
    const granted = after.cmd({ op: 'lock', name: 'q' });
    await after.cmd({ op: 'stats' });
    holder.child.kill('SIGKILL');
    const r = await told;
    assert.is(r.code, 'EOWNERDEAD');
    assert.match(r.error, /holder of lock 'q' .* died/);
    assert.equal(await granted, { locked: 'q' }, 'the waiter after it holds the lock');
  } finally {
    await c.close();
  }
});

test('a barrier releases all parties at once, round after round', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  try {
    const apps = await Promise.all([0, 1, 2].map(() => c.app(1, 'data')));
    for (let round = 0; round < 3; round++) {
      let passed = 0;
      const first = apps.slice(0, 2).map((a) => a.cmd({ op: 'barrier', name: 'step', parties: 3 }).then(() => passed++));
      await Promise.all(apps.slice(0, 2).map((a) => a.cmd({ op: 'stats' }))); // both arrivals are registered
      assert.is(passed, 0, 'nobody passes before the last party arrives');
      await apps[2]!.cmd({ op: 'barrier', name: 'step', parties: 3 });
      await Promise.all(first);
      assert.is(passed, 2);
    }
  } finally {
    await c.close();
  }
});

test.run();
