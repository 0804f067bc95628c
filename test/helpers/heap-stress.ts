// The seeded heap stress shared by the one-node and cross-host tests: every app runs
// random malloc/free at once (the fixture's 'heap-stress'), nothing any app wrote into
// its blocks was overwritten, and afterwards the heap is one free extent again. Failures
// say how to replay the run (NAPLUS_SEED).
import * as assert from 'uvu/assert';
import type { TestApp } from './cluster.js';

export const stressSeed = Number(process.env.NAPLUS_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** Runs the stress in `apps` at once and checks it; resolves with the apps' counts. */
export async function stressHeap(apps: TestApp[], rounds: number, maxBytes: number): Promise<Array<Record<string, any>>> {
  const replay = `(replay with NAPLUS_SEED=${stressSeed})`;
  const runs = await Promise.all(apps.map((app, i) => app.cmd({ op: 'heap-stress', seed: stressSeed + i, rounds, maxBytes })));
  for (const [i, r] of runs.entries()) {
    assert.is(r.error, undefined, `app ${i}: ${r.error} ${replay}`);
    assert.equal(r.damaged, [], `app ${i} ${replay}`);
    assert.is(r.frees, r.mallocs, `app ${i} freed all it allocated ${replay}`);
  }
  const sum = (k: string) => runs.reduce((s, r) => s + r[k], 0);
  console.log(`seed ${stressSeed}: ${sum('mallocs')} mallocs, ${sum('enomem')} ENOMEM, ${sum('lookups')} lookups, up to ${Math.max(...runs.map((r) => r.maxLive))} live blocks per app`);
  const stats = await apps[0]!.cmd({ op: 'heap-stats' });
  assert.equal(
    { blocks: stats.blocks, used: stats.used, freeExtents: stats.freeExtents, largestFree: stats.largestFree },
    { blocks: 0, used: 0, freeExtents: 1, largestFree: stats.bytes },
    `the whole heap is one free extent again ${replay}`,
  );
  return runs;
}
