// A local process that is careless or hostile cannot crash a node, leak its
// descriptors, or steer it (issue 12, items 1-7 and 11; item 9 is config.test.ts, the
// socket directory side of item 7 node-startup-errors.test.ts). Each test reproduces
// one way it once could, then checks the node is up, back to the descriptors it had,
// and serving a real app.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { makeCluster, type TestCluster } from './helpers/cluster.js';
import { connect, exchange, fdCount, handAttach, hitAndRun, json, localFdCount, quietFdCount, waitFor } from './helpers/hostile.js';
import { Memfd, UnixChannel } from '../src/uffd/index.js';
import { native } from '../src/uffd/native.js';
import { attachRegion } from '../src/client/attach.js';
import { controlRequest } from '../src/control-client.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MiB = 1 << 20;
const HELLO = { op: 'hello', version: 2, region: 'data', pid: 1 };

/**
 * The node serves a real app (attach, write, read back), and holds the descriptors it
 * held before (`count`: all of them, or all but its links to other nodes).
 */
async function stillServing(c: TestCluster, id: number, baseline: number, count = fdCount): Promise<void> {
  const node = c.nodes.get(id)!;
  await waitFor(() => node.process.exitCode !== null || node.process.signalCode !== null || count(node.pid) <= baseline, `node ${id} is back to ${baseline} descriptors`);
  assert.is(node.process.exitCode, null, `node ${id} is running (log: ${node.log().slice(-3).join(' | ')})`);
  assert.is(node.process.signalCode, null, `node ${id} was not killed by a signal`);
  const app = await c.app(id, 'data');
  await app.cmd({ op: 'write-pattern', seed: 7, from: 0, to: 8 });
  assert.equal(await app.cmd({ op: 'check-pattern', seed: 7, from: 0, to: 8 }), { bad: 0, firstBad: -1 });
  app.child.kill();
  await app.exited;
  await waitFor(() => count(node.pid) <= baseline, `node ${id} is back to ${baseline} descriptors after the app left`);
}

function sockets(c: TestCluster, id = 1): { data: string; control: string } {
  const dir = c.files.nodes.find((n) => n.id === id)!.socketDir;
  return { data: path.join(dir, 'data.sock'), control: path.join(dir, 'control.sock') };
}

test('item 1: a request sent just before the client closes is answered into the void, not a crash', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  try {
    const { data, control } = sockets(c);
    const baseline = await quietFdCount(c.nodes.get(1)!.pid);
    for (let i = 0; i < 50; i++) {
      await hitAndRun(control, json({ method: 'stats' }));
      await hitAndRun(control, json({ method: 'trace' }));
      await hitAndRun(data, json({ op: 'request', id: i, method: 'stats' }));
      await hitAndRun(data, json(HELLO));
      await hitAndRun(data, Buffer.from('not json'));
    }
    await stillServing(c, 1, baseline);
  } finally {
    await c.close();
  }
});

