// Fetches waiting for a home that is unreachable: each waits at most the grace time
// (a node still starting, a home restarting), then its faults fail, so that nothing waits
// for ever.
import type { Clock } from '../protocol.js';

export class Parking {
  /** home → page → when it started waiting. */
  private readonly waiting = new Map<number, Map<number, number>>();
  private readonly checking = new Set<number>();

  constructor(
    private readonly clock: Clock,
    private readonly graceMs: number,
    /** `page` waited for `home` for `waitedMs`: it is given up. */
    private readonly expired: (page: number, home: number, waitedMs: number) => void,
  ) {}

  park(home: number, page: number): void {
    let pages = this.waiting.get(home);
    if (!pages) this.waiting.set(home, (pages = new Map()));
    if (!pages.has(page)) pages.set(page, this.clock.now());
    this.checkAfter(home, this.graceMs);
  }

  /** `home` is back: the pages that waited for it, which wait no more. */
  unpark(home: number): number[] {
    const pages = this.waiting.get(home);
    this.waiting.delete(home);
    return pages ? [...pages.keys()] : [];
  }

  private checkAfter(home: number, ms: number): void {
    if (this.checking.has(home)) return;
    this.checking.add(home);
    this.clock.after(ms, () => {
      this.checking.delete(home);
      const pages = this.waiting.get(home);
      if (!pages) return;
      const now = this.clock.now();
      let next = Infinity;
      for (const [page, since] of [...pages]) {
        if (now - since < this.graceMs) {
          next = Math.min(next, since + this.graceMs - now);
          continue;
        }
        pages.delete(page);
        this.expired(page, home, now - since);
      }
      if (pages.size === 0) this.waiting.delete(home);
      else this.checkAfter(home, next);
    });
  }
}
