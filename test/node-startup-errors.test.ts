// naplus-mount refuses bad setups at startup with one clear line and a non-zero exit.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCluster } from './helpers/cluster.js';
import { startNode, waitForLinks } from '../src/local-cluster.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MOUNT = path.resolve(here, '../cli/naplus-mount.js');
const MiB = 1 << 20;

function mount(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; err: string } {
  const r = spawnSync(process.execPath, [MOUNT, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, err: r.stderr };
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-startup-'));
}

test('a missing cluster file', () => {
  const r = mount(['--cluster', '/nonexistent/cluster.json', '--node', '1']);
  assert.is(r.code, 1);
  assert.match(r.err, /Cannot read cluster file \/nonexistent\/cluster.json/);
});

test('a cluster file that is not JSON, or has a bad field, is named with the field and value', async () => {
  const dir = tmp();
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, '{ "cluster": ');
  assert.match(mount(['-c', file, '-n', '1']).err, /is not valid JSON/);
  const c = await makeCluster({ regions: [{ name: 'r', size: MiB }], start: false });
  const raw = JSON.parse(fs.readFileSync(c.files.configPath, 'utf8'));
  raw.hosts[0].nodes[0].listen = 'localhost';
  fs.writeFileSync(c.files.configPath, JSON.stringify(raw));
  const r = mount(['-c', c.files.configPath, '-n', '1']);
  assert.is(r.code, 1);
  assert.match(r.err, /hosts\[0\]\.nodes\[0\]\.listen must be "host:port" with a port from 1 to 65535, got "localhost"/);
  raw.hosts[0].nodes[0].listen = '127.0.0.1:1';
  raw.regions[0].size = '1000';
  fs.writeFileSync(c.files.configPath, JSON.stringify(raw));
  assert.match(mount(['-c', c.files.configPath, '-n', '1']).err, /regions\[0\]\.size must be a multiple of the page size \(4096\), got "1000"/);
  await c.close();
  fs.rmSync(dir, { recursive: true });
});

test('an unknown node id lists the nodes there are', async () => {
  const c = await makeCluster({ hosts: 2, regions: [{ name: 'r', size: MiB }], start: false });
  const r = mount(['-c', c.files.configPath, '-n', '9']);
  assert.is(r.code, 1);
  assert.match(r.err, /Node 9 is not in cluster file .*; its nodes are 1, 2/);
  await c.close();
});

test('a listen port in use is named', async () => {
  const c = await makeCluster({ hosts: 2, regions: [{ name: 'r', size: MiB }], start: false });
  const raw = JSON.parse(fs.readFileSync(c.files.configPath, 'utf8'));
  const listen: string = raw.hosts[0].nodes[0].listen;
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(Number(listen.split(':')[1]), '127.0.0.1', resolve));
  try {
    const r = mount(['-c', c.files.configPath, '-n', '1', '--socket-dir', path.join(c.dir, 's')]);
    assert.is(r.code, 1);
    assert.match(r.err, new RegExp(`Node 1 cannot listen on ${listen.replace(/\./g, '\\.')}: .*EADDRINUSE`));
  } finally {
    busy.close();
    await c.close();
  }
});

