// Runs one case of the application benchmark: one worker process per slot, all of one
// version, and returns rank 0's time and result digest with the totals of what the
// workers sent. Any worker failing, or the case outlasting its time limit, fails the
// case with that worker's stderr; no worker outlives the call.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inNamespace } from '../../src/netns.js';
import { onAbort } from '../lib/cleanup.js';
import type { Addresses, WorkerReport, WorkerSpec } from './worker.js';

const WORKER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'worker.js');

/** Where one worker runs. */
export interface Slot {
  /** Naplus: the socket dir of the node the worker attaches through. */
  socketDir?: string;
  /** The network namespace of the worker's host, when hosts are in namespaces. */
  netns?: string;
  /** The host's address: where a message-passing worker listens. */
  address: string;
  /** Naplus: the first worker on its node, which counts the node's faults. */
  countsNode: boolean;
}

/** Rank 0's time and digest, and the other figures summed over the workers. */
export type CaseResult = Omit<WorkerReport, 'digest'> & { digest: string };

export type CaseSpec = Omit<WorkerSpec, 'rank' | 'workers' | 'host' | 'countsNode'>;

export async function runCase(spec: CaseSpec, slots: Slot[], timeoutMs: number): Promise<CaseResult> {
  const children: ChildProcess[] = [];
  const kill = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  const forget = onAbort(kill);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, timeoutMs);
  const reports: WorkerReport[] = [];
  const addresses: string[] = [];
  let announced = 0;
  const what = `${spec.kernel} (${spec.version}, ${slots.length} workers)`;
  try {
    await Promise.all(slots.map((slot, rank) => new Promise<void>((resolve, reject) => {
      const ws: WorkerSpec = { ...spec, rank, workers: slots.length, host: slot.address, countsNode: slot.countsNode };
      const [command, ...args] = inNamespace(slot.netns, [process.execPath, WORKER, JSON.stringify(ws)]);
      const child = spawn(command!, args, {
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        env: slot.socketDir ? { ...process.env, NAPLUS_SOCKET_DIR: slot.socketDir } : process.env,
      });
      children.push(child);
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      child.on('message', (m: { address?: string; report?: WorkerReport }) => {
        if (m.report) reports[rank] = m.report;
        if (m.address === undefined) return;
        addresses[rank] = m.address;
        if (++announced < slots.length) return;
        const reply: Addresses = { addresses };
        for (const c of children) if (c.connected) c.send(reply);
      });
      child.on('close', (code, signal) => {
        if (code === 0) return resolve();
        const why = timedOut ? `was killed after ${timeoutMs / 1000} s` : `exited with ${code ?? signal}`;
        reject(new Error(`apps: ${what}: worker ${rank} ${why}${stderr ? `:\n${stderr.trim()}` : ''}`));
      });
    })));
  } finally {
    clearTimeout(timer);
    kill();
    forget();
  }
  const first = reports[0];
  if (reports.filter(Boolean).length !== slots.length || first?.digest === undefined) {
    throw new Error(`apps: ${what}: ${reports.filter(Boolean).length} of ${slots.length} workers reported, rank 0 ${first?.digest ? 'with' : 'without'} a result`);
  }
  const sum = (k: Exclude<keyof WorkerReport, 'ms' | 'digest'>) => reports.reduce((s, r) => s + r[k], 0);
  return {
    ms: first.ms,
    digest: first.digest,
    bytesSent: sum('bytesSent'),
    messagesSent: sum('messagesSent'),
    faults: sum('faults'),
    remoteFaults: sum('remoteFaults'),
    wireBytes: sum('wireBytes'),
    rawBytes: sum('rawBytes'),
    twins: sum('twins'),
    diffs: sum('diffs'),
    diffBytes: sum('diffBytes'),
  };
}
