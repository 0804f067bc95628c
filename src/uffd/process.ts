// Another process, named by a pidfd rather than by its pid: a pid is reused once its
// process exits, a pidfd never is, so a signal sent through one cannot reach a stranger.
import fs from 'node:fs';
import { constants } from 'node:os';
import { native } from './native.js';
import { NaplusError, errnoOf } from '../errors.js';

/** One VMA of a process, as /proc/<pid>/smaps describes it. */
export interface ProcessMapping {
  start: number;
  end: number;
  /** Offset in the mapped file. */
  offset: number;
  /** Device and inode of the mapped file, as fstat reports them (st_dev, st_ino). */
  dev: number;
  ino: number;
  /** smaps' VmFlags: 'sh' shared, 'um' / 'uw' / 'ui' registered with a userfaultfd for MISSING / WP / MINOR faults. */
  flags: Set<string>;
}

export class PeerProcess {
  private closed = false;

  private constructor(
    readonly pid: number,
    /** Undefined when the process was gone before we could name it. */
    private readonly pidfd: number | undefined,
  ) {}

  /**
   * The process at the other end of a connected unix socket. SO_PEERPIDFD (Linux 6.5)
   * names the process that connected, whatever happened since; older kernels get a
   * pidfd_open of the SO_PEERCRED pid, which is right unless that process exited and
   * its pid was given to another between its connect and this call.
   */
  static ofSocket(socketFd: number, pid: number): PeerProcess {
    let pidfd: number | undefined;
    try {
      pidfd = native.peerPidfd(socketFd);
    } catch (err) {
      if (errnoOf(err) !== 'ENOPROTOOPT') pidfd = gone(err);
      else {
        try {
          pidfd = native.pidfdOpen(pid);
        } catch (err2) {
          pidfd = gone(err2);
        }
      }
    }
    return new PeerProcess(pid, pidfd);
  }

  /** Whether the process is still running. */
  get alive(): boolean {
    return this.signal(0);
  }

  /**
   * Sends `signal` (a name, or 0 to test); false, never an exception, when the process
   * has exited. Other failures (EPERM: not ours to signal) are errors.
   */
  signal(signal: NodeJS.Signals | 0): boolean {
    if (this.closed) throw new NaplusError('EBADF', `The pidfd of process ${this.pid} is closed`);
    if (this.pidfd === undefined) return false;
    try {
      native.pidfdSendSignal(this.pidfd, signal === 0 ? 0 : constants.signals[signal]);
      return true;
    } catch (err) {
      if (errnoOf(err) === 'ESRCH') return false;
      throw new NaplusError(errnoOf(err) ?? 'EIO', `Cannot signal process ${this.pid}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * The mapping that starts at `address` in this process, or undefined if none does.
   * Undefined too if the process exited meanwhile: what was read may then be another
   * process's (its pid reused), so it is not trusted.
   */
  mappingAt(address: number): ProcessMapping | undefined {
    const smaps = fs.readFileSync(`/proc/${this.pid}/smaps`, 'utf8');
    if (!this.alive) return undefined;
    const at = address.toString(16);
    const header = new RegExp(`^${at}-([0-9a-f]+) \\S+ ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\\d+)`, 'm').exec(smaps);
    if (!header) return undefined;
    const flags = /^VmFlags:(.*)$/m.exec(smaps.slice(header.index))?.[1] ?? '';
    const [, end, offset, major, minor, ino] = header;
    return {
      start: address,
      end: parseInt(end!, 16),
      offset: parseInt(offset!, 16),
      dev: encodeDev(parseInt(major!, 16), parseInt(minor!, 16)),
      ino: Number(ino),
      flags: new Set(flags.trim().split(/\s+/)),
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pidfd !== undefined) fs.closeSync(this.pidfd);
  }
}

/** A process already gone (ESRCH, or EINVAL from SO_PEERPIDFD) has no pidfd; anything else is an error. */
function gone(err: unknown): undefined {
  const code = errnoOf(err);
  if (code === 'ESRCH' || code === 'EINVAL') return undefined;
  throw new NaplusError(code ?? 'EIO', `Cannot take a pidfd of the peer: ${(err as Error).message}`, { cause: err });
}

/** st_dev of major:minor as fstat returns it (glibc's makedev). */
function encodeDev(major: number, minor: number): number {
  return (minor & 0xff) + (major & 0xfff) * 0x100 + (minor - (minor & 0xff)) * 0x1000 + (major - (major & 0xfff)) * 2 ** 32;
}
