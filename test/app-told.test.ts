// No app runs on silently: when its node dies, stops for longer than its timeout, or
// stops cleanly, an app busy with plain loads and stores on pages it already has (no
// fault, no call: nothing of its own would notice) takes SIGBUS at its next access.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCluster } from './helpers/cluster.js';

const MiB = 1 << 20;
const cluster = () =>
  makeCluster({ hosts: 1, nodesPerHost: 2, regions: [{ name: 'data', size: 4 * MiB }], transport: { heartbeatMs: 100, peerTimeoutMs: 1000 } });

for (const [how, signal] of [['dies (SIGKILL)', 'SIGKILL'], ['stops cleanly (SIGTERM)', 'SIGTERM'], ['is stopped (SIGSTOP) past its timeout', 'SIGSTOP']] as const) {
  test(`an app whose node ${how} takes SIGBUS at its next plain access`, async () => {
    const c = await cluster();
    const node = c.nodes.get(1)!;
    try {
      const app = await c.app(1, 'data');
      assert.equal(await app.cmd({ op: 'write-u32', index: 0, value: 7 }), { ok: true }); // the page is mapped now
      // Plain increments of a word it holds, for far longer than the test waits.
      const busy = app.cmd({ op: 'inc-u32-for', index: 0, ms: 60_000 });
      const stoppedAt = Date.now();
      node.process.kill(signal);
      assert.is(await app.signal, 'SIGBUS', 'the app took SIGBUS');
      const told = Date.now() - stoppedAt;
      assert.ok((await busy).error, 'its loop did not finish');
      // Its peers forget a silent node once they have declared it lost (the timeout) and
      // its quarantine is over (the timeout plus two heartbeats): the app must be told before.
      assert.ok(told < 2 * 1000 + 2 * 100, `told before the node's pages can be given to others (${told} ms)`);
    } finally {
      if (signal === 'SIGSTOP') node.process.kill('SIGCONT');
      await c.close();
    }
  });
}

test('an app blocked in a fault when its node is stopped (SIGSTOP) takes SIGBUS', async () => {
  const c = await cluster();
  const node = c.nodes.get(1)!;
  try {
    const app = await c.app(1, 'data');
    node.process.kill('SIGSTOP');
    const stoppedAt = Date.now();
    // A page the app never touched: its fault waits for the stopped node, until the guardian fences.
    const write = app.cmd({ op: 'write-u32', index: 100 * 1024, value: 1 });
    assert.is(await app.signal, 'SIGBUS', 'the app took SIGBUS');
    assert.ok((await write).error, 'the store never completed');
    const told = Date.now() - stoppedAt;
    assert.ok(told < 2 * 1000 + 2 * 100, `told before the node's pages can be given to others (${told} ms)`);
  } finally {
    node.process.kill('SIGCONT');
    await c.close();
  }
});

test('an app attached through a node SIGKILLed mid-run is told by its API calls too', async () => {
  const c = await cluster();
  try {
    const app = await c.app(1, 'data');
    await c.stopNode(1, 'SIGKILL');
    assert.is((await app.cmd({ op: 'flush' })).code, 'ECONNRESET');
  } finally {
    await c.close();
  }
});

test.run();
