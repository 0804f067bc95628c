// Matrix multiply C = A x B, n x n float64, rows of C split into blocks, one per worker.
// Naplus: rank 0 writes A and B into the region; each worker reads its rows of A and
//   all of B where they are, writes its rows of C; a barrier says C is complete.
// Message passing: rank 0 holds A and B, sends each worker its rows of A and all of B,
//   and gathers the rows of C.
import { fillMatrices, multiplyRows, share } from './kernels.js';
import type { Kernel } from './team.js';

/** Message tags: rows of A, all of B, rows of C. */
const TAG = { a: 1, b: 2, c: 3 };

export interface MatmulParams {
  n: number;
}

export const matmul: Kernel<MatmulParams> = {
  blocks: ({ n }) => [n * n * 8, n * n * 8, n * n * 8],

  sequential({ n }) {
    const [a, b, c] = [new Float64Array(n * n), new Float64Array(n * n), new Float64Array(n * n)];
    fillMatrices(a, b, n);
    multiplyRows(a, b, c, n);
    return c;
  },

  async naplus(team, { n }) {
    const [a, b, c] = team.blocks as [Float64Array, Float64Array, Float64Array];
    if (team.rank === 0) fillMatrices(a, b, n);
    await team.begin();
    const [from, to] = share(n, team.workers, team.rank);
    multiplyRows(a.subarray(from * n, to * n), b, c.subarray(from * n, to * n), n);
    await team.barrier('done');
    team.end();
    return team.rank === 0 ? c : undefined;
  },

  async mp(team, { n }) {
    const { mesh, rank, workers } = team;
    const a = new Float64Array(rank === 0 ? n * n : 0);
    const b = new Float64Array(rank === 0 ? n * n : 0);
    if (rank === 0) fillMatrices(a, b, n);
    await team.begin();
    const [from, to] = share(n, workers, rank);
    if (rank !== 0) {
      const c = new Float64Array((to - from) * n);
      multiplyRows(await mesh.recv(0, TAG.a), await mesh.recv(0, TAG.b), c, n);
      mesh.send(0, TAG.c, c);
      return undefined;
    }
    for (let w = 1; w < workers; w++) {
      const [f, t] = share(n, workers, w);
      mesh.send(w, TAG.a, a.subarray(f * n, t * n));
      mesh.send(w, TAG.b, b);
    }
    await mesh.flush();
    const c = new Float64Array(n * n);
    multiplyRows(a.subarray(from * n, to * n), b, c.subarray(from * n, to * n), n);
    for (let w = 1; w < workers; w++) c.set(await mesh.recv(w, TAG.c), share(n, workers, w)[0] * n);
    team.end();
    return c;
  },
};
