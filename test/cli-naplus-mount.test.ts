// naplus-mount as an operator runs it: JSON log lines, syslog priorities and no own
// timestamps when stderr is the journal, readiness to systemd over $NOTIFY_SOCKET, a
// warning for a secret others can read, and a startup error in one line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { writeLocalCluster, type LocalClusterFiles } from '../src/local-cluster.js';
import { BIN } from './helpers/cli.js';

const MiB = 1 << 20;
let made = 0;

async function oneNode(): Promise<{ dir: string; files: LocalClusterFiles; close(): void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-mount-test-'));
  const name = `m${process.pid}x${made++}`;
  const files = await writeLocalCluster({ name, dir, hosts: 1, nodesPerHost: 1, regions: [{ name: 'data', size: MiB }] });
  return { dir, files, close: () => { for (const s of files.segments) fs.rmSync(s, { force: true }); fs.rmSync(dir, { recursive: true, force: true }); } };
}

/** Starts the node with stderr to `errFile`; resolves once it logged that it is ready. */
async function mount(files: LocalClusterFiles, errFile: string, extra: string[], env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  const err = fs.openSync(errFile, 'a');
  const child = spawn(process.execPath, [BIN('naplus-mount'), '--cluster', files.configPath, '--node', '1', '--socket-dir', files.nodes[0]!.socketDir, ...extra], { stdio: ['ignore', 'ignore', err], env: { ...process.env, ...env } });
  fs.closeSync(err);
  while (!fs.readFileSync(errFile, 'utf8').includes('ready;')) {
    if (child.exitCode !== null) throw new Error(`naplus-mount exited: ${fs.readFileSync(errFile, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return child;
}

const stop = (child: ChildProcess) => new Promise<void>((resolve) => { child.once('exit', () => resolve()); child.kill('SIGTERM'); });

test('--log-format json: one object per line with time, level, node and msg', async () => {
  const c = await oneNode();
  const log = path.join(c.dir, 'err.log');
  try {
    await stop(await mount(c.files, log, ['--log-format', 'json']));
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.length >= 3);
    for (const l of lines) {
      assert.equal(Object.keys(l), ['time', 'level', 'node', 'msg']);
      assert.ok(!Number.isNaN(Date.parse(l.time)));
      assert.is(l.node, 1);
    }
    assert.ok(lines.some((l) => l.level === 'info' && /ready; sockets in/.test(l.msg)));
  } finally {
    c.close();
  }
});

test('stderr is the journal (JOURNAL_STREAM is its device:inode): priorities, and no timestamps of our own', async () => {
  const c = await oneNode();
  const log = path.join(c.dir, 'err.log');
  fs.writeFileSync(log, '');
  const st = fs.statSync(log);
  try {
    await stop(await mount(c.files, log, [], { JOURNAL_STREAM: `${st.dev}:${st.ino}` }));
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    for (const l of lines) assert.match(l, /^<[3-7]>node 1 (info|warn|error|debug)/);
    assert.ok(lines.some((l) => l.startsWith('<6>node 1 info  node 1 of cluster')));
    // Another stream's JOURNAL_STREAM (inherited by a process whose stderr was redirected) changes nothing.
    const other = path.join(c.dir, 'other.log');
    await stop(await mount(c.files, other, [], { JOURNAL_STREAM: `${st.dev}:${st.ino + 1}` }));
    for (const l of fs.readFileSync(other, 'utf8').trim().split('\n')) assert.match(l, /^\d{4}-\d\d-\d\dT\S+Z node 1 /);
  } finally {
    c.close();
  }
});

/** A unix datagram socket that prints each datagram it receives as a JSON string line (python3, as node has none). */
function notifyListener(address: string): { child: ChildProcess; messages: string[]; ready: Promise<void> } {
  const script = `
import socket, sys, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
a = sys.argv[1]
s.bind('\\0' + a[1:] if a.startswith('@') else a)
print('"bound"', flush=True)
while True:
    print(json.dumps(s.recv(4096).decode()), flush=True)
`;
  const child = spawn('python3', ['-c', script, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: string[] = [];
  let bound: () => void;
  const ready = new Promise<void>((resolve) => (bound = resolve));
  readline.createInterface({ input: child.stdout! }).on('line', (l) => (l === '"bound"' ? bound() : messages.push(JSON.parse(l))));
  return { child, messages, ready };
}

test('Type=notify: READY=1 once the node serves, STOPPING=1 when it stops, to a path or an abstract socket', async () => {
  if (spawnSync('python3', ['--version']).status !== 0) return console.log('SKIP: python3 is needed to receive unix datagrams');
  const c = await oneNode();
  try {
    for (const address of [path.join(c.dir, 'notify.sock'), `@naplus-test-${process.pid}`]) {
      const l = notifyListener(address);
      await l.ready;
      const node = await mount(c.files, path.join(c.dir, 'err.log'), [], { NOTIFY_SOCKET: address });
      while (l.messages.length < 1) await new Promise((r) => setTimeout(r, 20));
      assert.match(l.messages[0]!, /^READY=1\nSTATUS=node 1 of cluster \S+ serving; sockets in /);
      await stop(node);
      while (l.messages.length < 2) await new Promise((r) => setTimeout(r, 20));
      assert.match(l.messages[1]!, /^STOPPING=1\n/);
      l.child.kill();
    }
  } finally {
    c.close();
  }
});

test('a cluster secret that others can read is warned about; a private one is not', async () => {
  const c = await oneNode();
  const secret = path.join(c.dir, 'cluster.secret');
  try {
    fs.chmodSync(secret, 0o644);
    let log = path.join(c.dir, 'open.log');
    await stop(await mount(c.files, log, []));
    assert.match(fs.readFileSync(log, 'utf8'), new RegExp(`warn  the cluster secret ${secret} can be read by other users \\(mode 0644\\).*chmod 600`));
    fs.chmodSync(secret, 0o600);
    log = path.join(c.dir, 'private.log');
    await stop(await mount(c.files, log, []));
    assert.not.match(fs.readFileSync(log, 'utf8'), /can be read by other users/);
  } finally {
    c.close();
  }
});

test('a startup error is one line and exit 1', async () => {
  const c = await oneNode();
  try {
    const first = await mount(c.files, path.join(c.dir, 'first.log'), []);
    // The socket directory is in use by the running node.
    const r = spawnSync(process.execPath, [BIN('naplus-mount'), '--cluster', c.files.configPath, '--node', '1', '--socket-dir', c.files.nodes[0]!.socketDir], { encoding: 'utf8' });
    assert.is(r.status, 1);
    assert.match(r.stderr, /^\S+ node 1 error Socket .* is in use by a running process; stop it or choose another --socket-dir\n$/);
    await stop(first);
    const bad = spawnSync(process.execPath, [BIN('naplus-mount'), '--cluster', c.files.configPath, '--node', '7'], { encoding: 'utf8' });
    assert.is(bad.status, 1);
    assert.match(bad.stderr, /^\S+ node 7 error Node 7 is not in cluster file .*; its nodes are 1\n$/);
  } finally {
    c.close();
  }
});

test.run();
