// `naplus cluster down` trusts nothing it reads (issue 12, item 8): the state directory
// must be the user's own and private, the state file only names processes, and a pid is
// signalled only while it is provably the node that was started (same start time, and
// naplus-mount of this cluster's file). Paths come from the cluster's name, never from the file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from './helpers/cli.js';
import { startTime } from '../cli/node-process.js';

const uid = process.getuid!();
const name = `hostile${process.pid}`;

/** A process that must survive, and a directory that must too. */
function victims(): { proc: ChildProcess; dir: string; alive(): boolean } {
  const proc = spawn('sleep', ['1000'], { stdio: 'ignore' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-victim-'));
  fs.writeFileSync(path.join(dir, 'precious'), 'x');
  return { proc, dir, alive: () => startTime(proc.pid!) !== undefined && fs.existsSync(path.join(dir, 'precious')) };
}

/** A state file as an attacker (or a stale run) would leave it, with paths naplus must ignore. */
function plant(root: string, pid: number, started: string): void {
  fs.mkdirSync(path.join(root, name), { recursive: true });
  fs.writeFileSync(path.join(root, name, 'state.json'), JSON.stringify({
    name, hosts: 1, nodesPerHost: 1, nodes: [{ id: 1, host: 'h1', pid, startTime: started }],
    dir: '/', configPath: '/etc/passwd', segments: ['/etc/hostname'], socketDir: '/', logPath: '/etc/shadow',
  }));
}

function tmpRoot(): { tmp: string; env: NodeJS.ProcessEnv; root: string } {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-state-test-'));
  return { tmp, env: { TMPDIR: tmp, XDG_RUNTIME_DIR: '' }, root: path.join(tmp, `naplus-${uid}`) };
}

test('a state directory owned by another user is refused, and nothing is signalled or removed', () => {
  if (uid !== 0) return console.log('SKIP: needs root to make a directory owned by another user');
  const v = victims();
  const { env, root } = tmpRoot();
  fs.mkdirSync(root, { mode: 0o700 });
  plant(root, v.proc.pid!, startTime(v.proc.pid!)!);
  fs.chownSync(root, 65534, 65534);
  try {
    for (const args of [['cluster', 'down', '--name', name], ['cluster', 'status', '--name', name], ['cluster', 'up', '--name', name]]) {
      const r = run('naplus', args, env);
      assert.is(r.code, 1, args.join(' '));
      assert.match(r.err, new RegExp(`naplus: ${root} belongs to uid 65534, not to you \\(uid 0\\)`));
    }
    assert.ok(v.alive(), 'the victim process and directory are untouched');
  } finally {
    v.proc.kill();
  }
});

test('a state directory open to others, or a symbolic link, is refused', () => {
  const { tmp, env, root } = tmpRoot();
  fs.mkdirSync(root);
  fs.chmodSync(root, 0o777);
  let r = run('naplus', ['cluster', 'down', '--name', name], env);
  assert.is(r.code, 1);
  assert.match(r.err, new RegExp(`${root} is open to other users \\(mode 0777\\); run \`chmod 700 ${root}\``));
  fs.rmdirSync(root);
  fs.symlinkSync(fs.mkdtempSync(path.join(tmp, 'elsewhere-')), root);
  r = run('naplus', ['cluster', 'down', '--name', name], env);
  assert.is(r.code, 1);
  assert.match(r.err, /is not a directory \(a symbolic link, say\)/);
  // An XDG_RUNTIME_DIR that is not private is passed over for the temp dir.
  const shared = fs.mkdtempSync(path.join(tmp, 'xdg-'));
  fs.chmodSync(shared, 0o755);
  fs.rmSync(root);
  r = run('naplus', ['cluster', 'status', '--name', name], { TMPDIR: tmp, XDG_RUNTIME_DIR: shared });
  assert.match(r.err, /No local cluster/);
  assert.not.ok(fs.existsSync(path.join(shared, 'naplus')));
  assert.is(fs.statSync(root).mode & 0o777, 0o700);
});

test('a state file naming a process that is not its node: that process is not signalled, nothing is removed', () => {
  const v = victims();
  const { env, root } = tmpRoot();
  fs.mkdirSync(root, { mode: 0o700 });
  plant(root, v.proc.pid!, startTime(v.proc.pid!)!);
  try {
    const r = run('naplus', ['cluster', 'down', '--name', name], env);
    assert.is(r.code, 1);
    assert.match(r.err, new RegExp(`pid ${v.proc.pid} is not naplus-mount of .* node 1; it was not signalled`));
    assert.match(r.err, /its segments and files were left in place/);
    assert.ok(v.alive(), 'the victim process and directory are untouched');
    assert.ok(fs.existsSync(path.join(root, name, 'state.json')));
  } finally {
    v.proc.kill();
  }
});

test('a recycled pid (same number, another start time) is never signalled', () => {
  const v = victims();
  const { env, root } = tmpRoot();
  fs.mkdirSync(root, { mode: 0o700 });
  plant(root, v.proc.pid!, String(Number(startTime(v.proc.pid!)) - 1));
  try {
    const r = run('naplus', ['cluster', 'down', '--name', name], env);
    assert.is(r.code, 0, r.err);
    assert.match(r.out, /is down/);
    assert.ok(v.alive(), 'the process now holding the pid lives');
    assert.not.ok(fs.existsSync(path.join(root, name, 'state.json')), 'its own state is gone');
    assert.ok(fs.existsSync('/etc/hostname') && fs.existsSync('/etc/passwd'), 'paths in the file were ignored');
  } finally {
    v.proc.kill();
  }
});

test('a state file that naplus did not write is refused as a whole', () => {
  const { env, root } = tmpRoot();
  fs.mkdirSync(path.join(root, name), { recursive: true, mode: 0o700 });
  fs.chmodSync(root, 0o700);
  fs.writeFileSync(path.join(root, name, 'state.json'), JSON.stringify({ name, hosts: 1, nodesPerHost: 1, nodes: [{ id: 1, host: 'h1', pid: '1; rm -rf /', startTime: '5' }] }));
  const r = run('naplus', ['cluster', 'down', '--name', name], env);
  assert.is(r.code, 1);
  assert.match(r.err, /is not one naplus wrote; nothing was signalled or removed/);
});

test.run();
