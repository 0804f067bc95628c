// docs/naplus-mount.service installs as it is: systemd-analyze verify accepts it, and it
// asks for what the node does (readiness, a user of its own, restarts, hardening).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, ROOT } from './helpers/cli.js';

const UNIT = path.join(ROOT, 'docs/naplus-mount.service');
const text = fs.readFileSync(UNIT, 'utf8');
const settings = (key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);

test('systemd-analyze verify accepts the unit', () => {
  if (spawnSync('systemd-analyze', ['--version']).error) return console.log('SKIP: systemd-analyze is not installed (Debian: apt-get install systemd)');
  // The one change: ExecStart names naplus-mount on systemd's PATH, where a global
  // install puts it; here it is this checkout's, by its absolute path.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-unit-'));
  const unit = path.join(dir, 'naplus-mount.service');
  fs.writeFileSync(unit, text.replace(/^ExecStart=naplus-mount /m, `ExecStart=${BIN('naplus-mount')} `));
  const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr.trim(), '', 'no warnings');
});

test('readiness, a user of its own, restarts, and hardening that leaves userfaultfd and the BAR usable', () => {
  assert.equal(settings('Type'), ['notify']);
  assert.equal(settings('User'), ['naplus']);
  assert.equal(settings('ExecStart')[0]!.split(' ')[0], 'naplus-mount');
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.ok(pkg.bin['naplus-mount'], 'ExecStart runs a command the package installs');
  assert.equal(settings('RestartSec'), ['2s']);
  for (const key of ['NoNewPrivileges', 'ProtectSystem', 'ProtectHome', 'PrivateTmp', 'RestrictNamespaces', 'SystemCallFilter', 'CapabilityBoundingSet']) assert.ok(settings(key).length === 1, key);
  assert.match(settings('SystemCallFilter')[0]!, /\buserfaultfd\b/);
  // These would take away /dev/shm and /dev/userfaultfd, /sys read-write (the BAR), or V8's JIT.
  for (const key of ['PrivateDevices', 'ProtectKernelTunables', 'MemoryDenyWriteExecute']) assert.equal(settings(key), [], key);
  assert.match(settings('ExecStartPre')[0]!, /^\+.*resource2_wc/);
});

test.run();
