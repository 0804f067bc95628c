// Fault trace: one event per resolved fault, kept in a bounded ring (for stats and live
// streaming) and optionally appended to a JSON-lines file (`--trace`).
import fs from 'node:fs';
import type { FaultEvent } from '../trace/fault-event.js';

export class TraceLog {
  private ring: FaultEvent[] = [];
  private next = 0;
  private listeners = new Set<(e: FaultEvent) => void>();
  private file: fs.WriteStream | undefined;
  total = 0;

  constructor(
    private readonly capacity = 65536,
    filePath?: string,
  ) {
    if (filePath) this.file = fs.createWriteStream(filePath, { flags: 'a' });
  }

  record(e: FaultEvent): void {
    this.total++;
    if (this.ring.length < this.capacity) this.ring.push(e);
    else this.ring[this.next] = e;
    this.next = (this.next + 1) % this.capacity;
    if (this.file) this.file.write(`${JSON.stringify(e)}\n`);
    for (const l of this.listeners) l(e);
  }

  /** Events still in the ring, oldest first. */
  recent(): FaultEvent[] {
    return this.ring.length < this.capacity ? [...this.ring] : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }

  subscribe(listener: (e: FaultEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    return new Promise((resolve) => (file ? file.end(resolve) : resolve()));
  }
}
