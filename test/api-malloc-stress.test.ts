// Several apps at once doing random malloc/free of random sizes (seeded: set
// NAPLUS_SEED to replay a failure). Every block carries a pattern of its own, checked
// before it is freed, so blocks that overlapped would show; once every app has freed
// everything, the heap is one free extent again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCluster } from './helpers/cluster.js';
import { stressHeap, stressSeed } from './helpers/heap-stress.js';

const MiB = 1 << 20;
const APPS = 4;

test(`random malloc/free from ${APPS} apps at once never overlaps, and frees back to one extent`, async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: 2 * MiB }] });
  try {
    const apps = await Promise.all(Array.from({ length: APPS }, () => c.app(1, 'data')));
    const runs = await stressHeap(apps, 1000, 96 * 1024);
    assert.ok(runs.some((r) => r.enomem > 0), `the region filled up at times (replay with NAPLUS_SEED=${stressSeed})`);
  } finally {
    await c.close();
  }
});

test.run();
