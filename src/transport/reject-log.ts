// Log lines for connections refused before their peer was authenticated, at a bounded
// rate: anyone who can reach the port can cause them (a slowloris of 500 connections
// once wrote 4,507 lines a minute). In each interval the first few are logged in full,
// the rest are counted by reason, and one summary line at the end of the interval says
// how many of each there were. The interval starts with its first rejection, so a
// quiet node logs nothing, and an isolated rejection is always logged in full.
import type { LogLevel } from '../log.js';

/** Rejections logged in full per interval. */
export const REJECTIONS_IN_FULL = 5;

export class RejectionLog {
  private logged = 0;
  private suppressed = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private since = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly log: (level: LogLevel, msg: string) => void,
  ) {}

  /** One refused connection: `why` is its reason in a few words (the summary's key), `line` the full log line. */
  add(why: string, line: string, level: LogLevel): void {
    if (!this.timer) {
      this.since = Date.now();
      this.timer = setTimeout(() => this.flush(), this.intervalMs).unref();
    }
    if (this.logged < REJECTIONS_IN_FULL) {
      this.logged++;
      this.log(level, line);
      return;
    }
    this.suppressed.set(why, (this.suppressed.get(why) ?? 0) + 1);
  }

  /** Ends the interval: the summary of what was not logged in full, if anything was not. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const counts = [...this.suppressed].sort((a, b) => b[1] - a[1]);
    const total = counts.reduce((n, [, c]) => n + c, 0);
    this.logged = 0;
    this.suppressed = new Map();
    if (total === 0) return;
    this.log(
      'warn',
      `refused ${total} more connection(s) in the last ${Date.now() - this.since} ms, beyond the ${REJECTIONS_IN_FULL} logged in full: ` +
        counts.map(([why, n]) => `${n} ${why}`).join(', '),
    );
  }
}
