// `npm run bench -- --help` prints how to run the benchmarks; an unknown option says so.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { ROOT } from './helpers/cli.js';

test('npm run bench -- --help prints the usage and exits 0', () => {
  const r = spawnSync('npm', ['run', '--silent', 'bench', '--', '--help'], { cwd: ROOT, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Usage: npm run bench -- \[fault-path\|transport\|dsm\|apps\|vm \.\.\.\]/);
  assert.match(r.stdout, /--write-docs/);
  const bad = spawnSync('npm', ['run', '--silent', 'bench', '--', '--nope'], { cwd: ROOT, encoding: 'utf8' });
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /Unknown option '--nope'[\s\S]*Usage: npm run bench/);
});

test.run();
