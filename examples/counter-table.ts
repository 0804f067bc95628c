// A shared table of counters, incremented with Atomics from every worker at once.
// Sequential consistency makes Atomics.add correct across nodes (a contended counter's
// page moves between nodes, so contention costs time, never correctness).
//   NAPLUS_SOCKET_DIR=<node's socket dir> node dist/examples/counter-table.js <worker> <workers> [increments]
// Once all workers are attached (a startup barrier that gives up after a while), worker 0
// allocates the table as the named block 'counters'; after a barrier every
// worker looks it up and adds its increments; after a second barrier worker 0 checks
// every counter against the exact count, prints the result and frees the table.
import { attach } from '../src/index.js';
import { meetAll } from './startup.js';

const [worker, workers, increments] = [Number(process.argv[2] ?? 0), Number(process.argv[3] ?? 1), Number(process.argv[4] ?? 1000)];
const COUNTERS = 64;

/** The counter that worker `w` bumps at its k-th increment: each worker in its own order. */
const counterOf = (w: number, k: number) => (k * 7 + w * 13) % COUNTERS;

const region = await attach('data');
// Everyone is attached before anything is allocated: a worker that fails to start
// leaves nothing behind (see startup.ts).
await meetAll(region, 'counters.start', worker, workers);
if (worker === 0) {
  // malloc does not clear memory: the block may hold what a freed block left there.
  new Int32Array((await region.malloc(COUNTERS * Int32Array.BYTES_PER_ELEMENT, { name: 'counters' })).buffer).fill(0);
}
await region.barrier('counters.ready', workers);
const block = await region.lookup('counters');
const table = new Int32Array(block.buffer);

for (let k = 0; k < increments; k++) Atomics.add(table, counterOf(worker, k), 1);
await region.barrier('counters.done', workers);

if (worker === 0) {
  const expected = new Int32Array(COUNTERS);
  for (let w = 0; w < workers; w++) for (let k = 0; k < increments; k++) expected[counterOf(w, k)]!++;
  const wrong = expected.filter((e, i) => Atomics.load(table, i) !== e).length;
  const total = table.reduce((s, v) => s + v, 0);
  const result = { workers, increments, expected: increments * workers, total, wrongCounters: wrong, ok: wrong === 0 && total === increments * workers };
  console.log(JSON.stringify(result));
  if (process.send) process.send({ result });
  await region.free(block);
}
await region.detach();
