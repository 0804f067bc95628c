// `naplus demo`: a local virtual cluster doing real shared-memory work. It brings up two
// simulated hosts x two nodes (by default), runs examples/matmul.js on every node at
// once (four worker apps at least, all through the public API), shows progress, checks
// the product against a single-process multiply, and reports what it cost: each node's
// faults by where the pages came from, the bytes the links carried and what LZ4 saved,
// a summary of the fault trace recorded meanwhile (and its heatmap), then tears the
// cluster down.
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlRequest } from '../src/control-client.js';
import type { PeerStats } from '../src/transport/index.js';
import type { FaultEvent } from '../src/trace/fault-event.js';
import { TraceRecorder } from '../src/trace/record.js';
import { analyze } from '../src/trace/analyze.js';
import { renderHeatmap } from '../src/trace/svg.js';
import { formatTable } from '../bench/lib/report.js';
import { clusterDown, clusterUp, type ClusterState } from './local.js';

const MATMUL = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../examples/matmul.js');

export interface DemoOptions {
  n: string;
  hosts: string;
  nodesPerHost: string;
  svg?: string;
  keep?: boolean;
}

interface WorkerResult {
  n: number;
  workers: number;
  mismatches: number;
  ok: boolean;
}

/**
 * Runs one worker app per entry of `socketDirs` (attached through that node):
 * `script <worker> <workers> ...args`. Workers report `{ progress }` and worker 0 its
 * `{ result }` over IPC; resolves with that result once every worker exited cleanly.
 */
export function runWorkers<R>(script: string, socketDirs: string[], args: string[], onProgress: (fraction: number) => void = () => {}): Promise<R> {
  const workers = socketDirs.length;
  const progress = new Array<number>(workers).fill(0);
  let result: R | undefined;
  const runs = socketDirs.map((socketDir, w) => new Promise<void>((resolve, reject) => {
    const child = fork(script, [String(w), String(workers), ...args], {
      env: { ...process.env, NAPLUS_SOCKET_DIR: socketDir },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    child.on('message', (m: { progress?: number; result?: R }) => {
      if (m.progress !== undefined) {
        progress[w] = m.progress;
        onProgress(progress.reduce((a, b) => a + b, 0) / workers);
      }
      if (m.result) result = m.result;
    });
    child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`worker ${w} (${socketDir}) exited with ${code ?? signal}`))));
  }));
  return Promise.all(runs).then(() => {
    if (!result) throw new Error(`worker 0 of ${path.basename(script)} reported no result`);
    return result;
  });
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

/** Each node's faults by source, and what its links to the other nodes carried. */
async function costs(state: ClusterState): Promise<string> {
  const rows = [];
  let raw = 0;
  let wire = 0;
  let out = 0;
  for (const node of state.nodes) {
    const s = await controlRequest<{ regions: Record<string, Record<string, number>>; peers: Record<string, PeerStats> }>(node.socketDir, 'stats');
    const r = s.regions.data!;
    const peers = Object.values(s.peers);
    const sum = (k: 'bytesOut' | 'pageBytesRaw' | 'pageBytesWire') => peers.reduce((a, p) => a + p[k], 0);
    raw += sum('pageBytesRaw');
    wire += sum('pageBytesWire');
    out += sum('bytesOut');
    rows.push({
      node: node.id, host: node.host, faults: r.faults!, 'from cache': r.servedFromCache!,
      'from segment': r.servedFromSegment!, 'from remote': r.servedFromRemote!, 'read ahead': r.prefetched!, 'sent to peers': kib(sum('bytesOut')),
    });
  }
  const saved = raw > 0 ? ` (page data ${kib(raw)} raw, ${kib(wire)} on the wire: ${(raw / Math.max(1, wire)).toFixed(2)}x smaller with zero-page markers and LZ4)` : '';
  return `Faults per node, by where the page came from:\n\n${formatTable(rows)}\n\nLinks carried ${kib(out)} in all${saved}.`;
}

/** A few lines of the recorded trace: where faults were served from, how long they waited, what moved most. */
function traceSummary(events: FaultEvent[]): string {
  if (events.length === 0) return 'Fault trace: no faults recorded.';
  const f = analyze(events, 3);
  const sources = (['cache', 'segment', 'remote'] as const).map((s) => {
    const w = f.waitUs[s];
    return { source: s, faults: f.bySource[s].count, 'p50 µs': w ? w.p50.toFixed(0) : '-', 'p99 µs': w ? w.p99.toFixed(0) : '-' };
  });
  const moved = f.pingPong.map((p) => `page ${p.page} (${p.moves} moves between nodes ${p.nodes.join(',')})`).join(', ');
  return [
    `Fault trace: ${f.events} faults recorded over ${((f.end - f.start) / 1000).toFixed(2)} s (wait: from the node reading a fault to resolving it):`,
    '',
    formatTable(sources),
    '',
    `Pages that moved most: ${moved || 'none'}.`,
  ].join('\n');
}

export async function demo(opts: DemoOptions): Promise<void> {
  const n = Number(opts.n);
  if (!Number.isInteger(n) || n < 4 || n > 4096) throw new Error(`--n must be an integer from 4 to 4096, got '${opts.n}'`);
  const size = Math.max(16, Math.ceil((3 * n * n * 8 * 2) / (1 << 20)) + 8);
  const state = await clusterUp({
    name: `demo-${process.pid}`, hosts: opts.hosts, nodesPerHost: opts.nodesPerHost, size: `${size}M`, placement: 'block',
  });
  try {
    const events: FaultEvent[] = [];
    const recorder = await TraceRecorder.start(state.nodes.map((node) => node.socketDir), (batch) => events.push(...batch), () => undefined);
    // Four workers at least, spread round-robin over the nodes.
    const socketDirs = Array.from({ length: Math.max(4, state.nodes.length) }, (_, w) => state.nodes[w % state.nodes.length]!.socketDir);
    console.log(`\nMultiplying two ${n}x${n} float64 matrices with ${socketDirs.length} worker apps on ${state.nodes.length} node(s)…`);
    const started = Date.now();
    let last = -1;
    const result = await runWorkers<WorkerResult>(MATMUL, socketDirs, [String(n)], (f) => {
      const pct = Math.floor(f * 100);
      if (pct !== last && process.stdout.isTTY) process.stdout.write(`\r  progress ${String(pct).padStart(3)}%`);
      last = pct;
    });
    if (process.stdout.isTTY) process.stdout.write('\n');
    const seconds = (Date.now() - started) / 1000;
    await recorder.stop();
    console.log(`\nResult check: ${result.ok ? 'PASSED' : 'FAILED'}: C = A x B matches a single-process multiply (${result.mismatches} of ${n * n} entries differ), ${seconds.toFixed(1)} s`);
    console.log(`\n${await costs(state)}`);
    console.log(`\n${traceSummary(events)}`);
    if (events.length > 0) {
      const svg = opts.svg ?? path.join(os.tmpdir(), `naplus-demo-${process.pid}.svg`);
      fs.writeFileSync(svg, renderHeatmap(events));
      console.log(`\nHeatmap of the faults over time, by page and source: ${svg}`);
    }
    if (!result.ok) process.exitCode = 1;
  } finally {
    if (opts.keep) console.log(`\nCluster '${state.name}' left running; stop it with \`naplus cluster down --name ${state.name}\``);
    else await clusterDown({ name: state.name, quiet: true });
  }
}
