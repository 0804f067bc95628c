// Writes a node lost before they were durable (a dirty page whose home was cut off,
// data handed to a home that died before it said it had it). Every app attached when a
// loss happens must be told at its next synchronization, which fails saying why: the
// node cannot know which app made which write, so none may believe its writes durable.
const KEEP = 8;

export class LossLog {
  /** Losses noted so far (a synchronization compares it with what its app was told). */
  count = 0;
  /** The reasons of the latest losses. */
  private readonly recent: string[] = [];

  note(reason: string): void {
    this.count++;
    this.recent.push(reason);
    if (this.recent.length > KEEP) this.recent.shift();
  }

  /** What was lost since `count` was `seen`, in one sentence. */
  since(seen: number): string {
    const n = this.count - seen;
    const shown = this.recent.slice(-Math.min(n, KEEP));
    return `${shown.join('; ')}${n > shown.length ? ` (and ${n - shown.length} more)` : ''}`;
  }
}
