// Write notices: "page p has been written up to version v". A page's version only grows
// (its home counts the diffs its master copy took in), so what anyone knows of a page
// is one number, the newest version heard of, and notices merge by taking the larger.
//
// A node, and a lock or barrier home, each keep what they know in a VersionLog, which
// also remembers the order in which versions rose: what rose since some point (the last
// time we told a given peer) is read back without scanning every page. That is how
// notices travel in deltas, per peer, with a watermark each (Watermarks): a releaser
// tells a sync home what it learnt since it last told it, a sync home tells an acquirer
// what it learnt since it last told it. A watermark is dropped when its peer goes down
// (what was sent may not have arrived): the next delta to it is everything.
//
// On the wire, a list of notices is u32 page | u32 version pairs, little-endian.
import { NaplusError } from '../../errors.js';

export class VersionLog {
  /** Per page: the log sequence number of its last rise. */
  private readonly seqOf: Float64Array;
  /** Pages in the order they rose (an entry is stale when its page rose again later). */
  private order: number[] = [];
  private orderSeq: number[] = [];
  private raised = 0;
  /** The number of the last rise: a point to read from later (see since). */
  seq = 0;

  constructor(
    readonly pages: number,
    /** Where the versions live: memory, or a store that outlives the process. */
    private readonly store: { read(page: number): number; write(page: number, version: number): void } = memoryStore(pages),
  ) {
    this.seqOf = new Float64Array(pages);
    // What the store kept from an earlier process is known: every peer hears of it anew.
    for (let page = 0; page < pages; page++) if (store.read(page) > 0) this.note(page);
  }

  get(page: number): number {
    return this.store.read(page);
  }

  /** `page` was written up to `version`: true if that is news. */
  raise(page: number, version: number): boolean {
    if (version <= this.store.read(page)) return false;
    this.store.write(page, version);
    this.note(page);
    return true;
  }

  private note(page: number): void {
    this.seq++;
    if (this.seqOf[page] === 0) this.raised++;
    this.seqOf[page] = this.seq;
    this.order.push(page);
    this.orderSeq.push(this.seq);
    if (this.order.length > 2 * this.raised + 1024) this.compact();
  }

  private compact(): void {
    const keep = this.order.map((page, i) => this.seqOf[page] === this.orderSeq[i]);
    this.order = this.order.filter((_, i) => keep[i]);
    this.orderSeq = this.orderSeq.filter((_, i) => keep[i]);
  }

  /** The notices of every page that rose after point `seq`, encoded; undefined if none. */
  since(seq: number): Uint8Array | undefined {
    let lo = 0;
    let hi = this.orderSeq.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.orderSeq[mid]! <= seq) lo = mid + 1;
      else hi = mid;
    }
    const pages: number[] = [];
    for (let i = lo; i < this.order.length; i++) {
      const page = this.order[i]!;
      if (this.seqOf[page] === this.orderSeq[i]) pages.push(page);
    }
    if (pages.length === 0) return undefined;
    const out = new Uint8Array(pages.length * 8);
    const view = new DataView(out.buffer);
    pages.forEach((page, i) => {
      view.setUint32(i * 8, page, true);
      view.setUint32(i * 8 + 4, this.store.read(page), true);
    });
    return out;
  }
}

function memoryStore(pages: number): { read(page: number): number; write(page: number, version: number): void } {
  const versions = new Uint32Array(pages);
  return { read: (page) => versions[page]!, write: (page, version) => (versions[page] = version) };
}

/** Per peer, the point of a VersionLog up to which that peer has been told. */
export class Watermarks {
  private readonly marks = new Map<number, number>();

  constructor(private readonly log: VersionLog) {}

  /** What `peer` has not been told yet, from now on counted as told. */
  take(peer: number): Uint8Array | undefined {
    const delta = this.log.since(this.marks.get(peer) ?? 0);
    this.marks.set(peer, this.log.seq);
    return delta;
  }

  /** `peer` went down: what was sent to it may be lost, so it is told everything next time. */
  forget(peer: number): void {
    this.marks.delete(peer);
  }
}

/** The notices in `bytes` (from another node), checked against a region of `pages` pages; throws EPROTO. */
export function decodeNotices(bytes: Uint8Array, pages: number): Array<[number, number]> {
  if (bytes.length % 8 !== 0) throw new NaplusError('EPROTO', `sent write notices of ${bytes.length} bytes, not a list of 8-byte pairs`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const out: Array<[number, number]> = [];
  for (let at = 0; at < bytes.length; at += 8) {
    const page = view.getUint32(at, true);
    const version = view.getUint32(at + 4, true);
    if (page >= pages || version === 0) throw new NaplusError('EPROTO', `sent a write notice for page ${page} at version ${version} (the region has ${pages} pages; versions start at 1)`);
    out.push([page, version]);
  }
  return out;
}
