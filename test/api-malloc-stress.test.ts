// Several apps at once doing random malloc/free of random sizes (seeded: set
// NAPLUS_SEED to replay a failure). Every block carries a pattern of its own, checked
// before it is freed, so blocks that overlapped would show; once every app has freed
// everything, the heap is one free extent again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCluster } from './helpers/cluster.js';

const MiB = 1 << 20;
const APPS = 4;
const seed = Number(process.env.NAPLUS_SEED ?? Math.floor(Math.random() * 2 ** 31));

test(`random malloc/free from ${APPS} apps at once never overlaps, and frees back to one extent`, async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: 2 * MiB }] });
  const replay = `(replay with NAPLUS_SEED=${seed})`;
  try {
    const apps = await Promise.all(Array.from({ length: APPS }, () => c.app(1, 'data')));
    const runs = await Promise.all(apps.map((app, i) => app.cmd({ op: 'heap-stress', seed: seed + i, rounds: 1000, maxBytes: 96 * 1024 })));
    for (const [i, r] of runs.entries()) {
      assert.is(r.error, undefined, `app ${i}: ${r.error} ${replay}`);
      assert.equal(r.damaged, [], `app ${i} ${replay}`);
      assert.is(r.frees, r.mallocs, `app ${i} freed all it allocated ${replay}`);
    }
    const sum = (k: string) => runs.reduce((s, r) => s + r[k], 0);
    console.log(`seed ${seed}: ${sum('mallocs')} mallocs, ${sum('enomem')} ENOMEM, ${sum('lookups')} lookups, up to ${Math.max(...runs.map((r) => r.maxLive))} live blocks per app`);
    assert.ok(sum('enomem') > 0, `the region filled up at times ${replay}`);
    const stats = await apps[0]!.cmd({ op: 'heap-stats' });
    assert.equal(
      { blocks: stats.blocks, used: stats.used, freeExtents: stats.freeExtents, largestFree: stats.largestFree },
      { blocks: 0, used: 0, freeExtents: 1, largestFree: stats.bytes },
      `the whole heap is one free extent again ${replay}`,
    );
  } finally {
    await c.close();
  }
});

test.run();
