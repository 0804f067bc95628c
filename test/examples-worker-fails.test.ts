// When a worker of an example fails to attach, the others do not wait at a barrier
// forever: the launcher stops them at once and names the one that failed, and a worker
// started by hand gives up at its startup barrier after STARTUP_TIMEOUT_S. Either way,
// nothing was allocated yet, so the example runs again at once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { makeCluster } from './helpers/cluster.js';
import { runWorkers } from '../cli/demo.js';
import { ROOT } from './helpers/cli.js';

const EXAMPLES = path.join(ROOT, 'dist/examples');
const MiB = 1 << 20;

test('the launcher stops the other workers when one fails to attach, and says which', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: 8 * MiB }] });
  try {
    const good = c.files.nodes[0]!.socketDir;
    const started = Date.now();
    const failed = await runWorkers(path.join(EXAMPLES, 'matmul.js'), [good, good, '/nonexistent/node', good], ['64']).then(() => undefined, (err: Error) => err);
    assert.ok(failed, 'the run failed');
    assert.match(failed!.message, /^worker 2 of matmul\.js \(NAPLUS_SOCKET_DIR=\/nonexistent\/node\) exited with 1; the other workers were stopped$/);
    assert.ok(Date.now() - started < 30_000, 'long before any startup timeout');
    // Nothing was allocated before all had met: the example runs again.
    assert.equal(await runWorkers(path.join(EXAMPLES, 'matmul.js'), [good, good], ['32']), { n: 32, workers: 2, mismatches: 0, ok: true });
  } finally {
    await c.close();
  }
});

test('a worker started by hand gives up at its startup barrier after STARTUP_TIMEOUT_S', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: 8 * MiB }] });
  try {
    const socketDir = c.files.nodes[0]!.socketDir;
    const r = spawnSync(process.execPath, [path.join(EXAMPLES, 'counter-table.js'), '0', '2', '10'], { encoding: 'utf8', env: { ...process.env, NAPLUS_SOCKET_DIR: socketDir, STARTUP_TIMEOUT_S: '1' }, timeout: 60_000 });
    assert.is(r.status, 1, r.stderr);
    assert.match(r.stderr, /^worker 0: only some of the 2 workers reached barrier 'counters.start' within 1 s; one probably failed to start/);
    // Its arrival was forgotten: a full run now gets the exact result.
    const again = await runWorkers<Record<string, unknown>>(path.join(EXAMPLES, 'counter-table.js'), [socketDir, socketDir], ['100']);
    assert.equal(again, { workers: 2, increments: 100, expected: 200, total: 200, wrongCounters: 0, ok: true });
  } finally {
    await c.close();
  }
});

test.run();