test('item 2: descriptors sent with any message are closed, idle connections are bounded, and running out of descriptors is survived', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  const node = c.nodes.get(1)!;
  const { data, control } = sockets(c);
  const memfd = Memfd.create('stray', 4096);
  const sixteen = new Array(16).fill(memfd.fd);
  try {
    const baseline = await quietFdCount(node.pid);
    for (let i = 0; i < 40; i++) {
      // Each message carries 16 descriptors; none of them is one the node asked for.
      await exchange(data, [
        { data: json(HELLO), fds: sixteen },
        { data: json({ op: 'request', id: 1, method: 'stats' }), fds: sixteen },
        { data: json({ op: 'uffd', base: 0, via: 'syscall' }), fds: sixteen },
      ]);
      await exchange(control, [{ data: json({ method: 'stats' }), fds: sixteen }], { answers: 1 });
    }
    await waitFor(() => fdCount(node.pid) <= baseline, 'the node holds no descriptor it was sent');

    // Connections that never say anything: past the limit they are closed at once, the
    // others when their handshake time is up.
    const idle: UnixChannel[] = [];
    while (idle.length < 100) idle.push(await connect(data));
    let closed = 0;
    for (const ch of idle) ch.start({ message() {}, close: () => closed++ });
    await waitFor(() => closed === 100, 'every idle connection is closed by the node');
    assert.ok(node.log().some((l) => /data\.sock: a new connection was closed at once \(64 connections in their handshake/.test(l)), 'the limit is logged');
    assert.ok(node.log().some((l) => /data\.sock: a connection that had not finished its handshake after 5000 ms was closed/.test(l)), 'the timeout is logged');
    await waitFor(() => fdCount(node.pid) <= baseline, 'the node is back to its descriptors');

    // Out of descriptors: accept fails with EMFILE. The node pauses accepting, says so
    // once, and takes the waiting connections once descriptors are free again.
    const softLimit = Number(/^Max open files\s+(\d+)/m.exec(fs.readFileSync(`/proc/${node.pid}/limits`, 'utf8'))![1]);
    const limit = baseline + 10;
    execFileSync('prlimit', [`--pid=${node.pid}`, `--nofile=${limit}:`]); // the soft limit
    const flood = Array.from({ length: 30 }, () => UnixChannel.connect(control));
    await waitFor(() => node.log().some((l) => /accepting connections on .*control\.sock failed \(accept failed: Too many open files\)/.test(l)), 'the node says it cannot accept');
    for (const ch of flood) ch.close();
    execFileSync('prlimit', [`--pid=${node.pid}`, `--nofile=${softLimit}:`]);
    await waitFor(() => node.log().some((l) => /accepting connections on .*control\.sock again/.test(l)), 'the node accepts again');
    assert.is(node.log().filter((l) => /accepting connections on .*control\.sock failed/.test(l)).length, 1, 'said once, not at every try');
    await controlRequest(sockets(c).control, 'stats');
    await stillServing(c, 1, baseline);
  } finally {
    memfd.close();
    await c.close();
  }
});

test('item 3: a regular file or /dev/null handed over as the userfaultfd is refused, and closed once', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  const file = path.join(c.dir, 'plain');
  fs.writeFileSync(file, 'x');
  try {
    const baseline = await quietFdCount(c.nodes.get(1)!.pid);
    for (const target of ['/dev/null', file]) {
      const fd = fs.openSync(target, 'r');
      const { replies, fds } = await exchange(sockets(c).data, [{ data: json(HELLO) }, { data: json({ op: 'uffd', base: 0, features: 0, via: 'syscall' }), fds: [fd] }], { answers: 2 });
      fs.closeSync(fd);
      for (const f of fds) fs.closeSync(f);
      const refused = replies.find((r) => r.op === 'refused');
      assert.ok(refused, `${target} is refused`);
      assert.match(refused.message, new RegExp(`is not a userfaultfd \\(it is ${target.replace(/[/.]/g, '\\$&')}\\)`));
    }
    await stillServing(c, 1, baseline);
  } finally {
    await c.close();
  }
});

test('item 4: a FIFO at end of file handed over as the userfaultfd is refused', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  const fifo = path.join(c.dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  try {
    const baseline = await quietFdCount(c.nodes.get(1)!.pid);
    const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    fs.closeSync(fs.openSync(fifo, 'w')); // the writer is gone: the FIFO reads end of file
    const { replies, fds } = await exchange(sockets(c).data, [{ data: json(HELLO) }, { data: json({ op: 'uffd', base: 0, features: 0, via: 'syscall' }), fds: [reader] }], { answers: 2 });
    fs.closeSync(reader);
    for (const f of fds) fs.closeSync(f);
    assert.is(replies.at(-1)?.op, 'refused', `refused, not ${JSON.stringify(replies.at(-1))}`);
    assert.match(replies.at(-1).message, new RegExp(`is not a userfaultfd \\(it is ${fifo}\\)`));
    await stillServing(c, 1, baseline);
  } finally {
    await c.close();
  }
});

