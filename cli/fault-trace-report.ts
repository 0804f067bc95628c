// `naplus-fault-trace report`: the figures of one or more traces, as tables, as one JSON
// object, and as a heatmap.
import fs from 'node:fs';
import { NaplusError, errnoOf, invalidArgument } from '../src/errors.js';
import { KINDS, SOURCES, readTraces } from '../src/trace/events.js';
import { analyze, type TraceFigures } from '../src/trace/analyze.js';
import { renderHeatmap } from '../src/trace/svg.js';
import { formatTable } from './table.js';

export interface ReportOptions {
  top: string;
  json?: boolean;
  svg?: string;
}

const say = (line: string) => process.stderr.write(`naplus-fault-trace: ${line}\n`);
const pct = (p: number) => `${p.toFixed(1)}%`;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function formatReport(f: TraceFigures, top: number): string {
  const spanS = (f.end - f.start) / 1000;
  const waits = [...SOURCES, 'all' as const].map((s) => {
    const w = f.waitUs[s];
    const share = s === 'all' ? { count: f.events, percent: 100 } : f.bySource[s];
    return { source: s, faults: share.count, share: pct(share.percent), 'p50 µs': w?.p50 ?? '-', 'p90 µs': w?.p90 ?? '-', 'p99 µs': w?.p99 ?? '-', 'max µs': w?.max ?? '-' };
  });
  const hottest = f.hottest.map((p) => ({ region: p.region, page: p.page, faults: p.faults, nodes: p.nodes.join(','), 'mean wait µs': p.meanWaitUs }));
  const pingPong = f.pingPong.map((p) => ({ region: p.region, page: p.page, moves: p.moves, faults: p.faults, nodes: p.nodes.join(',') }));
  const wire = f.wireBytes >= 1 << 20 ? ` (${(f.wireBytes / (1 << 20)).toFixed(1)} MiB)` : f.wireBytes >= 1024 ? ` (${(f.wireBytes / 1024).toFixed(1)} KiB)` : '';
  return [
    `Fault trace: ${plural(f.events, 'fault')} from ${plural(f.nodes.length, 'node')} (${f.nodes.join(', ')}), ${plural(f.regions.length, 'region')} (${f.regions.join(', ')}), ${plural(f.apps, 'app')}, over ${spanS.toFixed(3)} s`,
    '',
    'By kind',
    formatTable(KINDS.map((k) => ({ kind: k, faults: f.byKind[k].count, share: pct(f.byKind[k].percent) }))),
    '',
    'By source, with wait times (µs from the node reading the fault to resolving it; nearest-rank percentiles)',
    formatTable(waits),
    '',
    `Wire bytes: ${f.wireBytes}${wire}`,
    '',
    `Hottest pages (top ${top} by faults)`,
    formatTable(hottest),
    '',
    `Ping-pong pages (top ${top} by moves: a move is a fault on the page from another node than the page's previous fault)`,
    pingPong.length > 0 ? formatTable(pingPong) : '(none: no page was faulted from one node after another)',
  ].join('\n');
}

export async function reportCommand(paths: string[], opts: ReportOptions): Promise<void> {
  const top = Number(opts.top);
  if (!Number.isSafeInteger(top) || top < 1) throw invalidArgument('--top', 'a positive integer', opts.top);
  const { files, events } = await readTraces(paths);
  for (const f of files) {
    if (f.malformed > 0) say(`skipped ${plural(f.malformed, 'malformed line')} in ${f.file} (the first at line ${f.firstMalformedLine})`);
  }
  const figures = analyze(events, top);
  if (opts.svg) {
    try {
      fs.writeFileSync(opts.svg, renderHeatmap(events));
    } catch (err) {
      throw new NaplusError(errnoOf(err) ?? 'EIO', `Cannot write the heatmap to ${opts.svg} (${(err as Error).message}); choose a writable file with --svg`);
    }
    say(`heatmap written to ${opts.svg}`);
  }
  if (opts.json) {
    const sources = files.map((f) => ({ file: f.file, events: f.events.length, malformed: f.malformed, firstMalformedLine: f.firstMalformedLine ?? null }));
    console.log(JSON.stringify({ files: sources, ...figures }));
  } else {
    console.log(formatReport(figures, top));
  }
}
