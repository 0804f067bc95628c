// `naplus demo`: a local virtual cluster doing real shared-memory work. It brings up two
// simulated hosts x two nodes (by default), runs examples/matmul.ts on every node at
// once (four worker apps at least, all through the public API), shows progress on a terminal, checks
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
import type { FaultEvent } from '../src/trace/fault-event.js';
import { regionFigures, type StatsReply } from '../src/stats.js';
import { NaplusError } from '../src/errors.js';
import { TraceRecorder } from '../src/trace/record.js';
import { analyze } from '../src/trace/analyze.js';
import { renderHeatmap } from '../src/trace/svg.js';
import { formatTable } from './table.js';
import { intFlag } from './args.js';
import { clusterDown, clusterUp } from './local.js';
import { clusterPaths, type ClusterState } from './cluster-state.js';

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
 * The first worker to fail stops the others (they would wait at a barrier for it
 * forever) and the promise rejects naming it.
 */
export function runWorkers<R>(script: string, socketDirs: string[], args: string[], onProgress: (fraction: number) => void = () => {}): Promise<R> {
  const workers = socketDirs.length;
  const progress = new Array<number>(workers).fill(0);
  let result: R | undefined;
  let failure: NaplusError | undefined;
  const children = socketDirs.map((socketDir, w) => fork(script, [String(w), String(workers), ...args], {
    env: { ...process.env, NAPLUS_SOCKET_DIR: socketDir },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  }));
  const runs = children.map((child, w) => new Promise<void>((resolve) => {
    child.on('message', (m: { progress?: number; result?: R }) => {
      if (m.progress !== undefined) {
        progress[w] = m.progress;
        onProgress(progress.reduce((a, b) => a + b, 0) / workers);
      }
      if (m.result) result = m.result;
    });
    child.on('exit', (code, signal) => {
      if (code !== 0 && !failure) {
        failure = new NaplusError('ECHILD', `worker ${w} of ${path.basename(script)} (NAPLUS_SOCKET_DIR=${socketDirs[w]}) exited with ${code ?? signal}; the other workers were stopped`);
        for (const other of children) if (other !== child && other.exitCode === null) other.kill('SIGTERM');
      }
      resolve();
    });
  }));
  return Promise.all(runs).then(() => {
    if (failure) throw failure;
    if (!result) throw new NaplusError('ECHILD', `worker 0 of ${path.basename(script)} reported no result`);
    return result;
  });
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

/** Each node's faults by source, and what its links to the other nodes carried. */
async function costs(state: ClusterState): Promise<string> {
  const paths = clusterPaths(state.name);
  const rows = [];
  let raw = 0;
  let wire = 0;
  let out = 0;
  for (const node of state.nodes) {
    const s = await controlRequest<StatsReply>(paths.socketDir(node.id), 'stats');
    const r = regionFigures(s.regions.data!);
    const peers = Object.values(s.peers);
    const sum = (k: 'bytesOut' | 'pageBytesRaw' | 'pageBytesWire') => peers.reduce((a, p) => a + p[k], 0);
    raw += sum('pageBytesRaw');
    wire += sum('pageBytesWire');
    out += sum('bytesOut');
    rows.push({
      node: node.id, host: node.host, faults: r.faults, cache: r.bySource.cache, segment: r.bySource.segment, remote: r.bySource.remote,
      upgrades: r.upgrades, readahead: r.readahead, 'sent to peers': kib(sum('bytesOut')),
    });
  }
  const saved = raw > 0 ? ` (page data ${kib(raw)} raw, ${kib(wire)} on the wire: ${(raw / Math.max(1, wire)).toFixed(2)}x smaller with zero-page markers and LZ4)` : '';
  return [
    'Faults per node, by where the page came from (cache: already on the node; segment: its host\'s segment; remote: another host):',
    '',
    formatTable(rows),
    '',
    'upgrades: of the faults, writes to pages held read-only; readahead: pages mapped ahead of sequential faults (not faults).',
    '',
    `Links carried ${kib(out)} in all${saved}.`,
  ].join('\n');
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
  const n = intFlag('--n', opts.n, 4, 4096);
  const size = Math.max(16, Math.ceil((3 * n * n * 8 * 2) / (1 << 20)) + 8);
  const state = await clusterUp({
    name: `demo-${process.pid}`, hosts: opts.hosts, nodesPerHost: opts.nodesPerHost, size: `${size}M`, placement: 'block',
  });
  let ok = false;
  try {
    const events: FaultEvent[] = [];
    const recorder = await TraceRecorder.start(state.nodes.map((node) => clusterPaths(state.name).socketDir(node.id)), (batch) => events.push(...batch), () => undefined);
    // Four workers at least, spread round-robin over the nodes.
    const paths = clusterPaths(state.name);
    const socketDirs = Array.from({ length: Math.max(4, state.nodes.length) }, (_, w) => paths.socketDir(state.nodes[w % state.nodes.length]!.id));
    console.log(`\nMultiplying two ${n}x${n} float64 matrices with ${socketDirs.length} worker apps on ${state.nodes.length} node(s)…`);
    const started = Date.now();
    // A progress line redrawn in place suits a terminal only; a pipe or a log gets the summary.
    const tty = process.stdout.isTTY === true;
    let last = -1;
    const result = await runWorkers<WorkerResult>(MATMUL, socketDirs, [String(n)], (f) => {
      const pct = Math.floor(f * 100);
      if (pct !== last && tty) process.stdout.write(`\r  progress ${String(pct).padStart(3)}%`);
      last = pct;
    });
    const seconds = (Date.now() - started) / 1000;
    if (tty) process.stdout.write('\n');
    else console.log(`  ${socketDirs.length} workers finished their rows in ${seconds.toFixed(1)} s`);
    await recorder.stop();
    console.log(`\nResult check: ${result.ok ? 'PASSED' : 'FAILED'}: C = A x B matches a single-process multiply (${result.mismatches} of ${n * n} entries differ), ${seconds.toFixed(1)} s`);
    console.log(`\n${await costs(state)}`);
    console.log(`\n${traceSummary(events)}`);
    if (events.length > 0) {
      const svg = opts.svg ?? path.join(os.tmpdir(), `naplus-demo-${process.pid}.svg`);
      fs.writeFileSync(svg, renderHeatmap(events));
      console.log(`\nHeatmap of the faults over time, by page and source: ${svg}`);
    }
    ok = result.ok;
    if (!result.ok) process.exitCode = 1;
  } finally {
    if (opts.keep) console.log(`\nCluster '${state.name}' left running; stop it with \`npx naplus cluster down --name ${state.name}\``);
    // The node logs stay when something went wrong.
    else await clusterDown({ name: state.name, quiet: ok, dropLogs: ok });
  }
}