test('item 5: an app that exits while its fault waits, its socket kept by another process, is never signalled by pid', async () => {
  const c = await makeCluster({ hosts: 2, regions: [{ name: 'data', size: 2 * MiB }], transport: { heartbeatMs: 100, peerTimeoutMs: 1000 } });
  let holder: ReturnType<typeof spawn> | undefined;
  try {
    const baseline = await quietFdCount(c.nodes.get(1)!.pid, localFdCount);
    const app = await c.app(1, 'data');
    // Another process takes copies of the app's sockets (pidfd_getfd), as a child that
    // inherited them would: the app's exit then closes nothing.
    holder = spawn('python3', [path.resolve(here, '../../test/fixtures/hold-sockets.py'), String(app.child.pid)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const held = await new Promise<string>((resolve) => readline.createInterface({ input: holder!.stdout! }).once('line', resolve));
    assert.ok(Number(held) >= 1, `the holder took the app's sockets (${held})`);
    await c.stopNode(2, 'SIGKILL');
    const faults = async () => (await controlRequest<any>(sockets(c).control, 'stats')).regions.data.faults as number;
    const before = await faults();
    void app.cmd({ op: 'read-u32', index: (300 * 4096) / 4 }); // page 300 is homed on node 2, which is gone
    for (let deadline = Date.now() + 10_000; (await faults()) === before; ) {
      if (Date.now() > deadline) throw new Error('the fault never reached the node');
      await new Promise((r) => setTimeout(r, 20));
    }
    app.child.kill('SIGKILL');
    await app.exited;
    const node = c.nodes.get(1)!;
    await waitFor(() => node.process.exitCode !== null || node.log().some((l) => /has exited; its connection, held by another process, is closed/.test(l)), 'the node gives up on the exited app');
    assert.ok(node.log().some((l) => /app \d+: access to page 300 of region data fails with SIGBUS/.test(l)), 'the failed access is logged');
    holder.kill();
    await new Promise((r) => holder!.once('exit', r));
    await stillServing(c, 1, baseline, localFdCount);
  } finally {
    holder?.kill();
    await c.close();
  }
});

test('item 6: the memfd an app gets cannot be shrunk or grown, so the node cannot be killed through it', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  try {
    const app = await c.app(1, 'data');
    await app.cmd({ op: 'write-pattern', seed: 3, from: 0, to: 16 }); // dirty pages, held by the node
    const { fds } = await exchange(sockets(c).data, [{ data: json(HELLO) }], { answers: 1 });
    const memfd = fds[0]!;
    const refused = (what: string, fn: () => void) => {
      try {
        fn();
      } catch (err) {
        assert.is((err as { code: string }).code, 'EPERM', what);
        return;
      }
      assert.unreachable(`${what} was allowed`);
    };
    refused('ftruncate to 0', () => fs.ftruncateSync(memfd, 0));
    refused('ftruncate larger', () => fs.ftruncateSync(memfd, 2 * MiB));
    refused('a write past the end', () => fs.writeSync(memfd, Buffer.alloc(1), 0, 1, MiB));
    refused('a new seal', () => native.memfdSeals(memfd, 8 /* F_SEAL_WRITE */));
    // Punching a hole is allowed (any app with a writable mapping can, MADV_REMOVE): the
    // data there is gone, as if zeros were written, but nothing waits for it forever.
    await app.cmd({ op: 'write-pattern', seed: 4, from: 16, to: 18 });
    native.fallocate(memfd, 0x03 /* PUNCH_HOLE | KEEP_SIZE */, 16 * 4096, 2 * 4096);
    fs.closeSync(memfd);
    const read = await Promise.race([
      app.cmd({ op: 'check-pattern', seed: 4, from: 16, to: 18 }),
      new Promise((r) => setTimeout(() => r('the app still waits for its fault'), 10_000)), // a liveness bound
    ]);
    assert.equal(read, { bad: 2, firstBad: 16 }, 'the punched pages read as zeros');
    assert.ok(c.nodeLog(1).some((l) => /pages 16\.\.1[67] of region data were punched out of its memfd by an app; they read as zeros now/.test(l)), c.nodeLog(1).slice(-4).join('\n'));
    // A clean stop writes every dirty page home through the node's own mapping: a
    // shrunken memfd would have killed it there with SIGBUS, and lost those pages.
    assert.is(await c.stopNode(1), 0, 'the node stopped cleanly');
    await c.start(1);
    const again = await c.app(1, 'data');
    assert.equal(await again.cmd({ op: 'check-pattern', seed: 3, from: 0, to: 16 }), { bad: 0, firstBad: -1 }, 'nothing written was lost');
  } finally {
    await c.close();
  }
});

test('item 7: an app refuses a socket held by another user, and hands it nothing', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-fake-'));
  fs.chmodSync(dir, 0o755);
  const socketDir = path.join(dir, 'sockets');
  fs.mkdirSync(socketDir);
  fs.chownSync(socketDir, 65534, 65534); // the other user's directory
  const fake = spawn(process.execPath, [path.resolve(here, 'fixtures/fake-node.js'), path.join(socketDir, 'data.sock')], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: fake.stdout! });
  const got: string[] = [];
  let onLine: () => void = () => {};
  lines.on('line', (l) => {
    got.push(l);
    onLine();
  });
  try {
    await new Promise<void>((resolve) => (onLine = () => got.includes('listening') && resolve()));
    const err = await attachRegion('data', { socketDir }).then(() => undefined, (e: Error & { code?: string }) => e);
    assert.ok(err, 'the attach fails');
    assert.is(err!.code, 'EPERM', err!.message);
    assert.match(err!.message, /The process listening on .*data\.sock \(pid \d+\) runs as uid 65534: not root, not this process's user \(uid 0\)/);
    assert.match(err!.message, /allow it with NAPLUS_NODE_UID=65534/);
    // When told that this uid is its node's, the app goes ahead (the fake then refuses it).
    const allowed = await attachRegion('data', { socketDir, nodeUid: 65534 }).then(() => undefined, (e: Error) => e);
    assert.match(String(allowed?.message), /refused to attach region 'data': fake node/);
    // The fake's lines come in order, and may come after its answer: the first attach's
    // messages, had it sent any, would be before these.
    await waitFor(() => got.some((l) => l.includes('"uffd"')), 'the fake reports the userfaultfd of the allowed attach');
    assert.equal(got.filter((l) => l !== 'listening').map((l) => JSON.parse(l).op), ['hello', 'uffd'], 'only the allowed attach reached the fake');
  } finally {
    fake.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('item 11: a userfaultfd registered elsewhere than the region, or a base that is not the region, is refused', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  try {
    const baseline = await quietFdCount(c.nodes.get(1)!.pid);
    const cases: Array<[Parameters<typeof handAttach>[2], RegExp]> = [
      [{ register: 'other', base: 'region' }, /the mapping at 0x[0-9a-f]+ in process \d+ is not registered with a userfaultfd for MISSING, MINOR and WP faults/],
      [{ register: 'none', base: 'region' }, /is not registered with a userfaultfd/],
      [{ register: 'other', base: 'other' }, /the mapping at 0x[0-9a-f]+ in process \d+ is not of region 'data'/],
    ];
    for (const [options, reason] of cases) {
      const a = await handAttach(sockets(c).data, 'data', options);
      a.close();
      assert.is(a.answer?.op, 'refused', `${JSON.stringify(options)}: refused, not ${JSON.stringify(a.answer)}`);
      assert.match(a.answer.message, reason);
    }
    const good = await handAttach(sockets(c).data, 'data');
    good.close();
    assert.is(good.answer?.op, 'ready', 'the same steps on the region itself attach');
    await stillServing(c, 1, baseline);
  } finally {
    await c.close();
  }
});

test.run();
