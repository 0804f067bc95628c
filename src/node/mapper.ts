// The apps attached to a region and what the node does to their mappings: every
// resolved fault becomes a mapping fix (map read-only, map writable, or lift
// write-protection), queued and merged per app into runs of consecutive pages, so a
// readahead window costs one ioctl rather than one per page.
import type { UffdEvent, Userfaultfd } from '../uffd/index.js';
import type { Logger } from '../log.js';
import { errnoOf } from '../errors.js';
import type { Readahead } from './readahead.js';

/** An app attached to this region: its userfaultfd and where it mapped the region. */
export interface AppLink {
  id: number;
  pid: number;
  uffd: Userfaultfd;
  base: number;
  /** The app's sequential streams of misses (see readahead.ts). */
  readahead: Readahead;
  /** Signals the app (through the pidfd taken when it connected; never throws). */
  kill(signal: NodeJS.Signals): void;
  /**
   * Pages poisoned in this app (its next access to each takes SIGBUS). Never mapped for it
   * again: mapping a page (UFFDIO_CONTINUE) replaces the poison, and the app would then
   * read the page's older bytes without a word.
   */
  poisoned: Set<number>;
}

export type AppEvents = (app: AppLink, events: UffdEvent[]) => void;

/**
 * The app takes SIGBUS at its next access to `page`: poisoned, or signalled now where it
 * cannot be (a kernel before 6.6, or the page mapped there already: read-only, with the
 * app's write to it waiting).
 */
export function poison(app: AppLink, page: number, pageSize: number): void {
  app.poisoned.add(page);
  try {
    app.uffd.poison(app.base + page * pageSize, pageSize);
  } catch {
    app.kill('SIGBUS');
  }
}

/** Kinds of mapping work, merged into ranges before the ioctls. */
export const enum Fix {
  MapReadOnly = 0,
  MapWritable = 1,
  Unprotect = 2,
}

export class Mapper {
  readonly apps = new Map<number, AppLink>();
  private pending = new Map<AppLink, Array<[number, Fix]>>();

  constructor(
    private readonly pageSize: number,
    /** Puts zero pages where an app punched holes in the memfd (see apply). */
    private readonly refill: (page: number, count: number) => void,
    private readonly log: Logger,
  ) {}

  add(app: AppLink): void {
    this.apps.set(app.id, app);
  }

  remove(app: AppLink): void {
    this.apps.delete(app.id);
    this.pending.delete(app);
  }

  queue(app: AppLink, page: number, fix: Fix): void {
    if (app.poisoned.has(page)) return; // its poison must stay
    let list = this.pending.get(app);
    if (!list) this.pending.set(app, (list = []));
    list.push([page, fix]);
  }

  /** Carries out the queued fixes, merged into runs of consecutive pages. */
  flush(): void {
    const pending = this.pending;
    if (pending.size === 0) return;
    this.pending = new Map();
    for (const [app, list] of pending) {
      list.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
      let i = 0;
      while (i < list.length) {
        const [first, fix] = list[i]!;
        let last = first;
        while (i + 1 < list.length && list[i + 1]![1] === fix && list[i + 1]![0] <= last + 1) last = list[++i]![0];
        i++;
        this.apply(app, first, last - first + 1, fix);
      }
    }
  }

  private apply(app: AppLink, page: number, count: number, fix: Fix, refilled = false): void {
    const start = app.base + page * this.pageSize;
    const length = count * this.pageSize;
    try {
      if (fix === Fix.Unprotect) app.uffd.writeProtect(start, length, false);
      else app.uffd.continue(start, length, { wp: fix === Fix.MapReadOnly });
    } catch (err) {
      if (fix !== Fix.Unprotect && errnoOf(err) === 'EFAULT' && !refilled) {
        // CONTINUE finds no page where an app punched a hole in the memfd (fallocate,
        // MADV_REMOVE): zero pages go in the holes, as every other mapping reads them
        // now; then no fault waits forever.
        this.refill(page, count);
        return this.apply(app, page, count, fix, true);
      }
      this.log('warn', `app ${app.pid}: mapping pages ${page}..${page + count - 1} failed: ${(err as Error).message}`);
    }
  }

  /**
   * Every app takes SIGBUS at its next access to `page` (dropped from the memfd first):
   * the page is poisoned in each app's mapping (UFFDIO_POISON, Linux 6.6), or, on older
   * kernels, the app is sent SIGBUS now.
   */
  poison(page: number, reason: string): void {
    for (const app of this.apps.values()) {
      this.log('warn', `app ${app.pid}: page ${page} is poisoned (its next access takes SIGBUS): ${reason}`);
      poison(app, page, this.pageSize);
    }
  }

  /** No app may write `page` until a fix lifts it again. Queued fixes land first, never after. */
  protect(page: number): void {
    this.flush();
    for (const app of this.apps.values()) {
      try {
        app.uffd.writeProtect(app.base + page * this.pageSize, this.pageSize, true);
      } catch (err) {
        this.log('warn', `app ${app.pid}: write-protect of page ${page} failed: ${(err as Error).message}`);
      }
    }
  }
}
