// When to spend CPU on LZ4. Measured here (lz4-napi, 4 KiB pages): compressing ordinary
// data (text, code, numbers) costs 11-18 µs a page and random data 15 µs for nothing;
// sparse pages 2 µs; decompressing 2-4 µs. Loopback or a fast LAN moves a raw 4 KiB
// page in 2-3 µs, so there LZ4 costs more time than it saves; on a link that cannot
// keep up, it is what lets more pages through. Hence 'auto': compress while the link is
// backlogged (the socket holds bytes the kernel would not take yet), send raw while it
// keeps up, and after a batch that did not shrink, skip LZ4 for a growing number of
// batches before trying again.
export type CompressMode = 'auto' | 'always' | 'never';

const MAX_SKIP = 64;

export class CompressionPolicy {
  private skip = 0;
  private backoff = 0;

  constructor(private readonly mode: CompressMode) {}

  /** Whether to try LZ4 on the next batch of pages. */
  shouldTry(backlogged: boolean): boolean {
    if (this.mode !== 'auto') return this.mode === 'always';
    if (!backlogged) return false;
    if (this.skip === 0) return true;
    this.skip--;
    return false;
  }

  /** What a try gave: whether LZ4 shrank the batch. */
  record(shrank: boolean): void {
    if (shrank) this.backoff = 0;
    else this.skip = this.backoff = Math.min(MAX_SKIP, Math.max(1, this.backoff * 2));
  }
}
