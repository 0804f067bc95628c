// Log lines that other processes can cause (a bad message, a connection refused) are
// rationed: at most `burst` lines per interval for one kind of event, then one line at
// the end of the interval counting the rest. However fast a hostile client goes, the
// log grows by a bounded number of lines per interval.
export class LogBudget {
  private used = 0;
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: (message: string) => void,
    /** What the summary line counts ("bad messages on data.sock"). */
    private readonly what: string,
    private readonly burst = 10,
    private readonly intervalMs = 10_000,
  ) {}

  say(message: string): void {
    if (this.used < this.burst) {
      this.used++;
      this.log(message);
    } else {
      this.dropped++;
    }
    this.timer ??= setTimeout(() => this.endInterval(), this.intervalMs).unref();
  }

  private endInterval(): void {
    this.timer = undefined;
    if (this.dropped > 0) this.log(`${this.dropped} more ${this.what} in the last ${this.intervalMs / 1000} s, not logged one by one`);
    this.used = 0;
    this.dropped = 0;
  }
}
