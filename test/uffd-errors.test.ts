// Error paths of the native helper: each bad call is an Error with a code and a
// message that says what was wrong, and nothing crashes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Memfd, Mapping, Userfaultfd, UnixChannel, UnixServer } from '../src/uffd/index.js';
import { NaplusError } from '../src/errors.js';
import { native, K } from '../src/uffd/native.js';
import { execFileSync } from 'node:child_process';

const PAGE = 4096;

function throwsCode(fn: () => unknown, code: string, message?: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.is((err as NaplusError).code, code, `code of: ${(err as Error).message}`);
    if (message) assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('unaligned or empty ranges are refused before reaching the kernel', () => {
  const uffd = Userfaultfd.open();
  try {
    throwsCode(() => uffd.continue(4097, PAGE), 'EINVAL', /Expected a non-negative multiple of 4096 for start but received 4097/);
    throwsCode(() => uffd.wake(0, 100), 'EINVAL', /for length/);
    throwsCode(() => uffd.register(0, 0), 'EINVAL', /non-empty/);
    throwsCode(() => uffd.register(PAGE, PAGE, {}), 'EINVAL', /at least one/);
  } finally {
    uffd.close();
  }
});

test('a range registered with one userfaultfd cannot be registered with another', () => {
  const memfd = Memfd.create('twice', 4 * PAGE);
  const m = memfd.map();
  const a = Userfaultfd.open();
  const b = Userfaultfd.open();
  try {
    a.register(m.address, m.length);
    throwsCode(() => b.register(m.address, m.length), 'EBUSY');
  } finally {
    a.close();
    b.close();
    m.unmap();
    memfd.close();
  }
});

test('a mapping that is not shared memory cannot take MINOR registration', () => {
  const file = path.join(os.tmpdir(), `naplus-reg-${process.pid}`);
  fs.writeFileSync(file, Buffer.alloc(PAGE));
  const fd = fs.openSync(file, 'r+');
  const m = Mapping.map(fd, PAGE);
  const u = Userfaultfd.open();
  try {
    throwsCode(() => u.register(m.address, PAGE, { minor: true }), 'EINVAL');
  } finally {
    u.close();
    m.unmap();
    fs.closeSync(fd);
    fs.rmSync(file);
  }
});

test('a closed userfaultfd is EBADF; adopt refuses a descriptor that is not one, or one without its handshake', () => {
  const u = Userfaultfd.open();
  u.close();
  throwsCode(() => u.wake(0, PAGE), 'EBADF', /closed/);
  const memfd = Memfd.create('not-uffd', PAGE);
  throwsCode(() => Userfaultfd.adopt(memfd.fd), 'EBADF', /is not a userfaultfd \(it is \/memfd:not-uffd/);
  memfd.close();
  const devNull = fs.openSync('/dev/null', 'r');
  throwsCode(() => Userfaultfd.adopt(devNull), 'EBADF', /is not a userfaultfd \(it is \/dev\/null\)/);
  fs.closeSync(devNull);
  const raw = native.uffdCreate(K.O_CLOEXEC! | K.O_NONBLOCK!);
  throwsCode(() => Userfaultfd.adopt(raw), 'EINVAL', /has not done its UFFDIO_API handshake/);
  native.uffdApi(raw, K.UFFD_FEATURE_EVENT_FORK!);
  const adopted = Userfaultfd.adopt(raw);
  assert.is(adopted.features, K.UFFD_FEATURE_EVENT_FORK, 'the features the kernel gave, not what a sender claims');
  assert.ok(adopted.forkEvents);
  adopted.close();
});

test('a watcher on a descriptor at end of file reports an error instead of waking forever', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-fifo-'));
  const fifo = path.join(dir, 'f');
  execFileSync('mkfifo', [fifo]);
  const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  fs.closeSync(fs.openSync(fifo, 'w')); // a writer came and went: the FIFO reads end of file
  let wakeups = 0;
  let w: { stop(): void } | undefined;
  const err = await new Promise<string | null>((resolve) => {
    w = new native.Watcher(reader, true, (e) => {
      wakeups++;
      resolve(e);
    });
    // A liveness bound: a watcher that spins in C++ never calls back at all.
    setTimeout(() => resolve('never reported'), 10_000).unref();
  });
  w!.stop();
  assert.match(String(err), /Broken pipe/);
  assert.is(wakeups, 1);
  fs.closeSync(reader);
  fs.rmSync(dir, { recursive: true });
});

test('a memfd has a fixed size: whoever holds it cannot shrink or grow it, nor add seals', () => {
  const memfd = Memfd.create('sealed', 2 * PAGE);
  const m = memfd.map();
  try {
    const other = fs.openSync(`/proc/self/fd/${memfd.fd}`, 'r+'); // as an app that received it would
    throwsCode(() => fs.ftruncateSync(other, 0), 'EPERM');
    throwsCode(() => fs.ftruncateSync(other, 4 * PAGE), 'EPERM');
    throwsCode(() => fs.writeSync(other, Buffer.alloc(1), 0, 1, 2 * PAGE), 'EPERM');
    throwsCode(() => native.memfdSeals(other, K.F_SEAL_FUTURE_WRITE!), 'EPERM');
    fs.writeSync(other, Buffer.from('ok'), 0, 2, 0); // writing inside it is what apps do
    native.fallocate(other, K.FALLOC_FL_PUNCH_HOLE! | K.FALLOC_FL_KEEP_SIZE!, 0, PAGE); // allowed: the page reads as zeros
    assert.ok(m.isZero(0, 2 * PAGE));
    assert.is(fs.fstatSync(memfd.fd).size, 2 * PAGE);
    fs.closeSync(other);
  } finally {
    m.unmap();
    memfd.close();
  }
});

test('offsets outside a mapping are ERANGE, and raw addresses outside any mapping EFAULT', () => {
  const memfd = Memfd.create('bounds', 2 * PAGE);
  const m = memfd.map();
  try {
    throwsCode(() => m.view(PAGE, 2 * PAGE), 'ERANGE', /outside the mapping of 8192 bytes/);
    throwsCode(() => m.write(2 * PAGE - 1, Buffer.alloc(2)), 'ERANGE');
    throwsCode(() => m.read(-1, Buffer.alloc(1)), 'EINVAL');
    throwsCode(() => native.copy(m.address, 4096, 16), 'EFAULT', /not inside a live mapping/);
    throwsCode(() => memfd.punchHole(PAGE, 2 * PAGE), 'ERANGE');
    throwsCode(() => memfd.punchHole(100, PAGE), 'EINVAL');
    m.unmap();
    throwsCode(() => m.view(), 'EBADF');
    throwsCode(() => native.munmap(m.address), 'EINVAL');
  } finally {
    memfd.close();
  }
});

test('a view keeps its pages mapped after unmap until it is dropped', () => {
  const memfd = Memfd.create('views', PAGE);
  const m = memfd.map();
  const view = new Uint8Array(m.view());
  view[0] = 42;
  m.unmap();
  assert.is(view[0], 42, 'still readable: the view holds a reference');
  view[1] = 7;
  memfd.close();
});

test('copies between mappings move the bytes, and read-only targets are refused', () => {
  const memfd = Memfd.create('copies', 2 * PAGE);
  const rw = memfd.map();
  const ro = memfd.map({ writable: false });
  try {
    rw.write(0, Buffer.from('naplus'));
    rw.copyTo(rw, PAGE, 0, 6);
    const got = Buffer.alloc(6);
    ro.read(PAGE, got);
    assert.is(got.toString(), 'naplus');
    assert.ok(ro.isZero(2 * 100, 50));
    assert.not.ok(ro.isZero(0, PAGE));
    throwsCode(() => rw.copyTo(ro, 0, 0, 6), 'EACCES');
  } finally {
    rw.unmap();
    ro.unmap();
    memfd.close();
  }
});

test('unix channels pass descriptors both ways and refuse a live socket path', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-chan-'));
  const sock = path.join(dir, 's');
  const got = new Promise<{ data: string; fds: number[] }>((resolve) => {
    const server = UnixServer.listen(sock, (ch) => {
      ch.start({
        message(data, fds) {
          resolve({ data: data.toString(), fds });
          const reply = Memfd.create('reply', PAGE);
          ch.send(Buffer.from('back'), [reply.fd]);
          reply.close();
        },
        close() {},
      });
    });
    throwsCode(() => UnixServer.listen(sock, () => {}), 'EADDRINUSE', /in use by a running process/);
    setTimeout(() => server.close(), 500).unref();
  });
  const client = UnixChannel.connect(sock);
  const back = new Promise<number[]>((resolve) => client.start({ message: (_d, fds) => resolve(fds), close() {} }));
  const memfd = Memfd.create('sent', 3 * PAGE);
  client.send(Buffer.from('hello'), [memfd.fd]);
  const received = await got;
  assert.is(received.data, 'hello');
  assert.is(fs.fstatSync(received.fds[0]!).size, 3 * PAGE, 'the received fd is the same memfd');
  const replyFds = await back;
  assert.is(fs.fstatSync(replyFds[0]!).size, PAGE);
  assert.is(client.peer().pid, process.pid);
  for (const fd of [...received.fds, ...replyFds]) fs.closeSync(fd);
  client.close();
  memfd.close();
  throwsCode(() => UnixChannel.connect(path.join(dir, 'nobody')), 'ENOENT');
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
