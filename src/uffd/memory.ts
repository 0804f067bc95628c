// Shared memory: memfds, file mappings (a /dev/shm segment or a PCI resource2 file),
// zero-copy views and copies between mappings. Every offset is checked here, so the
// C++ below only ever sees ranges inside a live mapping.
import fs from 'node:fs';
import { native, K } from './native.js';
import { NaplusError, checkAligned, checkUint, invalidArgument } from '../errors.js';

/** The kernel page size on x86-64 and the default Naplus page size. */
export const PAGE_SIZE = 4096;

export class Mapping {
  private live = true;

  private constructor(
    readonly address: number,
    readonly length: number,
    readonly writable: boolean,
  ) {}

  /** mmap(MAP_SHARED) `length` bytes of `fd` from `offset` (page-aligned). */
  static map(fd: number, length: number, options: { offset?: number; writable?: boolean } = {}): Mapping {
    const offset = checkAligned('offset', options.offset ?? 0, PAGE_SIZE);
    if (!Number.isSafeInteger(length) || length <= 0) throw invalidArgument('length', 'a positive integer', length);
    const writable = options.writable ?? true;
    const prot = K.PROT_READ! | (writable ? K.PROT_WRITE! : 0);
    const address = native.mmap(checkUint('fd', fd), length, offset, prot, K.MAP_SHARED!);
    return new Mapping(address, length, writable);
  }

  get mapped(): boolean {
    return this.live;
  }

  /** Throws unless [offset, offset+length) lies inside this live mapping. */
  check(offset: number, length: number): void {
    if (!this.live) throw new NaplusError('EBADF', 'This mapping has been unmapped');
    checkUint('offset', offset);
    checkUint('length', length);
    if (offset + length > this.length) {
      throw new NaplusError(
        'ERANGE',
        `Range ${offset}+${length} is outside the mapping of ${this.length} bytes`,
      );
    }
  }

  /** An ArrayBuffer over the range, without copying; it keeps the pages mapped while alive. */
  view(offset = 0, length = this.length - offset): ArrayBuffer {
    this.check(offset, length);
    return native.view(this.address + offset, length);
  }

  /** Copies `length` bytes from this mapping at `offset` into `target` at `targetOffset`. */
  copyTo(target: Mapping, targetOffset: number, offset: number, length: number): void {
    this.check(offset, length);
    target.check(targetOffset, length);
    if (!target.writable) throw new NaplusError('EACCES', 'The target mapping is read-only');
    native.copy(target.address + targetOffset, this.address + offset, length);
  }

  /** Fills `into` from this mapping at `offset`. */
  read(offset: number, into: ArrayBufferView): void {
    this.check(offset, into.byteLength);
    native.readInto(this.address + offset, into);
  }

  /** Stores `from` into this mapping at `offset`. */
  write(offset: number, from: ArrayBufferView): void {
    this.check(offset, from.byteLength);
    if (!this.writable) throw new NaplusError('EACCES', 'This mapping is read-only');
    native.writeFrom(this.address + offset, from);
  }

  isZero(offset: number, length: number): boolean {
    this.check(offset, length);
    return native.isZero(this.address + offset, length);
  }

  /** madvise over a page-aligned range; `advice` is one of the MADV_* constants. */
  advise(offset: number, length: number, advice: number): void {
    checkAligned('offset', offset, PAGE_SIZE);
    this.check(offset, length);
    native.madvise(this.address + offset, length, advice);
  }

  /**
   * From now on every access to the mapping takes SIGBUS: it is replaced in place (same
   * addresses, so views over it stay valid objects) by a mapping of an empty file.
   * Works from any thread of the process, given the mapping's address and length.
   */
  static fence(address: number, length: number): void {
    native.fence(checkUint('address', address), checkUint('length', length));
  }

  /** Gives the mapping up; pages stay mapped until the last view is collected. */
  unmap(): void {
    if (!this.live) return;
    this.live = false;
    native.munmap(this.address);
  }
}

/**
 * Reserves the blocks of `length` bytes of the file open at `fd` (fallocate, mode 0), so
 * that no later write to it, through write(2) or a mapping, can fail for want of space.
 * Returns false where the file cannot take it (a device's memory, such as a PCI BAR);
 * throws ENOSPC when its file system has not the room.
 */
export function reserveSpace(fd: number, length: number): boolean {
  try {
    native.fallocate(checkUint('fd', fd), 0, 0, length);
    return true;
  } catch (err) {
    const code = (err as NaplusError).code;
    if (code === 'EOPNOTSUPP' || code === 'ENODEV' || code === 'EINVAL') return false;
    throw err;
  }
}

/**
 * The seals every memfd we create carries: its size can never change again. The node
 * hands its memfds to apps, and a file that shrank under the node's own mapping would
 * kill the node with SIGBUS at its next access there; SEAL_SEAL keeps an app from adding
 * seals of its own (FUTURE_WRITE would make the node's writes fail).
 */
const FIXED_SIZE_SEALS = K.F_SEAL_SHRINK! | K.F_SEAL_GROW! | K.F_SEAL_SEAL!;

/** An anonymous shared-memory file of fixed size: a region's cached copy inside one guest. */
export class Memfd {
  private constructor(
    readonly fd: number,
    private bytes: number,
  ) {}

  static create(name: string, size: number): Memfd {
    checkAligned('size', size, PAGE_SIZE);
    const fd = native.memfdCreate(name, K.MFD_CLOEXEC! | K.MFD_ALLOW_SEALING!);
    try {
      fs.ftruncateSync(fd, size);
      native.memfdSeals(fd, FIXED_SIZE_SEALS);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    return new Memfd(fd, size);
  }

  /** Wraps a memfd received from another process. */
  static adopt(fd: number): Memfd {
    return new Memfd(fd, fs.fstatSync(fd).size);
  }

  get size(): number {
    return this.bytes;
  }

  map(options: { offset?: number; length?: number; writable?: boolean } = {}): Mapping {
    const offset = options.offset ?? 0;
    return Mapping.map(this.fd, options.length ?? this.bytes - offset, { ...options, offset });
  }

  /**
   * Writes `buffers` back to back at `offset` in one system call: pages land in the file
   * without faulting through any mapping.
   */
  writev(offset: number, buffers: Uint8Array[]): void {
    const length = buffers.reduce((n, b) => n + b.length, 0);
    checkUint('offset', offset);
    if (offset + length > this.bytes) {
      throw new NaplusError('ERANGE', `Write ${offset}+${length} is past the end of the ${this.bytes}-byte memfd`);
    }
    let done = fs.writevSync(this.fd, buffers, offset);
    if (done < length) {
      // A write may stop short (it does not on shmem, but may): the rest from one copy.
      const all = Buffer.concat(buffers);
      while (done < length) done += fs.writeSync(this.fd, all, done, length - done, offset + done);
    }
  }

  /**
   * Drops a page-aligned range from the file: every process that maps it loses those
   * pages at once, and its next access faults again (MISSING under userfaultfd).
   */
  punchHole(offset: number, length: number): void {
    checkAligned('offset', offset, PAGE_SIZE);
    checkAligned('length', length, PAGE_SIZE);
    if (offset + length > this.bytes) {
      throw new NaplusError('ERANGE', `Hole ${offset}+${length} is past the end of the ${this.bytes}-byte memfd`);
    }
    native.fallocate(this.fd, K.FALLOC_FL_PUNCH_HOLE! | K.FALLOC_FL_KEEP_SIZE!, offset, length);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
