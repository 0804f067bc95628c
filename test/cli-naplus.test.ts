// The naplus command as a user drives it: local cluster up/status/stats/down, the demo,
// and bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const NAPLUS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/naplus.js');

function naplus(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [NAPLUS, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('cluster up, status, stats and down', () => {
  const name = `cli${process.pid}`;
  const up = naplus('cluster', 'up', '--name', name, '--size', '8M');
  assert.is(up.code, 0, up.err);
  assert.match(up.out, /node 1 on h1 up \(pid \d+\)/);
  try {
    assert.match(naplus('cluster', 'up', '--name', name).err, /already up; stop it with `naplus cluster down --name/);
    const status = naplus('cluster', 'status', '--name', name);
    assert.is(status.code, 0);
    assert.match(status.out, /1\s+h1\s+\d+\s+running\s+0\s+0/);
    const stats = naplus('stats', '--name', name);
    assert.match(stats.out, /data\s+0\s+0/);
  } finally {
    const down = naplus('cluster', 'down', '--name', name);
    assert.is(down.code, 0, down.err);
  }
  assert.match(naplus('cluster', 'status', '--name', name).err, /No local cluster '.*' is up; start one with `naplus cluster up --name/);
  assert.ok(!fs.existsSync(`/dev/shm/naplus-${name}-h1`), 'the segment is removed');
});

test('bad input is one clear line and a non-zero exit', () => {
  const r = naplus('cluster', 'up', '--hosts', 'two');
  assert.is(r.code, 1);
  assert.match(r.err, /--hosts must be an integer from 1 to 64, got 'two'/);
  assert.match(naplus('stats', '--node', '/nonexistent/sock').out, /No Naplus node answers at \/nonexistent\/sock/);
  assert.match(naplus('demo', '--n', '3').err, /--n must be an integer from 4 to 4096/);
});

test('the demo multiplies matrices with four apps and checks the result', () => {
  const r = naplus('demo', '--n', '96');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /Result check: PASSED: C = A x B matches a single-process multiply \(0 of 9216 entries differ\)/);
  assert.match(r.out, /node\s+host\s+faults\s+from cache\s+from segment/);
});

test.run();
