// Typed face of the C++ addon (src/uffd/native/). Nothing here checks arguments: the
// modules beside this one do, before anything reaches C++.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { NaplusError } from '../errors.js';

export interface NativeWatcher {
  stop(): void;
  ref(on: boolean): void;
  wantWritable(on: boolean): void;
}

export interface Native {
  constants: Record<string, number>;
  uffdCreate(flags: number): number;
  uffdCreateDevice(flags: number): number;
  uffdApi(fd: number, features: number): { features: number; ioctls: number };
  uffdRegister(fd: number, start: number, len: number, mode: number): number;
  uffdUnregister(fd: number, start: number, len: number): void;
  uffdContinue(fd: number, start: number, len: number, mode: number): number;
  uffdCopy(fd: number, dst: number, src: number, len: number, mode: number): number;
  uffdZeropage(fd: number, start: number, len: number, mode: number): number;
  uffdPoison(fd: number, start: number, len: number, mode: number): number;
  uffdWriteprotect(fd: number, start: number, len: number, mode: number): void;
  uffdWake(fd: number, start: number, len: number): void;
  readUffd(fd: number): Buffer;
  memfdCreate(name: string, flags: number): number;
  memfdSeals(fd: number, add: number): number;
  fallocate(fd: number, mode: number, offset: number, len: number): void;
  fence(addr: number, len: number): void;
  mmap(fd: number, len: number, offset: number, prot: number, flags: number): number;
  munmap(addr: number): void;
  madvise(addr: number, len: number, advice: number): void;
  view(addr: number, len: number): ArrayBuffer;
  copy(dst: number, src: number, len: number): void;
  readInto(src: number, into: ArrayBufferView): void;
  writeFrom(dst: number, from: ArrayBufferView): void;
  isZero(addr: number, len: number): boolean;
  unixListen(path: string, backlog: number): number;
  unixConnect(path: string): number;
  unixAccept(fd: number): number;
  sendMsg(fd: number, data: ArrayBufferView, fds: number[]): number;
  recvMsg(fd: number, maxBytes: number): { data: Buffer; fds: number[]; eof?: true } | null;
  dup(fd: number): number;
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  sendDatagram(address: Uint8Array, data: Uint8Array): number;
  peerPidfd(fd: number): number;
  pidfdOpen(pid: number): number;
  pidfdSendSignal(pidfd: number, signal: number): void;
  Watcher: new (
    fd: number,
    readUffd: boolean,
    cb: (err: string | null, events: number, messages?: Buffer) => void,
  ) => NativeWatcher;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);
const load = require('node-gyp-build') as (dir: string) => unknown;

/**
 * The addon: a prebuilt binary shipped in the package (prebuilds/), or one built at
 * install. With neither (installed with --ignore-scripts on a platform without a
 * prebuild), the error names the remedy rather than where node-gyp-build looked.
 */
function loadNative(): Native {
  try {
    return load(root) as Native;
  } catch (err) {
    const why = (err as Error).message.split('\n')[0];
    throw new NaplusError('ENOBUILD', `The native helper of naplus is not built for this platform (${process.platform}-${process.arch}, Node ${process.versions.node}): ${why}. Build it with \`npm rebuild naplus\` (it needs a C++ compiler, python3 and make), or in a clone of the repository with \`npm ci\``, { cause: err });
  }
}

export const native = loadNative();
export const K = native.constants;
