// Parallel matrix multiply on Naplus shared memory: C = A x B (float64, n x n).
// Run one worker per node:
//   NAPLUS_SOCKET_DIR=<node's socket dir> node dist/examples/matmul.js <worker> <workers> [n]
// Once all workers are attached (a startup barrier that gives up after a while), worker
// 0 allocates the three matrices as named blocks of the region's heap and fills A and B; after a barrier every worker looks them up by name and computes its block of
// rows of C; worker 0 then checks C against a single-process multiply, prints the result
// check and frees the matrices.
import { attach } from '../src/index.js';
import { meetAll } from './startup.js';

const [worker, workers, n] = [Number(process.argv[2] ?? 0), Number(process.argv[3] ?? 1), Number(process.argv[4] ?? 256)];
const bytes = n * n * 8;

/** Deterministic, exactly representable inputs so every node computes the same C. */
const a = (i: number, j: number) => ((i * 7 + j * 3) % 17) - 8;
const b = (i: number, j: number) => ((i * 5 + j * 11) % 13) - 6;

const region = await attach('data');

/** Worker 0: allocates matrix `name` in the region's heap, filled with f(i, j). */
async function allocate(name: string, f: (i: number, j: number) => number): Promise<void> {
  const m = new Float64Array((await region.malloc(bytes, { name })).buffer);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) m[i * n + j] = f(i, j);
}

// Everyone is attached before anything is allocated: a worker that fails to start
// leaves nothing behind (see startup.ts).
await meetAll(region, 'matmul.start', worker, workers);
if (worker === 0) {
  // Blocks of a page or more are whole pages: the matrices share no page, so writing C
  // never makes a page of A or B bounce between nodes.
  await allocate('A', a);
  await allocate('B', b);
  await allocate('C', () => 0);
}
await region.barrier('matmul.ready', workers);

const blocks = await Promise.all(['A', 'B', 'C'].map((name) => region.lookup(name)));
const [A, B0, C] = blocks.map((block) => new Float64Array(block.buffer));
// One sequential scan copies B here (readahead makes it cheap); the inner loop then
// reads local memory instead of faulting on B's pages column by column.
const B = B0.slice();
const from = Math.floor((worker * n) / workers);
const to = Math.floor(((worker + 1) * n) / workers);
const row = new Float64Array(n);
for (let i = from; i < to; i++) {
  row.fill(0);
  for (let k = 0; k < n; k++) {
    const aik = A[i * n + k]!;
    for (let j = 0; j < n; j++) row[j]! += aik * B[k * n + j]!;
  }
  C.set(row, i * n);
  if (process.send) process.send({ progress: (i + 1 - from) / (to - from) });
}
await region.barrier('matmul.done', workers);

if (worker === 0) {
  let mismatches = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let sum = 0;
    for (let k = 0; k < n; k++) sum += a(i, k) * b(k, j);
    if (C[i * n + j] !== sum) mismatches++;
  }
  const result = { n, workers, mismatches, ok: mismatches === 0 };
  console.log(JSON.stringify(result));
  if (process.send) process.send({ result });
  for (const block of blocks) await region.free(block);
}
await region.detach();