test('a node with the wrong cluster secret is refused by its peers, and both say why', async () => {
  const c = await makeCluster({ hosts: 2, regions: [{ name: 'r', size: MiB }], start: false });
  try {
    // Node 2 reads a copy of the cluster file whose secret differs.
    const raw = JSON.parse(fs.readFileSync(c.files.configPath, 'utf8'));
    fs.writeFileSync(path.join(c.dir, 'other.secret'), 'not-the-cluster-secret-at-all');
    const otherConfig = path.join(c.dir, 'other.json');
    fs.writeFileSync(otherConfig, JSON.stringify({ ...raw, secretFile: 'other.secret' }));
    await c.start(1);
    const n2 = c.files.nodes[1]!;
    const node2 = await startNode(otherConfig, 2, n2.socketDir, n2.logPath);
    try {
      const err = await waitForLinks([c.files.nodes[0]!.socketDir], 3000).then(() => undefined, (e: Error) => e);
      assert.ok(err, 'the link never comes up');
      assert.match(err!.message, /node 1 to node 2 \(.*do not share the same secret/);
      assert.ok(c.nodeLog(1).some((l) => /do not share the same secret/.test(l)), 'node 1 logs why');
      assert.ok(node2.log().some((l) => /do not share the same secret/.test(l)), 'node 2 logs why');
    } finally {
      node2.process.kill();
      await node2.exited;
    }
  } finally {
    await c.close();
  }
});

test('a segment too small says how large it must be', async () => {
  const c = await makeCluster({ regions: [{ name: 'r', size: 8 * MiB }], start: false });
  const raw = JSON.parse(fs.readFileSync(c.files.configPath, 'utf8'));
  raw.hosts[0].segment.size = '4M';
  fs.writeFileSync(c.files.configPath, JSON.stringify(raw));
  const r = mount(['-c', c.files.configPath, '-n', '1', '--socket-dir', path.join(c.dir, 's')]);
  assert.is(r.code, 1);
  assert.match(r.err, /is 4M but must be at least 8\.1 MiB .*set hosts\[0\]\.segment\.size to "9M" or more/);
  await c.close();
});

test('a socket path in use by a running node is refused', async () => {
  const c = await makeCluster({ regions: [{ name: 'r', size: MiB }] });
  const r = mount(['-c', c.files.configPath, '-n', '1', '--socket-dir', c.files.nodes[0]!.socketDir]);
  assert.is(r.code, 1);
  assert.match(r.err, /r\.sock is in use by a running process; stop it or choose another --socket-dir/);
  await c.close();
});

test('a socket directory another user owns or may write is refused, as is a path to it through one', async () => {
  const c = await makeCluster({ regions: [{ name: 'r', size: MiB }], start: false });
  try {
    const dir = path.join(c.dir, 'sockets');
    fs.mkdirSync(dir);
    const refused = (why: RegExp) => {
      const r = mount(['-c', c.files.configPath, '-n', '1', '--socket-dir', dir]);
      assert.is(r.code, 1);
      assert.match(r.err, /Socket directory .* is not safe: /);
      assert.match(r.err, why);
      assert.match(r.err, /Another user could replace the sockets apps attach to and pose as this node/);
    };
    fs.chmodSync(dir, 0o777);
    refused(/sockets may be written by others \(mode 0777; chmod go-w /);
    fs.chmodSync(dir, 0o770);
    refused(/sockets may be written by its group \(mode 0770/);
    fs.chmodSync(dir, 0o755);
    fs.chownSync(dir, 65534, 65534);
    refused(/sockets is owned by uid 65534, neither root nor this node's user \(uid 0\)/);
    fs.chownSync(dir, 0, 0);
    fs.chmodSync(c.dir, 0o777); // a parent anyone may write, without the sticky bit
    refused(/, on the way to it, may be written by others and is not sticky \(mode 0777\)/);
    const link = path.join(c.dir, 'link');
    fs.chmodSync(c.dir, 0o1777); // sticky, like /tmp: fine
    fs.symlinkSync(dir, link);
    fs.lchownSync(link, 65534, 65534); // but a symbolic link another user owns is not
    const r = mount(['-c', c.files.configPath, '-n', '1', '--socket-dir', link]);
    assert.match(r.err, /link is owned by uid 65534/);
    fs.chmodSync(c.dir, 0o700);
  } finally {
    await c.close();
  }
});

test('no userfaultfd permission prints the remedy', async () => {
  const dir = tmp();
  const shim = path.join(dir, 'no-uffd.so');
  execFileSync('cc', ['-shared', '-fPIC', '-o', shim, path.resolve(here, '../../test/fixtures/no-uffd.c'), '-ldl']);
  const c = await makeCluster({ regions: [{ name: 'r', size: MiB }], start: false });
  const r = mount(['-c', c.files.configPath, '-n', '1', '--socket-dir', path.join(c.dir, 's')], { LD_PRELOAD: shim });
  assert.is(r.code, 1);
  assert.match(r.err, /could not use userfaultfd/);
  assert.match(r.err, /Run as root \(or with CAP_SYS_PTRACE\), or set `sysctl vm.unprivileged_userfaultfd=1`, or give this user read-write access to \/dev\/userfaultfd/);
  await c.close();
  fs.rmSync(dir, { recursive: true });
});

test.run();
