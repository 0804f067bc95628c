// A Naplus cluster for the application benchmark: hosts x nodes-per-host naplus-mount
// processes with one region, 'data', optionally with each host in a network namespace
// (nodes listen on the host's address there). Everything it makes goes in close(),
// or on an abort (bench/lib/cleanup).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startNode, waitForLinks, writeLocalCluster, type RunningNode } from '../../src/local-cluster.js';
import type { HostNetwork } from '../../src/netns.js';
import type { CompressMode } from '../../src/transport/index.js';
import type { Consistency } from '../../src/config.js';
import { onAbort } from '../lib/cleanup.js';

export const PAGE_SIZE = 4096;

export interface Shape {
  hosts: number;
  nodesPerHost: number;
}

export interface BenchCluster {
  /** Socket dir of each node, in node order (host by host). */
  socketDirs: string[];
  close(): Promise<void>;
}

let made = 0;

export async function startCluster(opts: { shape: Shape; regionBytes: number; consistency: Consistency; compress?: CompressMode; network?: HostNetwork }): Promise<BenchCluster> {
  const { shape } = opts;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-bench-apps-'));
  const nodes: RunningNode[] = [];
  let segments: string[] = [];
  const undo = () => {
    for (const n of nodes) n.process.kill('SIGKILL');
    for (const s of segments) fs.rmSync(s, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const forget = onAbort(undo);
  let socketDirs: string[];
  try {
    const files = await writeLocalCluster({
      name: `bapps${process.pid}x${made++}`,
      dir,
      hosts: shape.hosts,
      nodesPerHost: shape.nodesPerHost,
      // Runs' blocks sit end to end in the heap: interleaved homes give every run the same
      // spread over the nodes, where blocks would home each run wherever it fell.
      regions: [{ name: 'data', size: opts.regionBytes, pageSize: PAGE_SIZE, placement: 'interleave', consistency: opts.consistency }],
      network: opts.network,
      transport: opts.compress && { compress: opts.compress },
    });
    segments = files.segments;
    socketDirs = files.nodes.map((n) => n.socketDir);
    const settled = await Promise.allSettled(files.nodes.map((n) => startNode(files.configPath, n.id, n.socketDir, n.logPath, [], { netns: n.netns })));
    for (const s of settled) if (s.status === 'fulfilled') nodes.push(s.value);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    await waitForLinks(socketDirs);
  } catch (err) {
    undo();
    forget();
    throw err;
  }
  return {
    socketDirs,
    async close() {
      for (const n of nodes) n.process.kill('SIGTERM');
      await Promise.all(nodes.map((n) => n.exited));
      nodes.length = 0;
      undo();
      forget();
    },
  };
}
