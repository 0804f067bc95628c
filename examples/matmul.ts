// Parallel matrix multiply on Naplus shared memory: C = A x B (float64, n x n).
// Run one worker per node:
//   NAPLUS_SOCKET_DIR=<node's socket dir> node dist/examples/matmul.js <worker> <workers> [n]
// Worker 0 fills A and B; every worker computes its block of rows of C; worker 0 then
// checks C against a single-process multiply and prints the result check. The three
// matrices sit at fixed, page-aligned offsets of the region.
import { attach } from '../src/index.js';

const [worker, workers, n] = [Number(process.argv[2] ?? 0), Number(process.argv[3] ?? 1), Number(process.argv[4] ?? 256)];
const bytes = n * n * 8;

/** Deterministic, exactly representable inputs so every node computes the same C. */
const a = (i: number, j: number) => ((i * 7 + j * 3) % 17) - 8;
const b = (i: number, j: number) => ((i * 5 + j * 11) % 13) - 6;

const region = await attach('data');
const slot = Math.ceil(bytes / region.pageSize) * region.pageSize;
if (3 * slot > region.size) throw new Error(`Region '${region.name}' holds ${region.size} bytes; ${n}x${n} needs ${3 * slot}`);
const matrix = (k: number) => new Float64Array(region.view(k * slot, bytes));
if (worker === 0) {
  const A = matrix(0);
  const B = matrix(1);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    A[i * n + j] = a(i, j);
    B[i * n + j] = b(i, j);
  }
}
await region.barrier('matmul.ready', workers);

const A = matrix(0);
// One sequential scan copies B here (readahead makes it cheap); the inner loop then
// reads local memory instead of faulting on B's pages column by column.
const B = matrix(1).slice();
const C = matrix(2);
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
}
await region.detach();
