// The naplus-fault-trace command as a user runs it, and checks of what it writes that
// recompute every figure from the events themselves (not from src/trace).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { FaultEvent, FaultSource } from '../../src/trace/fault-event.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../cli/naplus-fault-trace.js');

export function faultTrace(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

export interface RunningRecorder {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with stderr once it matches; rejects if the recorder exits first. */
  waitFor(pattern: RegExp): Promise<string>;
  exited: Promise<number | null>;
}

export function startRecorder(...args: string[]): RunningRecorder {
  const child = spawn(process.execPath, [CLI, 'record', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => {
    err += d;
    waiters.forEach((w) => w());
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => {
    waiters.forEach((w) => w());
    resolve(code);
  }));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(err)) {
            waiters.delete(check);
            resolve(err);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            waiters.delete(check);
            reject(new Error(`naplus-fault-trace exited before printing ${pattern}:\n${err}`));
          }
        };
        waiters.add(check);
        check();
      });
    },
  };
}

export function readEvents(text: string): FaultEvent[] {
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as FaultEvent);
}

/** Nearest-rank: the smallest value that at least p% of the sample does not exceed. */
export function nearestRank(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.ceil((p / 100) * s.length) - 1]!;
}

const COSTLIER_FIRST: FaultSource[] = ['remote', 'segment', 'cache'];

interface Cell {
  attrs: Record<string, string>;
  expected: Record<FaultSource, number>;
}

/**
 * Checks a heatmap against the events it was drawn from: well-formed XML; one cell for
 * every (column, page range) with faults and none without; each cell's counts; its hue
 * that of the source with most faults (ties to the costlier) as the legend shows it.
 */
export function checkHeatmap(svg: string, events: FaultEvent[]): void {
  assert.is(XMLValidator.validate(svg), true, 'well-formed XML');
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => ['g', 'rect', 'text'].includes(name) }).parse(svg);
  const root = doc.svg;
  assert.is(root.xmlns, 'http://www.w3.org/2000/svg');
  const start = Number(root['data-start-ms']);
  const bin = Number(root['data-bin-ms']);
  assert.is(start, Math.min(...events.map((e) => e.t)));
  const legend = new Map<string, string>(root.rect.filter((r: any) => r['data-legend']).map((r: any) => [r['data-legend'], r.fill]));
  assert.is(new Set(legend.values()).size, 3, 'three distinct hues for cache, segment and remote');
  const nodeLegend = new Map<number, string>(root.rect.filter((r: any) => r['data-legend-node']).map((r: any) => [Number(r['data-legend-node']), r.fill]));
  assert.equal([...nodeLegend.keys()].sort((a, b) => a - b), [...new Set(events.map((e) => e.node))].sort((a, b) => a - b), 'a legend entry per node');
  assert.is(new Set(nodeLegend.values()).size, Math.min(nodeLegend.size, 8), 'distinct hues for up to 8 nodes');
  const drawn = new Set<string>();
  const nodesDrawn = new Set<number>();
  for (const band of root.g) {
    const region: string = band['data-region'];
    // A band of the second panel holds one node's faults, in that node's colour.
    const node = band['data-node'] === undefined ? undefined : Number(band['data-node']);
    if (node === undefined) drawn.add(region);
    else nodesDrawn.add(node);
    const cells: Cell[] = band.rect.filter((r: any) => r['data-col'] !== undefined).map((attrs: any) => ({ attrs, expected: { cache: 0, segment: 0, remote: 0 } }));
    for (const e of events.filter((x) => x.region === region && (node === undefined || x.node === node))) {
      const col = String(Math.floor((e.t - start) / bin));
      const cell = cells.find((c) => c.attrs['data-col'] === col && Number(c.attrs['data-page-from']) <= e.page && e.page <= Number(c.attrs['data-page-to']));
      assert.ok(cell, `a cell for page ${e.page} of ${region} in column ${col}`);
      cell!.expected[e.source]++;
    }
    for (const { attrs, expected } of cells) {
      const total = expected.cache + expected.segment + expected.remote;
      assert.ok(total > 0, `no cell without faults (column ${attrs['data-col']}, pages ${attrs['data-page-from']}-${attrs['data-page-to']})`);
      assert.is(Number(attrs['data-count']), total);
      for (const s of COSTLIER_FIRST) assert.is(Number(attrs[`data-${s}`]), expected[s], `${s} faults in the cell`);
      const most = Math.max(expected.cache, expected.segment, expected.remote);
      const dominant = COSTLIER_FIRST.find((s) => expected[s] === most)!;
      assert.is(attrs['data-source'], dominant);
      assert.is(attrs.fill, node === undefined ? legend.get(dominant) : nodeLegend.get(node));
    }
  }
  if (new Set(events.map((e) => e.region)).size === 1 && nodeLegend.size <= 8) assert.equal([...nodesDrawn].sort(), [...nodeLegend.keys()].sort(), 'a band per node');
  assert.equal([...drawn].sort(), [...new Set(events.map((e) => e.region))].sort(), 'every region drawn');
  assert.ok(root.title.includes(`${events.length} faults`), 'the title gives the total');
}
