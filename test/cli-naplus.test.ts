// The naplus command as a user drives it: local cluster up/status/stats/down, the demo,
// and bad input.
import { test } from 'uvu';
import { XMLValidator } from 'fast-xml-parser';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
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
    assert.match(stats.out, /consistency\s+twins\/diffs \(KiB\)\n/, 'the region\'s consistency, and release consistency\'s counters');
    assert.match(stats.out, /sequential\s+-\n/);
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

test('the demo multiplies matrices on 2 hosts x 2 nodes, checks the result and reports what it cost', () => {
  const svg = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-demo-test-')), 'faults.svg');
  const r = naplus('demo', '--n', '96', '--svg', svg);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /Starting 4 nodes on 2 simulated hosts/);
  assert.match(r.out, /all 4 nodes linked to each other/);
  assert.match(r.out, /Result check: PASSED: C = A x B matches a single-process multiply \(0 of 9216 entries differ\)/);
  assert.match(r.out, /node\s+host\s+faults\s+from cache\s+from segment\s+from remote/);
  // Nodes 3 and 4 are on the other host from the matrices' pages: they fetched some over the links.
  const row = (id: number) => new RegExp(`^${id}\\s+h${id < 3 ? 1 : 2}\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`, 'm').exec(r.out);
  assert.ok(Number(row(3)![4]) > 0 && Number(row(4)![4]) > 0, 'nodes of the other host served faults from remote');
  assert.match(r.out, /Links carried \d+ KiB in all \(page data \d+ KiB raw, \d+ KiB on the wire: [\d.]+x smaller/);
  assert.match(r.out, /Fault trace: \d+ faults recorded/);
  assert.match(r.out, new RegExp(`Heatmap of the faults over time, by page and source: ${svg}`));
  const drawn = fs.readFileSync(svg, 'utf8');
  assert.is(XMLValidator.validate(drawn), true, 'the heatmap is well-formed XML');
  assert.match(drawn, /<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  fs.rmSync(path.dirname(svg), { recursive: true });
});

test.run();
