// Sample sort (sorting by regular sampling) of n float64 keys: each worker sorts a
// block, all agree on workers-1 splitters from regular samples of every block, then
// worker j merges bucket j of every block into its place of the output.
// Naplus: rank 0 writes the keys into the region; each worker sorts its block in
//   place, publishes its samples and bucket bounds in pages of its own, and merges the
//   buckets it owns straight from the others' blocks into the output array.
// Message passing: rank 0 scatters the blocks, gathers the samples and broadcasts the
//   splitters; an all-to-all exchange moves the buckets; rank 0 gathers the output.
import { bucketBounds, fillKeys, mergeRuns, regularSamples, share, splitters } from './kernels.js';
import { slot } from './blocks.js';
import type { Kernel } from './team.js';

/** Message tags: a block of keys, samples, splitters, a bucket, a merged bucket. */
const TAG = { block: 1, samples: 2, splitters: 3, bucket: 4, result: 5 };

export interface SortParams {
  n: number;
}

export const sort: Kernel<SortParams> = {
  // Keys, output, and a page per worker for its samples and one for its bucket bounds.
  blocks: ({ n }, workers, pageSize) => [n * 8, n * 8, workers * pageSize, workers * pageSize],

  sequential({ n }) {
    const keys = new Float64Array(n);
    fillKeys(keys);
    return keys.sort();
  },

  async naplus(team, { n }) {
    const { rank, workers, region } = team;
    const [keys, out, samples, bounds] = team.blocks as [Float64Array, Float64Array, Float64Array, Float64Array];
    const page = region.pageSize;
    if (rank === 0) fillKeys(keys);
    await team.begin();
    const mine = keys.subarray(...share(n, workers, rank)).sort();
    slot(samples, rank, page).set(regularSamples(mine, workers));
    await team.barrier('sampled');
    const all = new Float64Array(workers * workers);
    for (let w = 0; w < workers; w++) all.set(slot(samples, w, page).subarray(0, workers), w * workers);
    slot(bounds, rank, page).set(bucketBounds(mine, splitters(all, workers)));
    await team.barrier('bounded');
    const runs: Float64Array[] = [];
    let start = 0;
    for (let w = 0; w < workers; w++) {
      const first = share(n, workers, w)[0];
      const b = slot(bounds, w, page);
      runs.push(keys.subarray(first + b[rank]!, first + b[rank + 1]!));
      start += b[rank]!;
    }
    mergeRuns(runs, out.subarray(start, start + runs.reduce((s, r) => s + r.length, 0)));
    await team.barrier('done');
    team.end();
    return rank === 0 ? out : undefined;
  },

  async mp(team, { n }) {
    const { mesh, rank, workers } = team;
    const keys = new Float64Array(rank === 0 ? n : 0);
    if (rank === 0) fillKeys(keys);
    await team.begin();
    if (rank === 0) {
      for (let w = 1; w < workers; w++) mesh.send(w, TAG.block, keys.subarray(...share(n, workers, w)));
      await mesh.flush();
    }
    const mine = (rank === 0 ? keys.subarray(...share(n, workers, 0)) : await mesh.recv(0, TAG.block)).sort();
    let split: Float64Array;
    if (rank === 0) {
      const all = new Float64Array(workers * workers);
      all.set(regularSamples(mine, workers));
      for (let w = 1; w < workers; w++) all.set(await mesh.recv(w, TAG.samples), w * workers);
      split = splitters(all, workers);
      for (let w = 1; w < workers; w++) mesh.send(w, TAG.splitters, split);
    } else {
      mesh.send(0, TAG.samples, regularSamples(mine, workers));
      split = await mesh.recv(0, TAG.splitters);
    }
    const b = bucketBounds(mine, split);
    for (let w = 0; w < workers; w++) if (w !== rank) mesh.send(w, TAG.bucket, mine.subarray(b[w], b[w + 1]));
    const runs: Float64Array[] = [];
    for (let w = 0; w < workers; w++) runs.push(w === rank ? mine.subarray(b[w], b[w + 1]) : await mesh.recv(w, TAG.bucket));
    await mesh.flush();
    const merged = new Float64Array(runs.reduce((s, r) => s + r.length, 0));
    mergeRuns(runs, merged);
    if (rank !== 0) {
      mesh.send(0, TAG.result, merged);
      return undefined;
    }
    const out = new Float64Array(n);
    out.set(merged);
    for (let w = 1, at = merged.length; w < workers; w++) {
      const bucket = await mesh.recv(w, TAG.result);
      out.set(bucket, at);
      at += bucket.length;
    }
    team.end();
    return out;
  },
};
