// Parent side of test/fixtures/uffd-app: starts the app process, gives it a memfd, takes
// its userfaultfd, and lets a test send read/write commands while serving its faults.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Memfd, Mapping, UnixChannel, UnixServer, Userfaultfd } from '../../src/uffd/index.js';

const fixture = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/uffd-app.js');

export interface AppUnderTest {
  child: ChildProcess;
  channel: UnixChannel;
  uffd: Userfaultfd;
  /** Start of the region in the app's address space. */
  base: number;
  memfd: Memfd;
  /** The test's own, unregistered mapping of the same memfd. */
  mapping: Mapping;
  request(msg: Record<string, unknown>): Promise<Record<string, any>>;
  stop(): Promise<void>;
}

export async function startApp(pages: number): Promise<AppUnderTest> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-uffd-'));
  const sockPath = path.join(dir, 'app.sock');
  const memfd = Memfd.create('test-region', pages * 4096);
  const mapping = memfd.map();
  let waiting: Array<(m: Record<string, any>) => void> = [];
  let firstFds: number[] = [];
  const connected = new Promise<UnixChannel>((resolve) => {
    const server = UnixServer.listen(sockPath, (ch) => {
      server.close();
      resolve(ch);
    });
  });
  const child = spawn(process.execPath, [fixture, sockPath], { stdio: ['ignore', 'inherit', 'inherit'] });
  const channel = await connected;
  channel.start({
    message(data, fds) {
      if (fds.length > 0) firstFds = fds;
      waiting.shift()?.(JSON.parse(data.toString()));
    },
    close() {
      for (const w of waiting) w({ error: 'channel closed' });
      waiting = [];
    },
  });
  const request = (msg: Record<string, unknown>, fds: number[] = []) =>
    new Promise<Record<string, any>>((resolve) => {
      waiting.push(resolve);
      channel.send(Buffer.from(JSON.stringify(msg)), fds);
    });
  const hello = await request({ op: 'memfd' }, [memfd.fd]);
  const uffd = Userfaultfd.adopt(firstFds[0]!, { via: hello.via });
  return {
    child,
    channel,
    uffd,
    base: hello.address,
    memfd,
    mapping,
    request: (msg) => request(msg),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        if (channel.isOpen) channel.send(Buffer.from(JSON.stringify({ op: 'exit' })));
        await exited;
      }
      channel.close();
      uffd.close();
      mapping.unmap();
      memfd.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
