// One userfaultfd: creation with the features the design needs, registration, the
// range ioctls that resolve faults, and a watcher on the Node event loop.
//
// Kernel hazards, handled here and nowhere else:
// - EAGAIN: every UFFDIO_* call fails while the address space is changing (fork,
//   mremap, or a remove/unmap event not yet read). The cure is to read the pending
//   events, then retry from where the kernel stopped (it reports partial progress).
//   Events read that way are kept and handed to the watcher's handler on the next
//   microtask, so none is lost and the handler is never re-entered.
// - EEXIST: the page is already mapped, because another fault on it won the race.
//   That page is done; skip it, carry on, and wake the range at the end. Not so for a
//   poison: a page mapped there (read-only, say, faulting on a write) is not poisoned,
//   so the caller must hear of it and tell the app another way.
// - UFFDIO_WRITEPROTECT with WP and DONTWAKE together is EINVAL: setting WP never
//   wakes anyway, so WP is always asked for without DONTWAKE.
// - UFFDIO_CONTINUE_MODE_WP (Linux 6.5) maps a page read-only in one step. Without it
//   a page is briefly writable between CONTINUE and WRITEPROTECT, so another thread of
//   the app could write it unseen; the fallback is used only on older kernels.
import fs from 'node:fs';
import { native, K, type NativeWatcher } from './native.js';
import { decodeEvents, type UffdEvent } from './events.js';
import { PAGE_SIZE } from './memory.js';
import { NaplusError, checkAligned, errnoOf } from '../errors.js';

export type { UffdEvent } from './events.js';

/** Optional events the kernel sends only when asked for them at UFFDIO_API. */
export type UffdEventKind = 'fork' | 'remap' | 'remove' | 'unmap';

export interface RegisterModes {
  missing?: boolean;
  minor?: boolean;
  wp?: boolean;
}

export interface Watch {
  stop(): void;
  /** With `false`, the watch no longer keeps the process alive. */
  ref(on: boolean): void;
}

/** How the userfaultfd was obtained; `syscall-user-mode` cannot serve faults taken inside syscalls. */
export type UffdVia = 'syscall' | 'device' | 'syscall-user-mode';

const EVENT_FEATURES: Record<UffdEventKind, string> = {
  fork: 'UFFD_FEATURE_EVENT_FORK',
  remap: 'UFFD_FEATURE_EVENT_REMAP',
  remove: 'UFFD_FEATURE_EVENT_REMOVE',
  unmap: 'UFFD_FEATURE_EVENT_UNMAP',
};

const MAX_EAGAIN_RETRIES = 1000;

export const PERMISSION_REMEDY =
  'Run as root (or with CAP_SYS_PTRACE), or set `sysctl vm.unprivileged_userfaultfd=1`, ' +
  'or give this user read-write access to /dev/userfaultfd.';

function createFd(): { fd: number; via: UffdVia } {
  const flags = K.O_CLOEXEC! | K.O_NONBLOCK!;
  const failures: string[] = [];
  const attempts: Array<[UffdVia, () => number]> = [
    ['syscall', () => native.uffdCreate(flags)],
    ['device', () => native.uffdCreateDevice(flags)],
    // Always allowed since Linux 5.11, but faults inside syscalls (read() into shared
    // memory, say) then fail with EFAULT instead of being served.
    ['syscall-user-mode', () => native.uffdCreate(flags | K.UFFD_USER_MODE_ONLY!)],
  ];
  for (const [via, attempt] of attempts) {
    try {
      return { fd: attempt(), via };
    } catch (err) {
      failures.push(`${via}: ${(err as Error).message}`);
    }
  }
  throw new NaplusError(
    'EPERM',
    `Cannot create a userfaultfd (${failures.join('; ')}). ${PERMISSION_REMEDY}`,
  );
}

/** Set by the kernel in a userfaultfd's features once UFFDIO_API is done (fs/userfaultfd.c). */
const UFFD_FEATURE_INITIALIZED = 0x8000_0000;

/**
 * The features a userfaultfd of this process was given at UFFDIO_API, as the kernel
 * shows them in /proc/self/fdinfo ("API:\t<api>:<features>:<ioctls>", hex).
 */
