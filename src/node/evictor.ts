// The cache limit of one region on one node (`--cache`): pages in the cache are
// counted, and past the limit the oldest arrivals are given up (FIFO), clean ones
// dropped and dirty ones written home by the protocol. A node can so use a region
// larger than its memory.
import type { PageProtocol } from '../coherence/protocol.js';

export class Evictor {
  /** Resident pages in arrival order (stale entries skipped as they come up). */
  private queue: number[] = [];
  private head = 0;
  private count = 0;
  evictions = 0;

  constructor(
    readonly limitPages: number,
    private readonly protocol: PageProtocol,
    /** Pages with faults in flight are not taken away under them. */
    private readonly busy: (page: number) => boolean,
  ) {}

  get resident(): number {
    return this.count;
  }

  arrived(page: number): void {
    this.count++;
    this.queue.push(page);
  }

  dropped(): void {
    this.count--;
  }

  enforce(): void {
    let scanned = 0;
    const max = this.queue.length - this.head;
    while (this.count > this.limitPages && scanned++ < max) {
      const page = this.queue[this.head++]!;
      if (!this.protocol.permits(page, 'read')) continue; // dropped since
      // A busy page, or one in a transaction, goes to the back of the queue.
      if (this.busy(page) || !this.protocol.evict(page)) {
        this.queue.push(page);
        continue;
      }
      this.evictions++;
    }
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
