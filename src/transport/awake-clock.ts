// Time as liveness is judged in: the time this process was running. A peer's silence is
// measured on this clock, so that time during which this process did not run (stopped,
// starved of CPU, busy in a long synchronous task) never counts against a peer: its
// frames were waiting unread in our sockets, or would have been.
//
// A stall shows as a callback that runs later than it should. Every judgement checks in
// first (`ran`): not only the heartbeat timer, but also the judge it schedules right
// after, since a process stopped between the two resumes in the middle of its event loop
// turn, and the judge would run before any timer could notice.
export class AwakeClock {
  private stalled = 0;
  private lastRan = performance.now();

  now(): number {
    return performance.now() - this.stalled;
  }

  /**
   * This process runs now, `expectedMs` after it last checked in: whatever more than that
   * (beyond `jitterMs`) has passed is time it did not run. Returns that time (0 if none).
   */
  ran(expectedMs: number, jitterMs: number): number {
    const t = performance.now();
    const late = t - this.lastRan - expectedMs;
    this.lastRan = t;
    if (late <= jitterMs) return 0;
    this.stalled += late;
    return late;
  }
}
