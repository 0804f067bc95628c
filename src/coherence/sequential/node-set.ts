// Per-page sets of nodes (a page's sharers), as bitmasks over node indexes: one 32-bit
// word per page for clusters of up to 32 nodes, more words beyond. A region of a
// million pages costs 4 MiB here, where a Set per page would cost a hundred.
export class NodeSetTable {
  private readonly words: number;
  private readonly bits: Uint32Array;

  constructor(
    pages: number,
    readonly nodes: number,
  ) {
    this.words = Math.max(1, Math.ceil(nodes / 32));
    this.bits = new Uint32Array(pages * this.words);
  }

  has(page: number, index: number): boolean {
    return (this.bits[page * this.words + (index >>> 5)]! & (1 << (index & 31))) !== 0;
  }

  add(page: number, index: number): void {
    this.bits[page * this.words + (index >>> 5)]! |= 1 << (index & 31);
  }

  remove(page: number, index: number): void {
    this.bits[page * this.words + (index >>> 5)]! &= ~(1 << (index & 31));
  }

  clear(page: number): void {
    this.bits.fill(0, page * this.words, (page + 1) * this.words);
  }

  /** The indexes in the set of `page`, ascending. */
  members(page: number): number[] {
    const out: number[] = [];
    for (let w = 0; w < this.words; w++) {
      let word = this.bits[page * this.words + w]!;
      while (word !== 0) {
        const bit = 31 - Math.clz32(word & -word);
        out.push(w * 32 + bit);
        word &= word - 1;
      }
    }
    return out;
  }
}
