// The application benchmark end to end at smoke-test sizes on two simulated hosts of
// one node each: each kernel, by both versions, computes the sequential result; pages
// cross hosts; the JSON line has every figure; nothing is left behind. No timing
// thresholds: on a shared machine the times are noise at these sizes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { namespacesUnavailable } from '../src/netns.js';
import { References } from '../bench/apps/suite.js';

const RUN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bench/run.js');
const KERNELS = ['matmul', 'jacobi', 'sort'];

test('apps --quick --json on 2 hosts: every figure, every result checked, nothing left behind', () => {
  const r = spawnSync(process.execPath, [RUN, 'apps', '--quick', '--json', '--hosts', '2', '--nodes-per-host', '1'], { encoding: 'utf8', timeout: 120_000 });
  assert.is(r.status, 0, r.stderr);
  const figures = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
  const shaped = namespacesUnavailable() === undefined;
  assert.equal([figures.hosts, figures.nodes_per_host, figures.workers], [2, 1, 4]);
  for (const k of KERNELS) {
    for (const f of ['naplus_s', 'mp_s', 'naplus_1w_s', 'mp_1w_s', 'ratio', 'naplus_speedup', 'mp_speedup']) {
      assert.ok(figures[`${k}_${f}`]! > 0, `${k}_${f} is ${figures[`${k}_${f}`]}`);
    }
    // Loopback: both versions with 4 workers and with 1; shaped: MP, Naplus LZ4, Naplus raw at two rates.
    assert.is(figures[`${k}_verified_runs`], shaped ? 10 : 4);
    // Two workers a host: each kernel reads pages the other host wrote.
    assert.ok(figures[`${k}_naplus_remote_faults`]! > 0 && figures[`${k}_naplus_wire_mib`]! > 0, `${k}: pages crossed hosts`);
    if (shaped) {
      for (const rate of ['1gbit', '10gbit']) {
        assert.ok(figures[`${k}_${rate}_lz4_ratio`]! > 0 && figures[`${k}_${rate}_raw_ratio`]! > 0);
        assert.ok(figures[`${k}_${rate}_raw_wire_mib`]! > 0, `${k}: pages crossed the ${rate} link`);
      }
    }
  }
  assert.match(r.stdout, /## apps: Naplus vs message passing \(2 host\(s\) x 1 node\(s\), 4 workers, loopback\)/);
  assert.match(r.stdout, /## apps: data moved in the parallel phase of one run with 4 workers/);
  assert.match(r.stdout, shaped ? /## apps over rate-shaped links \(2 host/ : /apps over rate-shaped links\n\nSkipped: /);
  assert.ok(!fs.readdirSync('/dev/shm').some((f) => f.startsWith(`naplus-bapps${r.pid}x`)), 'segments removed');
  if (shaped) assert.not.match(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout, `nbapps${r.pid}`);
});

test('a result that differs from the sequential one fails loudly', () => {
  const refs = new References({ matmul: { n: 8 }, jacobi: { n: 8, iterations: 2, tolerance: 0 }, sort: { n: 8 } });
  assert.throws(() => refs.check('sort', 'test run', '00'), /WRONG RESULT: sort \(test run\) computed a result whose SHA-256 is 00; the sequential result's is [0-9a-f]{64}/);
  assert.is(refs.verifiedRuns.get('sort'), undefined);
});

test.run();
