// When to spend CPU on LZ4. Measured here (lz4-napi, 4 KiB pages): compressing ordinary
// data (text, code, numbers) costs 11-18 µs a page and random data 15 µs for nothing;
// sparse pages 2 µs; decompressing 2-4 µs. Loopback or a fast LAN moves a raw 4 KiB
// page in 2-3 µs, so there LZ4 costs more time than it saves; on a link that cannot
// keep up, it is what lets more pages through.
//
// Hence 'auto': send raw while the link keeps up (the socket holds nothing back, so
// latency is all that matters); once it is backlogged, compress only if the link is the
// bottleneck, that is if it drains bytes more slowly than LZ4 can produce them (both
// rates measured on this link, as moving averages): a 1 Gbit/s link drains ~125 MB/s
// where LZ4 makes ~250 MB/s, loopback drains GB/s. After a batch that did not shrink,
// skip LZ4 for a growing number of batches before trying again.
export type CompressMode = 'auto' | 'always' | 'never';

const MAX_SKIP = 64;
/** Weight of the newest sample in the moving averages. */
const ALPHA = 0.2;
/** Periods shorter than this are timer noise, not rates. */
const MIN_MS = 0.001;

function average(old: number, sample: number): number {
  return old === 0 ? sample : old + ALPHA * (sample - old);
}

export class CompressionPolicy {
  private skip = 0;
  private backoff = 0;
  /** Raw bytes LZ4 compressed per ms, and bytes per ms the link drained while backlogged (0: not measured yet). */
  private lz4Rate = 0;
  private drainRate = 0;

  constructor(private readonly mode: CompressMode) {}

  /** Whether to try LZ4 on the next batch of pages. */
  shouldTry(backlogged: boolean): boolean {
    if (this.mode !== 'auto') return this.mode === 'always';
    if (!backlogged) return false;
    if (this.lz4Rate > 0 && this.drainRate > this.lz4Rate) return false; // the link outruns LZ4
    if (this.skip === 0) return true;
    this.skip--;
    return false;
  }

  /** What a try gave: whether LZ4 shrank the batch, and how long it took on how many bytes. */
  record(shrank: boolean, rawBytes: number, ms: number): void {
    this.lz4Rate = average(this.lz4Rate, rawBytes / Math.max(ms, MIN_MS));
    if (shrank) this.backoff = 0;
    else this.skip = this.backoff = Math.min(MAX_SKIP, Math.max(1, this.backoff * 2));
  }

  /** A backlog cleared: `bytes` went to the kernel in `ms`. */
  recordDrain(bytes: number, ms: number): void {
    this.drainRate = average(this.drainRate, bytes / Math.max(ms, MIN_MS));
  }
}
