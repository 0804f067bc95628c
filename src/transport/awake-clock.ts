// Time as liveness is judged in: the time this process was running. A peer's silence is
// measured on this clock, so that time during which this process did not run (stopped,
// starved of CPU, busy in a long synchronous task) never counts against a peer: its
// frames were waiting unread in our sockets, or would have been. A stall shows as a
// heartbeat timer that fires late; how late is subtracted from this clock.
export class AwakeClock {
  private stalled = 0;
  private lastTick = performance.now();

  now(): number {
    return performance.now() - this.stalled;
  }

  /**
   * Called by the heartbeat timer, due every `intervalMs`: returns how late it fired (ms),
   * 0 when within timer jitter (a quarter of the interval). The lateness is time this
   * process did not run.
   */
  tick(intervalMs: number): number {
    const t = performance.now();
    const late = t - this.lastTick - intervalMs;
    this.lastTick = t;
    if (late <= intervalMs / 4) return 0;
    this.stalled += late;
    return late;
  }
}