function negotiatedFeatures(fd: number): number {
  let kind: string;
  let info: string;
  try {
    kind = fs.readlinkSync(`/proc/self/fd/${fd}`);
    info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  } catch (err) {
    throw new NaplusError('EBADF', `Descriptor ${fd} cannot be inspected: ${(err as Error).message}`, { cause: err });
  }
  if (kind !== 'anon_inode:[userfaultfd]') throw new NaplusError('EBADF', `Descriptor ${fd} is not a userfaultfd (it is ${kind})`);
  const api = /^API:\s*[0-9a-f]+:([0-9a-f]+):/m.exec(info);
  const features = api ? parseInt(api[1]!, 16) : 0;
  if (!(features & UFFD_FEATURE_INITIALIZED)) {
    throw new NaplusError('EINVAL', `userfaultfd ${fd} has not done its UFFDIO_API handshake`);
  }
  return (features & ~UFFD_FEATURE_INITIALIZED) >>> 0;
}

export class Userfaultfd {
  private backlog: UffdEvent[] = [];
  private handler: ((events: UffdEvent[]) => void) | undefined;
  private watcher: NativeWatcher | undefined;
  private continueWp: boolean;
  private closed = false;

  private constructor(
    readonly fd: number,
    /** Feature bits this userfaultfd was given at UFFDIO_API. */
    readonly features: number,
    readonly via: UffdVia,
    readonly pageSize: number,
  ) {
    this.continueWp = true; // assumed until the kernel says EINVAL (before 6.5)
  }

