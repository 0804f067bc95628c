// Where heap blocks go: byte ranges [from, to) of a region, the size and alignment rule
// for blocks, and first fit. Pure functions on ranges sorted by start and disjoint.
//
// Alignment rule: a block smaller than a page takes whole 64-byte units (a cache line)
// and never crosses a page boundary, so touching it costs one page fault; a block of a
// page or more is page-aligned and a whole number of pages, so two large blocks never
// share a page and writers of different blocks never make a page bounce between nodes.
export type Range = readonly [from: number, to: number];

/** The allocation unit, and the alignment of blocks smaller than a page. */
export const UNIT = 64;

export function roundUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}

/** Bytes a block of `bytes` occupies: whole units below a page, whole pages from there. */
export function extentOf(bytes: number, pageSize: number): number {
  const units = roundUp(bytes, UNIT);
  return units < pageSize ? units : roundUp(bytes, pageSize);
}

/** The parts of [from, to) that no range of `used` covers. */
export function gaps(used: readonly Range[], from: number, to: number): Range[] {
  const out: Range[] = [];
  let at = from;
  for (const [a, b] of used) {
    if (a > at) out.push([at, a]);
    at = Math.max(at, b);
  }
  if (to > at) out.push([at, to]);
  return out;
}

/** The bytes in both `x` and `y`. */
export function intersect(x: readonly Range[], y: readonly Range[]): Range[] {
  const out: Range[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length && j < y.length) {
    const [a, b] = x[i]!;
    const [c, d] = y[j]!;
    if (Math.max(a, c) < Math.min(b, d)) out.push([Math.max(a, c), Math.min(b, d)]);
    if (b < d) i++;
    else j++;
  }
  return out;
}

export function longest(ranges: readonly Range[]): number {
  return ranges.reduce((m, [a, b]) => Math.max(m, b - a), 0);
}

export function total(ranges: readonly Range[]): number {
  return ranges.reduce((s, [a, b]) => s + b - a, 0);
}

/** The lowest offset in `free` where a block of `extent` bytes fits the alignment rule. */
export function firstFit(free: readonly Range[], extent: number, pageSize: number): number | undefined {
  for (const [a, b] of free) {
    let at = roundUp(a, extent >= pageSize ? pageSize : UNIT);
    if (extent < pageSize && (at % pageSize) + extent > pageSize) at = roundUp(at, pageSize); // would cross a page boundary
    if (at + extent <= b) return at;
  }
  return undefined;
}
