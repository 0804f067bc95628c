// The cross-host suite: two simulated hosts x two nodes (each host its own /dev/shm
// segment), apps on every node, one memory. Run over loopback and again with each host
// in its own network namespace (dsm-cross-host*.test.ts), and in real QEMU guests
// (test/vm/cross-host.vmtest.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCluster, type ClusterOptions, type TestApp, type TestCluster } from './cluster.js';

const MiB = 1 << 20;

/** What the suite needs of a cluster: makeCluster's, or one whose nodes run in real guests. */
export type SuiteCluster = Pick<TestCluster, 'stopNode' | 'app' | 'linked' | 'nodeLog' | 'close'> & { start(id: number): Promise<unknown> };

/** For nodes that run far slower than on this machine (TCG guests, where a fault costs milliseconds). */
export interface SuiteScale {
  regionBytes: number;
  /** Multiplies the time windows of the contention tests and the link timeouts of the node-loss test. */
  timeScale: number;
}

export function crossHostSuite(
  label: string, extra: () => Partial<ClusterOptions>,
  make: (o: ClusterOptions) => Promise<SuiteCluster> = makeCluster, { regionBytes, timeScale }: SuiteScale = { regionBytes: 4 * MiB, timeScale: 1 },
): void {
  const pages = regionBytes / 4096;
  /** With 'block' placement node n homes the n-th quarter of the region. */
  const quarter = (node: number) => ({ from: ((node - 1) * pages) / 4, to: (node * pages) / 4 });
  const cluster = (o: Partial<ClusterOptions> = {}) =>
    make({ hosts: 2, nodesPerHost: 2, regions: [{ name: 'data', size: regionBytes }], ...extra(), ...o });
  const appsOn = (c: Awaited<ReturnType<typeof cluster>>) => Promise.all([1, 2, 3, 4].map((id) => c.app(id, 'data')));

  test(`${label}: disjoint writes on every node, then every node reads everything`, async () => {
    const c = await cluster();
    try {
      const apps = await appsOn(c);
      // Each node writes the quarter homed on the *next* node, so every write is remote.
      await Promise.all(apps.map((a, i) => a.cmd({ op: 'write-pattern', seed: i + 1, ...quarter(((i + 1) % 4) + 1) })));
      for (const a of apps) {
        for (let i = 0; i < 4; i++) {
          const r = await a.cmd({ op: 'check-pattern', seed: i + 1, ...quarter(((i + 1) % 4) + 1) });
          assert.equal(r, { bad: 0, firstBad: -1 }, `node ${a.hello.nodeId} reads what node ${i + 1} wrote`);
        }
      }
      const stats = await Promise.all(apps.map((a) => a.cmd({ op: 'stats' })));
      const regions = stats.map((s) => s.regions.data);
      assert.ok(regions.every((r) => r.servedFromRemote > 0), 'every node fetched pages from the other host');
      assert.ok(regions.every((r) => r.servedFromSegment > 0), 'every node copied pages homed on its own host from the segment');
    } finally {
      await c.close();
    }
  });

  test(`${label}: contended Atomics.add on shared counters from every node: the sum is exact`, async () => {
    const c = await cluster();
    try {
      const apps = await appsOn(c);
      // Eight counters on one page, every app adding to all of them for the same second.
      const counts = await Promise.all(apps.map((a) => a.cmd({ op: 'add-u32-for', index: 0, spread: 8, ms: 1000 * timeScale })));
      const total = counts.reduce((s, r) => s + r.count, 0);
      for (const a of apps) {
        let sum = 0;
        for (let i = 0; i < 8; i++) sum += (await a.cmd({ op: 'read-u32', index: i })).value;
        assert.is(sum, total, `the counters seen from node ${a.hello.nodeId} add up to every add made`);
      }
      const moves = await pageMoves(apps);
      assert.ok(moves > 20, `the page really moved between nodes (${moves} times)`);
    } finally {
      await c.close();
    }
  });

  test(`${label}: false sharing: plain stores to neighbouring words of one page are all kept`, async () => {
    const c = await cluster();
    try {
      const apps = await appsOn(c);
      // Word i is app i's alone; the page holding all four bounces between the nodes.
      const counts = await Promise.all(apps.map((a, i) => a.cmd({ op: 'inc-u32-for', index: 1024 + i, ms: 1000 * timeScale })));
      for (const a of apps) {
        for (let i = 0; i < 4; i++) {
          assert.equal(await a.cmd({ op: 'read-u32', index: 1024 + i }), { value: counts[i]!.count }, `word ${i} seen from node ${a.hello.nodeId}`);
        }
      }
      assert.ok((await pageMoves(apps)) > 20, 'the page moved between nodes');
    } finally {
      await c.close();
    }
  });

  test(`${label}: a node killed mid-run: its pages fail with SIGBUS, the rest keep working, it comes back`, async () => {
    const c = await cluster({ transport: { heartbeatMs: 100 * timeScale, peerTimeoutMs: 1000 * timeScale } });
    try {
      const apps = await appsOn(c);
      await Promise.all(apps.map((a, i) => a.cmd({ op: 'write-pattern', seed: 10 + i, ...quarter(i + 1) })));
      const [a1, a2, a3] = apps as [TestApp, TestApp, TestApp, TestApp];
      // a1 works on node 4's pages while node 4 dies.
      const working = a1.cmd({ op: 'write-pattern', seed: 20, ...quarter(4) }).then(() => a1.cmd({ op: 'check-pattern', seed: 20, ...quarter(4) }));
      await c.stopNode(4, 'SIGKILL');
      assert.is(await a1.signal, 'SIGBUS', 'an access to a page of the lost node ends in SIGBUS');
      assert.ok((await working).error, 'the app did not finish its work on the lost pages');
      assert.ok(
        c.nodeLog(1).some((l) => /app \d+: access to page \d+ of region data fails with SIGBUS: its home, node 4, has been unreachable/.test(l)),
        'node 1 logs which access failed and why',
      );
      // Pages homed elsewhere: untouched by the loss, on every surviving node.
      for (const a of [a2, a3]) {
        for (const n of [1, 2, 3]) assert.equal(await a.cmd({ op: 'check-pattern', seed: 10 + n - 1, ...quarter(n) }), { bad: 0, firstBad: -1 });
      }
      assert.equal(await a2.cmd({ op: 'write-pattern', seed: 30, ...quarter(3) }), { ok: true });
      assert.equal(await a3.cmd({ op: 'check-pattern', seed: 30, ...quarter(3) }), { bad: 0, firstBad: -1 });
      // Back again: its pages serve once more.
      await c.start(4);
      await c.linked();
      const late = await c.app(4, 'data');
      assert.equal(await a2.cmd({ op: 'write-pattern', seed: 40, ...quarter(4) }), { ok: true });
      assert.equal(await late.cmd({ op: 'check-pattern', seed: 40, ...quarter(4) }), { bad: 0, firstBad: -1 });
    } finally {
      await c.close();
    }
  });
}

async function pageMoves(apps: TestApp[]): Promise<number> {
  const stats = await Promise.all(apps.map((a) => a.cmd({ op: 'stats' })));
  return stats.reduce((s, st) => s + st.regions.data.pagesFromRemote + st.regions.data.pagesFromSegment, 0);
}