  /**
   * Creates a userfaultfd for this process and negotiates the features shared-memory
   * coherence needs (MISSING, MINOR and WP faults on shmem). `events` asks for the
   * non-cooperative events the kernel sends on fork/mremap/madvise/munmap.
   */
  static open(options: { events?: UffdEventKind[]; pageSize?: number } = {}): Userfaultfd {
    let wanted =
      K.UFFD_FEATURE_MISSING_SHMEM! |
      K.UFFD_FEATURE_MINOR_SHMEM! |
      K.UFFD_FEATURE_WP_HUGETLBFS_SHMEM! |
      K.UFFD_FEATURE_PAGEFAULT_FLAG_WP! |
      K.UFFD_FEATURE_THREAD_ID!;
    for (const kind of options.events ?? ['remap', 'remove', 'unmap']) wanted |= K[EVENT_FEATURES[kind]]!;
    const pageSize = options.pageSize ?? PAGE_SIZE;
    try {
      // POISON (Linux 6.6) is optional: it lets the node fail an access it cannot
      // serve with SIGBUS. Older kernels answer EINVAL to the unknown bit.
      return Userfaultfd.negotiate(wanted | K.UFFD_FEATURE_POISON!, pageSize);
    } catch (err) {
      if (errnoOf(err) !== 'EINVAL') throw err;
    }
    try {
      return Userfaultfd.negotiate(wanted, pageSize);
    } catch (err) {
      if (errnoOf(err) !== 'EINVAL') throw err;
      throw new NaplusError(
        'ENOTSUP',
        `This kernel's userfaultfd lacks shared-memory MINOR/WP support (Linux >= 5.19 needed): ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  /** A new userfaultfd with UFFDIO_API done (which the kernel allows once per descriptor). */
  private static negotiate(features: number, pageSize: number): Userfaultfd {
    const { fd, via } = createFd();
    try {
      native.uffdApi(fd, features);
      return new Userfaultfd(fd, negotiatedFeatures(fd), via, pageSize);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /**
   * Wraps a userfaultfd received from another process, which did UFFDIO_API. The sender
   * is not taken at its word: the descriptor must be a userfaultfd (a FIFO, file or
   * socket in its place is EBADF) whose handshake is done (else EINVAL), and its
   * features are the ones the kernel reports. On failure the descriptor stays the
   * caller's to close.
   */
  static adopt(fd: number, options: { via?: UffdVia; pageSize?: number } = {}): Userfaultfd {
    return new Userfaultfd(fd, negotiatedFeatures(fd), options.via ?? 'syscall', options.pageSize ?? PAGE_SIZE);
  }

  /** Whether fork events were asked for: reading one installs a new userfaultfd in the reader. */
  get forkEvents(): boolean {
    return (this.features & K.UFFD_FEATURE_EVENT_FORK!) !== 0;
  }

  /** Registers [start, start+length) for the given fault modes; returns the allowed-ioctl bits. */
  register(start: number, length: number, modes: RegisterModes = { missing: true, minor: true, wp: true }): number {
    this.checkRange(start, length);
    let mode = 0;
    if (modes.missing) mode |= K.UFFDIO_REGISTER_MODE_MISSING!;
    if (modes.minor) mode |= K.UFFDIO_REGISTER_MODE_MINOR!;
    if (modes.wp) mode |= K.UFFDIO_REGISTER_MODE_WP!;
    if (mode === 0) throw new NaplusError('EINVAL', 'Register needs at least one of missing, minor, wp');
    return this.call(() => native.uffdRegister(this.fd, start, length, mode));
  }

  unregister(start: number, length: number): void {
    this.checkRange(start, length);
    this.call(() => native.uffdUnregister(this.fd, start, length));
  }

  /**
   * Maps pages that are already in the shared file (MINOR faults, or MISSING faults
   * after the page was filled through another mapping). `wp` maps them read-only.
   */
  continue(start: number, length: number, options: { wp?: boolean; wake?: boolean } = {}): void {
    this.checkRange(start, length);
    const wp = options.wp ?? false;
    const wake = options.wake ?? true;
    if (wp && this.continueWp) {
      try {
        this.fill(start, length, wake, (s, l, dontwake) =>
          native.uffdContinue(this.fd, s, l, K.UFFDIO_CONTINUE_MODE_WP! | dontwake),
        'continue');
        return;
      } catch (err) {
        if (errnoOf(err) !== 'EINVAL') throw err;
        this.continueWp = false;
      }
    }
    const dontwake = K.UFFDIO_CONTINUE_MODE_DONTWAKE!;
    this.fill(start, length, wake && !wp, (s, l, dw) => native.uffdContinue(this.fd, s, l, wp ? dontwake : dw), 'continue');
    if (wp) {
      this.writeProtect(start, length, true);
      if (wake) this.wake(start, length);
    }
  }

  /** UFFDIO_COPY from `src` (an address in this process) into the registered range. */
  copy(dst: number, src: number, length: number, options: { wp?: boolean; wake?: boolean } = {}): void {
    this.checkRange(dst, length);
    const mode = options.wp ? K.UFFDIO_COPY_MODE_WP! : 0;
    this.fill(dst, length, options.wake ?? true, (s, l, dontwake) =>
      native.uffdCopy(this.fd, s, src + (s - dst), l, mode | dontwake),
    'copy');
  }

  /** UFFDIO_ZEROPAGE (anonymous memory only; shared memory answers EINVAL). */
  zeropage(start: number, length: number, options: { wake?: boolean } = {}): void {
    this.checkRange(start, length);
    this.fill(start, length, options.wake ?? true, (s, l, dontwake) =>
      native.uffdZeropage(this.fd, s, l, dontwake),
    'zeropage');
  }

  /** Sets (`protect`) or clears write protection. Clearing wakes the writers unless `wake` is false. */
  writeProtect(start: number, length: number, protect: boolean, options: { wake?: boolean } = {}): void {
    this.checkRange(start, length);
    let mode = protect ? K.UFFDIO_WRITEPROTECT_MODE_WP! : 0;
    if (!protect && options.wake === false) mode |= K.UFFDIO_WRITEPROTECT_MODE_DONTWAKE!;
    this.call(() => native.uffdWriteprotect(this.fd, start, length, mode));
  }

  /**
   * Makes every later access to the range raise SIGBUS in the app (and wakes the
   * threads waiting on it, which then take the signal): how a fault the node cannot
   * serve ends instead of hanging. Needs Linux 6.6 (UFFD_FEATURE_POISON).
   */
  poison(start: number, length: number): void {
    this.checkRange(start, length);
    if (!(this.features & K.UFFD_FEATURE_POISON!)) {
      throw new NaplusError('ENOTSUP', 'This kernel cannot poison userfaultfd ranges (Linux >= 6.6 needed)');
    }
    this.fill(start, length, true, (s, l, dontwake) => native.uffdPoison(this.fd, s, l, dontwake), 'poison');
  }

  wake(start: number, length: number): void {
    this.checkRange(start, length);
    this.call(() => native.uffdWake(this.fd, start, length));
  }

  /**
   * Delivers events in batches from the Node event loop: every message pending at a
   * wake-up arrives in one call. Only one handler per userfaultfd.
   */
  watch(handler: (events: UffdEvent[]) => void, onError: (err: NaplusError) => void): Watch {
    if (this.watcher) throw new NaplusError('EBUSY', 'This userfaultfd is already watched');
    this.handler = handler;
    this.watcher = new native.Watcher(this.fd, true, (err, _events, messages) => {
      if (err) {
        onError(new NaplusError('EIO', `Reading userfaultfd ${this.fd} failed: ${err}`));
        return;
      }
      const events = this.takeBacklog().concat(decodeEvents(messages!));
      if (events.length > 0) handler(events);
    });
    const watcher = this.watcher;
    return {
      stop: () => this.stopWatching(),
      ref: (on: boolean) => watcher.ref(on),
    };
  }

  close(): void {
    if (this.closed) return;
    this.stopWatching();
    this.closed = true;
    fs.closeSync(this.fd);
  }

  private stopWatching(): void {
    this.watcher?.stop();
    this.watcher = undefined;
    this.handler = undefined;
  }

  private takeBacklog(): UffdEvent[] {
    const events = this.backlog;
    this.backlog = [];
    return events;
  }

  private checkRange(start: number, length: number): void {
    if (this.closed) throw new NaplusError('EBADF', `userfaultfd ${this.fd} is closed`);
    checkAligned('start', start, this.pageSize);
    checkAligned('length', length, this.pageSize);
    if (length === 0) throw new NaplusError('EINVAL', 'Expected a non-empty range for length but received 0');
  }

  /** Runs a non-filling ioctl, draining events and retrying on EAGAIN. */
  private call<T>(op: () => T): T {
    for (let tries = 0; ; tries++) {
      try {
        return op();
      } catch (err) {
        if (errnoOf(err) !== 'EAGAIN' || tries >= MAX_EAGAIN_RETRIES) throw this.wrap(err);
        this.drain();
      }
    }
  }

  /**
   * Runs a filling ioctl over a range, resuming after partial progress. `dontwake`
   * is passed to `op` as the mode bit to add; wake-up happens once at the end.
   */
  private fill(
    start: number,
    length: number,
    wake: boolean,
    op: (start: number, length: number, dontwake: number) => number,
    name: 'copy' | 'zeropage' | 'continue' | 'poison',
  ): void {
    let done = 0;
    let interrupted = false; // after any partial step, wake the whole range once at the end
    let tries = 0;
    const dontwakeBit = {
      copy: K.UFFDIO_COPY_MODE_DONTWAKE!,
      zeropage: K.UFFDIO_ZEROPAGE_MODE_DONTWAKE!,
      continue: K.UFFDIO_CONTINUE_MODE_DONTWAKE!,
      poison: K.UFFDIO_POISON_MODE_DONTWAKE!,
    }[name];
    while (done < length) {
      try {
        op(start + done, length - done, wake && !interrupted ? 0 : dontwakeBit);
        done = length;
      } catch (err) {
        const code = errnoOf(err);
        done += (err as { done?: number }).done ?? 0;
        interrupted = true;
        if (code === 'EEXIST' && name !== 'poison') {
          done += this.pageSize; // another fault mapped this page first
        } else if (code === 'EAGAIN' && ++tries <= MAX_EAGAIN_RETRIES) {
          this.drain();
        } else {
          throw this.wrap(err);
        }
      }
    }
    if (wake && interrupted) native.uffdWake(this.fd, start, length);
  }

  private drain(): void {
    this.backlog.push(...decodeEvents(native.readUffd(this.fd)));
    if (this.backlog.length > 0 && this.handler) {
      queueMicrotask(() => {
        const events = this.takeBacklog();
        if (events.length > 0) this.handler?.(events);
      });
    }
  }

  private wrap(err: unknown): NaplusError {
    if (err instanceof NaplusError) return err;
    const e = err as Error;
    return new NaplusError(errnoOf(err) ?? 'EIO', `userfaultfd ${this.fd}: ${e.message}`, { cause: err });
  }
}
