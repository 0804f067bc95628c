// The application benchmark end to end at smoke-test sizes on two simulated hosts of
// one node each: each kernel, by both versions (Naplus with sequential and with release
// consistency), computes the sequential result; pages cross hosts; the JSON line has
// every figure; nothing is left behind. No timing thresholds: on a shared machine the
// times are noise at these sizes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { namespacesUnavailable } from '../src/netns.js';
import { References, type SuiteOptions } from '../bench/apps/suite.js';
import { figureKey } from '../bench/apps/report.js';

const RUN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bench/run.js');
const KERNELS = ['matmul', 'jacobi', 'sort'];

test('apps --quick --json on 2 hosts: every figure, every result checked, nothing left behind', () => {
  const r = spawnSync(process.execPath, [RUN, 'apps', '--quick', '--json', '--hosts', '2', '--nodes-per-host', '1'], { encoding: 'utf8', timeout: 120_000 });
  assert.is(r.status, 0, r.stderr);
  const figures = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
  const shaped = namespacesUnavailable() === undefined;
  assert.equal([figures.hosts, figures.nodes_per_host, figures.workers], [2, 1, 4]);
  for (const k of KERNELS) {
    for (const f of ['mp_s', 'mp_1w_s', 'mp_speedup']) assert.ok(figures[`${k}_${f}`]! > 0, `${k}_${f} is ${figures[`${k}_${f}`]}`);
    // Loopback: MP and Naplus in both consistencies, with 4 workers and with 1; shaped: MP, and Naplus LZ4 and raw in both, at two rates.
    assert.is(figures[`${k}_verified_runs`], shaped ? 16 : 6);
    for (const mode of ['', 'release_']) {
      for (const f of ['naplus_s', 'naplus_1w_s', 'ratio', 'naplus_speedup']) assert.ok(figures[`${k}_${mode}${f}`]! > 0, `${k}_${mode}${f} is ${figures[`${k}_${mode}${f}`]}`);
      // Two workers a host: each kernel reads pages the other host wrote.
      assert.ok(figures[`${k}_${mode}naplus_remote_faults`]! > 0, `${k} (${mode || 'sequential'}): pages crossed hosts`);
      if (shaped) {
        for (const rate of ['1gbit', '10gbit']) {
          assert.ok(figures[`${k}_${mode}${rate}_lz4_ratio`]! > 0 && figures[`${k}_${mode}${rate}_raw_ratio`]! > 0);
          assert.ok(figures[`${k}_${mode}${rate}_raw_wire_mib`]! > 0, `${k} (${mode || 'sequential'}): pages crossed the ${rate} link`);
        }
      }
    }
    // Release consistency writes go home as diffs, from twins.
    assert.ok(figures[`${k}_release_naplus_twins`]! > 0 && figures[`${k}_release_naplus_diffs`]! > 0 && figures[`${k}_release_naplus_diff_mib`]! > 0, `${k}: diffs`);
    assert.is(figures[`${k}_naplus_diffs`], 0, 'sequential consistency sends no diffs');
  }
  assert.match(r.stdout, /## apps: Naplus vs message passing \(2 host\(s\) x 1 node\(s\), 4 workers, loopback\)/);
  assert.match(r.stdout, /kernel\s+consistency\s+problem/, 'sequential and release side by side');
  assert.match(r.stdout, /twins\s+diffs\s+diff MiB/);
  assert.match(r.stdout, /## apps: data moved in the parallel phase of one run with 4 workers/);
  assert.match(r.stdout, shaped ? /## apps over rate-shaped links \(2 host/ : /apps over rate-shaped links\n\nSkipped: /);
  assert.ok(!fs.readdirSync('/dev/shm').some((f) => f.startsWith(`naplus-bapps${r.pid}x`)), 'segments removed');
  if (shaped) assert.not.match(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout, `nbapps${r.pid}`);
});

test('--consistency names one mode: its figures take the plain names (matmul_ratio); a bad one is refused', () => {
  const only = figureKey({ modes: ['release'] } as unknown as SuiteOptions, 'release');
  assert.is(only('matmul', 'ratio'), 'matmul_ratio');
  const both = { modes: ['sequential', 'release'] } as unknown as SuiteOptions;
  assert.is(figureKey(both, 'sequential')('jacobi', 'ratio'), 'jacobi_ratio');
  assert.is(figureKey(both, 'release')('jacobi', 'ratio'), 'jacobi_release_ratio');
  const bad = spawnSync(process.execPath, [RUN, 'apps', '--consistency', 'weak'], { encoding: 'utf8' });
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--consistency must be sequential or release, got 'weak'/);
});

test('a result that differs from the sequential one fails loudly', () => {
  const refs = new References({ matmul: { n: 8 }, jacobi: { n: 8, iterations: 2, tolerance: 0 }, sort: { n: 8 } });
  assert.throws(() => refs.check('sort', 'test run', '00'), /WRONG RESULT: sort \(test run\) computed a result whose SHA-256 is 00; the sequential result's is [0-9a-f]{64}/);
  assert.is(refs.verifiedRuns.get('sort'), undefined);
});

test.run();
