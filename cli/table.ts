// Tables for people: the commands' output and the benchmarks' reports.

export interface Row {
  [column: string]: string | number;
}

export function cell(v: string | number): string {
  if (typeof v === 'string') return v;
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** Columns in the order they first appear; a missing value is an empty cell. */
export function formatTable(rows: Row[]): string {
  if (rows.length === 0) return '(no rows)';
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const text = rows.map((r) => cols.map((c) => (r[c] === undefined ? '' : cell(r[c]!))));
  const width = cols.map((c, i) => Math.max(c.length, ...text.map((t) => t[i]!.length)));
  const line = (cells: string[]) => cells.map((t, i) => t.padEnd(width[i]!)).join('  ').trimEnd();
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...text.map(line)].join('\n');
}

/**
 * A table no wider than `width` characters: columns named in `dropFirst` go, in that
 * order, until it fits; a last line names what went. Without a width (not a terminal),
 * the whole table.
 */
export function fitTable(rows: Row[], width: number | undefined, dropFirst: string[]): string {
  let shown = rows;
  const hidden: string[] = [];
  let table = formatTable(shown);
  const widest = (t: string) => Math.max(...t.split('\n').map((l) => l.length));
  for (const col of dropFirst) {
    if (width === undefined || widest(table) <= width) break;
    if (!rows.some((r) => col in r)) continue;
    hidden.push(col);
    shown = shown.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !hidden.includes(k))));
    table = formatTable(shown);
  }
  return hidden.length === 0 ? table : `${table}\n(not shown, for the terminal's width: ${hidden.join(', ')}; --json has every figure)`;
}
