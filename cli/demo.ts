// `naplus demo`: a local cluster doing real shared-memory work. It brings the cluster
// up, runs examples/matmul.js on every node at once (four worker apps at least, spread over
// the nodes, all through the public API), shows progress, checks the product against a single-process
// multiply, prints what each node's faults cost and where the pages came from, and
// tears the cluster down.
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlRequest } from '../src/control-client.js';
import { formatTable } from '../bench/lib/report.js';
import { clusterDown, clusterUp } from './local.js';

const MATMUL = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../examples/matmul.js');

export interface DemoOptions {
  n: string;
  hosts: string;
  nodesPerHost: string;
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
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker ${w} (${socketDir}) exited with ${code}`))));
  }));
  return Promise.all(runs).then(() => {
    if (!result) throw new Error(`worker 0 of ${path.basename(script)} reported no result`);
    return result;
  });
}

export async function demo(opts: DemoOptions): Promise<void> {
  const n = Number(opts.n);
  if (!Number.isInteger(n) || n < 4 || n > 4096) throw new Error(`--n must be an integer from 4 to 4096, got '${opts.n}'`);
  const size = Math.max(16, Math.ceil((3 * n * n * 8 * 2) / (1 << 20)) + 8);
  const state = await clusterUp({
    name: `demo-${process.pid}`, hosts: opts.hosts, nodesPerHost: opts.nodesPerHost, size: `${size}M`, placement: 'block',
  });
  try {
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
    console.log(`\nResult check: ${result.ok ? 'PASSED' : 'FAILED'}: C = A x B matches a single-process multiply (${result.mismatches} of ${n * n} entries differ), ${seconds.toFixed(1)} s`);
    const rows = [];
    for (const node of state.nodes) {
      const s = await controlRequest<{ regions: Record<string, Record<string, number>> }>(node.socketDir, 'stats');
      const r = s.regions.data!;
      rows.push({
        node: node.id, host: node.host, faults: r.faults!, 'from cache': r.faults! - r.fromSegment! - r.fromRemote!,
        'from segment': r.fromSegment!, 'from remote': r.fromRemote!, prefetched: r.prefetched!, 'wire KiB': Math.round(r.wireBytes! / 1024),
      });
    }
    console.log(`\nFaults per node, by where the page came from:\n\n${formatTable(rows)}`);
    if (!result.ok) process.exitCode = 1;
  } finally {
    if (opts.keep) console.log(`\nCluster '${state.name}' left running; stop it with \`naplus cluster down --name ${state.name}\``);
    else await clusterDown({ name: state.name, quiet: true });
  }
}
