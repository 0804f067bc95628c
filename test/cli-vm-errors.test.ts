// `naplus vm` on a machine that cannot run guests says what is missing and how to get
// it, in one line, with a non-zero exit: no root, no QEMU, no such cluster, a bad name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const NAPLUS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/naplus.js');
const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-empty-path-'));

function naplus(args: string[], options: { env?: NodeJS.ProcessEnv; prefix?: string[] } = {}) {
  const argv = [...(options.prefix ?? []), process.execPath, NAPLUS, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: options.env ?? process.env, cwd: os.tmpdir() });
  return { status: r.status, stderr: r.stderr.trim(), stdout: r.stdout.trim() };
}

test('without QEMU: the error names it and gives the install command', () => {
  if (process.getuid?.() !== 0) return console.log('SKIP: the QEMU check comes after the root check, and this is not root');
  const r = naplus(['vm', 'up', '--name', 'noqemu'], { env: { ...process.env, PATH: empty } });
  assert.is(r.status, 1);
  assert.is(r.stderr, 'naplus: QEMU is not installed (no qemu-system-x86_64 in PATH); install it with `apt-get install --no-install-recommends qemu-system-x86`');
});

test('without root: the error says why root is needed', () => {
  const asNobody = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
  const r = naplus(['vm', 'up', '--name', 'noroot'], { prefix: asNobody });
  assert.is(r.status, 1);
  assert.match(r.stderr, /^naplus: naplus vm needs root: it makes a network namespace with a bridge and tap devices for the guests/);
});

test('no such cluster, no such name: one line each', () => {
  for (const cmd of [['status'], ['down'], ['exec'], ['exec', 'g1', '--', 'true']]) {
    const r = naplus(['vm', cmd[0]!, '--name', 'nosuchcluster', ...cmd.slice(1)]);
    if (cmd.length === 1 && cmd[0] === 'exec') assert.equal([r.status, r.stderr], [1, "error: missing required argument 'guest'"], 'exec with no guest');
    else assert.equal([r.status, r.stderr], [1, "naplus: No virtual cluster 'nosuchcluster' is up; start one with `naplus vm up --name nosuchcluster`"], cmd.join(' '));
  }
  const r = naplus(['vm', 'status', '--name', 'Bad Name']);
  assert.equal([r.status, r.stderr], [1, "naplus: --name must be 1 to 24 characters of a-z, 0-9 and '-', got 'Bad Name'"]);
});

test.after(() => fs.rmSync(empty, { recursive: true, force: true }));

test.run();
