// Both examples as a user runs them in the guests: one worker per guest, each attached
// to its guest's node, all sharing one memory across the two simulated hosts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeGuestCluster, runInGuest, type GuestTestCluster } from './helpers/guest-cluster.js';

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples');
const MiB = 1 << 20;

/** Runs `example` in every guest at once (worker i in guest i); returns worker 0's result line. */
async function workers(c: GuestTestCluster, example: string, args: string[]): Promise<unknown> {
  const guests = c.state.guests;
  const runs = await Promise.all(guests.map((g, i) =>
    runInGuest(c.state, g.name, [process.execPath, path.join(EXAMPLES, example), String(i), String(guests.length), ...args], { NAPLUS_SOCKET_DIR: c.cluster.socketDir })));
  runs.forEach((r, i) => assert.equal([r.code, r.signal], [0, null], `worker ${i} of ${example} in ${guests[i]!.name} exited cleanly:\n${r.stderr}`));
  return JSON.parse(runs[0]!.stdout.trim().split('\n').pop()!);
}

test('counter-table and matmul (n = 256), one worker per guest, get exact results', async () => {
  const c = await makeGuestCluster({ hosts: 2, nodesPerHost: 2, regions: [{ name: 'data', size: 16 * MiB }] });
  try {
    assert.equal(await workers(c, 'counter-table.js', ['2000']), { workers: 4, increments: 2000, expected: 8000, total: 8000, wrongCounters: 0, ok: true });
    assert.equal(await workers(c, 'matmul.js', ['256']), { n: 256, workers: 4, mismatches: 0, ok: true });
  } finally {
    await c.close();
  }
});

test.run();
