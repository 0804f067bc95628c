// Jacobi relaxation on an n x n grid: sweeps until the largest change is below the
// tolerance or `iterations` sweeps are done. Interior rows are split into blocks; each
// sweep needs the neighbours' edge rows, and a global max of the change decides
// whether to go on (a reduction, so also a barrier).
// Naplus: two grids in the region (read one, write the other, swap); a worker reads
//   its neighbours' rows where they are; each writes its change into a page of its
//   own, and one barrier per sweep makes them all visible.
// Message passing: rank 0 scatters row blocks with their halo rows; after each sweep a
//   worker sends its edge rows to its neighbours and, while they travel, reduces the
//   change through rank 0; rank 0 gathers the blocks at the end.
import { fillGrid, relaxRows, share } from './kernels.js';
import { slot } from './blocks.js';
import type { Kernel } from './team.js';

/** Message tags: a block with its halo rows, an edge row, a finished block. */
const TAG = { block: 1, edge: 2, result: 3 };

export interface JacobiParams {
  n: number;
  iterations: number;
  tolerance: number;
}

/** Interior rows [from, to) of worker w: rows 0 and n-1 are the fixed boundary. */
function rows(n: number, workers: number, w: number): [number, number] {
  const [f, t] = share(n - 2, workers, w);
  return [f + 1, t + 1];
}

export const jacobi: Kernel<JacobiParams> = {
  // Two grids, and a change slot per worker for each of two sweeps in a row: a fast
  // worker writes sweep t+1's slot while a slow one still reads sweep t's.
  blocks: ({ n }, workers, pageSize) => [n * n * 8, n * n * 8, 2 * workers * pageSize],

  sequential({ n, iterations, tolerance }) {
    let [src, dst] = [new Float64Array(n * n), new Float64Array(n * n)];
    fillGrid(src, n);
    fillGrid(dst, n);
    for (let t = 0; t < iterations; t++) {
      const change = relaxRows(src, dst, n, 1, n - 1);
      [src, dst] = [dst, src];
      if (change < tolerance) break;
    }
    return src;
  },

  async naplus(team, { n, iterations, tolerance }) {
    const { rank, workers, region } = team;
    const [first, second, changes] = team.blocks as [Float64Array, Float64Array, Float64Array];
    if (rank === 0) {
      fillGrid(first, n);
      fillGrid(second, n);
    }
    let [src, dst] = [first, second];
    await team.begin();
    const [from, to] = rows(n, workers, rank);
    for (let t = 0; t < iterations; t++) {
      const parity = (t % 2) * workers;
      slot(changes, parity + rank, region.pageSize)[0] = relaxRows(src, dst, n, from, to);
      await team.barrier('sweep');
      let change = 0;
      for (let w = 0; w < workers; w++) change = Math.max(change, slot(changes, parity + w, region.pageSize)[0]!);
      [src, dst] = [dst, src];
      if (change < tolerance) break;
    }
    team.end();
    return rank === 0 ? src : undefined;
  },

  async mp(team, { n, iterations, tolerance }) {
    const { mesh, rank, workers } = team;
    const grid = new Float64Array(rank === 0 ? n * n : 0);
    if (rank === 0) fillGrid(grid, n);
    await team.begin();
    // A worker's block with one halo row above and below: local row r is global row from-1+r.
    const [from, to] = rows(n, workers, rank);
    const count = to - from;
    if (rank === 0) {
      for (let w = 1; w < workers; w++) {
        const [f, t] = rows(n, workers, w);
        mesh.send(w, TAG.block, grid.subarray((f - 1) * n, (t + 1) * n));
      }
      await mesh.flush();
    }
    let src: Float64Array = rank === 0 ? grid.slice((from - 1) * n, (to + 1) * n) : await mesh.recv(0, TAG.block);
    let dst: Float64Array = src.slice();
    const up = rank > 0;
    const down = rank < workers - 1;
    for (let t = 0; t < iterations; t++) {
      const change = relaxRows(src, dst, n, 1, count + 1);
      // No sweep follows the last one, so its edges go nowhere.
      const more = t < iterations - 1;
      if (more && up) mesh.send(rank - 1, TAG.edge, dst.subarray(n, 2 * n));
      if (more && down) mesh.send(rank + 1, TAG.edge, dst.subarray(count * n, (count + 1) * n));
      const max = await mesh.maxAll(change);
      if (more && up) dst.set(await mesh.recv(rank - 1, TAG.edge), 0);
      if (more && down) dst.set(await mesh.recv(rank + 1, TAG.edge), (count + 1) * n);
      [src, dst] = [dst, src];
      if (max < tolerance) break;
    }
    if (rank !== 0) {
      mesh.send(0, TAG.result, src.subarray(n, (count + 1) * n));
      return undefined;
    }
    grid.set(src.subarray(n, (count + 1) * n), from * n);
    for (let w = 1; w < workers; w++) grid.set(await mesh.recv(w, TAG.result), rows(n, workers, w)[0] * n);
    team.end();
    return grid;
  },
};
