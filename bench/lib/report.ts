// How every benchmark reports: a table for people, and with --json a last line that is
// one JSON object of figures (ratios named `ratio` or `*_ratio`) for machines.
import { formatTable, type Row } from '../../cli/table.js';
import type { Consistency } from '../../src/config.js';

export { cell, formatTable, type Row } from '../../cli/table.js';

export interface Table {
  title: string;
  /** What the ratios compare, in a sentence or two. */
  note?: string;
  rows: Row[];
}

export interface BenchResult extends Table {
  /** How the benchmark works, in paragraphs, for docs/BENCHMARKS.md. */
  method?: string[];
  /** Further tables of the same benchmark, printed after the first. */
  tables?: Table[];
  /** What the figures mean, in sentences written from this run's figures. */
  discussion?: string[];
  /** Machine-readable figures; ratios are named `ratio` or `*_ratio`. */
  figures: Record<string, number>;
}

export interface BenchOptions {
  json: boolean;
  /** Smaller runs for smoke tests (`--quick`). */
  quick: boolean;
  /** Simulated cluster for benchmarks that run one (`--hosts`, `--nodes-per-host`). */
  shape: { hosts: number; nodesPerHost: number };
  /** The consistency of the regions of benchmarks that can run either (`--consistency`); absent: both, side by side. */
  consistency?: Consistency;
  log(line: string): void;
}

export type Bench = (opts: BenchOptions) => Promise<BenchResult>;

export function printResult(r: BenchResult): void {
  for (const t of [r, ...(r.tables ?? [])]) {
    console.log(`\n## ${t.title}\n`);
    if (t.note) console.log(`${t.note}\n`);
    console.log(formatTable(t.rows));
  }
  if (r.discussion?.length) console.log(`\n${r.discussion.join('\n\n')}`);
}

/** How a figure stands against its target, for discussions: "within the target (<= 1.5)". */
export function meets(value: number, target: number, bound: 'at most' | 'at least' = 'at most'): string {
  const ok = bound === 'at most' ? value <= target : value >= target;
  return `${ok ? 'within' : '**not** within'} the target (${bound === 'at most' ? '<=' : '>='} ${target})`;
}

/** Median of a sample; benchmarks report medians of repeated trials (the machine is noisy). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
