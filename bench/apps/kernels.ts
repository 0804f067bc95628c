// The arithmetic of the application benchmark, shared by the Naplus and the
// message-passing versions so that the two differ only in how data moves. Every
// function here is pure: typed arrays in, typed arrays (or numbers) out. Inputs are
// deterministic, and each result is bit-for-bit the same however the work is split,
// so a digest of it checks any run against a sequential one.
import { createHash } from 'node:crypto';

/** Worker `w`'s share [from, to) of `total` items cut into `parts` near-equal blocks. */
export function share(total: number, parts: number, w: number): [number, number] {
  return [Math.floor((w * total) / parts), Math.floor(((w + 1) * total) / parts)];
}

/** SHA-256 of a result's bytes: what the benchmark compares against the sequential run. */
export function digest(values: Float64Array): string {
  return createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex');
}

// ---- Matrix multiply: C = A x B, n x n float64, row-major. ----

/** Small integers, so every sum is exact and the order of additions cannot matter. */
export function fillMatrices(a: Float64Array, b: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      a[i * n + j] = ((i * 7 + j * 3) % 17) - 8;
      b[i * n + j] = ((i * 5 + j * 11) % 13) - 6;
    }
  }
}

/** Rows of C for the rows of A given (`a` and `c` hold the same number of rows). */
export function multiplyRows(a: Float64Array, b: Float64Array, c: Float64Array, n: number): void {
  const row = new Float64Array(n);
  for (let i = 0; i < a.length / n; i++) {
    row.fill(0);
    // i-k-j order: B is read row by row, so each of its pages is touched in sequence.
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      const bk = k * n;
      for (let j = 0; j < n; j++) row[j]! += aik * b[bk + j]!;
    }
    c.set(row, i * n);
  }
}

// ---- Jacobi: 5-point relaxation on an n x n grid with a fixed boundary. ----

/** The starting grid: a hot top edge, everything else zero. */
export function fillGrid(g: Float64Array, n: number): void {
  g.fill(0);
  g.fill(1, 0, n);
}

/**
 * One sweep over rows [from, to) of `src` into `dst` (same row length `n`, rows at
 * r * n, the first and last column fixed). Returns the largest change in those rows.
 */
export function relaxRows(src: Float64Array, dst: Float64Array, n: number, from: number, to: number): number {
  let change = 0;
  for (let r = from; r < to; r++) {
    const o = r * n;
    for (let j = 1; j < n - 1; j++) {
      const v = 0.25 * (src[o - n + j]! + src[o + n + j]! + src[o + j - 1]! + src[o + j + 1]!);
      const d = Math.abs(v - src[o + j]!);
      if (d > change) change = d;
      dst[o + j] = v;
    }
  }
  return change;
}

// ---- Sample sort (sorting by regular sampling) of n float64 keys. ----

/** Deterministic pseudo-random keys in [0, 1) with 53 random bits. */
export function fillKeys(keys: Float64Array, seed = 0x2545f491): void {
  let x = seed >>> 0;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  for (let i = 0; i < keys.length; i++) keys[i] = (next() * 2 ** 21 + (next() >>> 11)) / 2 ** 53;
}

/** `parts` keys at regular positions of a sorted run: its contribution to the splitters. */
export function regularSamples(sorted: Float64Array, parts: number): Float64Array {
  const out = new Float64Array(parts);
  for (let i = 0; i < parts; i++) out[i] = sorted.length === 0 ? 0 : sorted[Math.floor((i * sorted.length) / parts)]!;
  return out;
}

/** The parts-1 splitters, from every worker's samples (parts x parts keys, any order). */
export function splitters(samples: Float64Array, parts: number): Float64Array {
  const all = Float64Array.from(samples).sort();
  const out = new Float64Array(parts - 1);
  for (let i = 1; i < parts; i++) out[i - 1] = all[i * parts + (parts >> 1) - 1]!;
  return out;
}

/** Where each bucket starts in a sorted run: parts+1 positions, bucket b = [pos[b], pos[b+1]). */
export function bucketBounds(sorted: Float64Array, split: Float64Array): Int32Array {
  const pos = new Int32Array(split.length + 2);
  pos[split.length + 1] = sorted.length;
  for (let b = 0; b < split.length; b++) {
    // First key greater than the splitter: keys equal to it stay in the lower bucket.
    let lo = pos[b]!;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! <= split[b]!) lo = mid + 1;
      else hi = mid;
    }
    pos[b + 1] = lo;
  }
  return pos;
}

/** Merges sorted runs into `out` (exactly as long as all runs together). */
export function mergeRuns(runs: Float64Array[], out: Float64Array): void {
  const at = new Array<number>(runs.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let best = -1;
    let key = 0;
    for (let r = 0; r < runs.length; r++) {
      if (at[r]! < runs[r]!.length && (best < 0 || runs[r]![at[r]!]! < key)) {
        key = runs[r]![at[r]!]!;
        best = r;
      }
    }
    out[o] = key;
    at[best]!++;
  }
}
