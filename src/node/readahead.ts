// Readahead across the sequential streams of one app's misses. A program often walks
// several arrays at once (a matrix multiply reads A and B and writes C): one detector
// per app would see their misses interleaved and never call any of them sequential.
// So each app keeps a few streams; a miss just past a stream's end extends it (its
// window doubling, up to a cap), any other miss starts a stream in the slot used least
// recently.
const STREAMS = 8;

interface Stream {
  /** Last page this stream has fetched (the faulting page or the end of its readahead). */
  last: number;
  window: number;
  used: number;
}

export class Readahead {
  private readonly streams: Stream[] = [];
  private clock = 0;

  constructor(
    /** Largest window in pages; 0 or 1 turns readahead off. */
    private readonly max: number,
  ) {}

  /** A miss at `page`: the number of pages to fetch from it on (1: just this one). */
  miss(page: number): number {
    this.clock++;
    let s = this.streams.find((x) => page > x.last && page <= x.last + x.window);
    if (s) {
      s.window = Math.min(s.window * 2, Math.max(1, this.max));
    } else {
      s = { last: page, window: 1, used: 0 };
      if (this.streams.length < STREAMS) this.streams.push(s);
      else this.streams[this.streams.reduce((lru, x, i, all) => (x.used < all[lru]!.used ? i : lru), 0)] = s;
    }
    s.used = this.clock;
    s.last = page + s.window - 1;
    return s.window;
  }
}
