// The examples as a user runs them: four worker processes each, on one local cluster,
// one after the other (each frees what it allocated, so the next finds its names free).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCluster } from './helpers/cluster.js';
import { runWorkers } from '../cli/demo.js';

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../examples');
const MiB = 1 << 20;

test('counter-table and matmul, four workers each, get exact results', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: 8 * MiB }] });
  try {
    const four = new Array<string>(4).fill(c.files.nodes[0]!.socketDir);
    for (let round = 0; round < 2; round++) {
      const counters = await runWorkers<Record<string, unknown>>(path.join(EXAMPLES, 'counter-table.js'), four, ['5000']);
      assert.equal(counters, { workers: 4, increments: 5000, expected: 20000, total: 20000, wrongCounters: 0, ok: true }, `counter-table, round ${round}`);
      const matmul = await runWorkers<Record<string, unknown>>(path.join(EXAMPLES, 'matmul.js'), four, ['64']);
      assert.equal(matmul, { n: 64, workers: 4, mismatches: 0, ok: true }, `matmul, round ${round}`);
    }
    const app = await c.app(1, 'data');
    const stats = await app.cmd({ op: 'heap-stats' });
    assert.equal({ blocks: stats.blocks, freeExtents: stats.freeExtents }, { blocks: 0, freeExtents: 1 }, 'the examples freed their blocks');
  } finally {
    await c.close();
  }
});

test.run();
