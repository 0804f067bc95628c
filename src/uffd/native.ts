// Typed face of the C++ addon (src/uffd/native/). Nothing here checks arguments: the
// modules beside this one do, before anything reaches C++.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

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

export const native = load(root) as Native;
export const K = native.constants;
