// A local virtual cluster on this machine: one /dev/shm segment per simulated host,
// nodes as processes on loopback, a generated cluster file and secret. Used by
// `naplus cluster up` and by the tests, so both run exactly what a user runs.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NaplusError } from './errors.js';
import { UnixChannel } from './uffd/index.js';
import { controlRequest } from './control-client.js';
import { RegionLayout, planSegment } from './node/layout.js';
import { validateConfig, type Consistency, type Placement, type TransportConfig } from './config.js';
import { inNamespace, type HostNetwork } from './netns.js';

export interface RegionSpec {
  name: string;
  size: number;
  pageSize?: number;
  placement?: Placement;
  consistency?: Consistency;
}

export interface LocalClusterSpec {
  name: string;
  /** Directory for the cluster file, secret, sockets and logs. */
  dir: string;
  hosts: number;
  nodesPerHost: number;
  regions: RegionSpec[];
  /** Simulated hosts in network namespaces: nodes run in their host's and listen on its address. */
  network?: HostNetwork;
  /** The cluster file's "transport" section. */
  transport?: Partial<Omit<TransportConfig, 'tls'>>;
  /** Segment of host h: `${segmentPrefix}-h${h}` (default /dev/shm/naplus-<name>). */
  segmentPrefix?: string;
}

export interface LocalClusterFiles {
  configPath: string;
  nodes: Array<{ id: number; host: string; socketDir: string; logPath: string; netns?: string }>;
  segments: string[];
}

/**
 * A TCP port free on 127.0.0.1 now, for a node to listen on later. Drawn below the
 * kernel's ephemeral range (32768 and up here), which every outgoing connection on the
 * machine draws from, so that nothing else takes it meanwhile; checked by binding it.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    try {
      await new Promise<void>((resolve, reject) => {
        const srv = net.createServer();
        srv.once('error', reject);
        srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
      });
      return port;
    } catch (err) {
      if (attempt >= 50) throw err;
    }
  }
}

/** Writes the cluster file and secret; segments are sized to exactly what they must hold. */
export async function writeLocalCluster(spec: LocalClusterSpec): Promise<LocalClusterFiles> {
  fs.mkdirSync(spec.dir, { recursive: true });
  const secretPath = path.join(spec.dir, 'cluster.secret');
  if (!fs.existsSync(secretPath)) fs.writeFileSync(secretPath, crypto.randomBytes(32).toString('base64'), { mode: 0o600 });
  const hosts = [];
  let id = 1;
  for (let h = 0; h < spec.hosts; h++) {
    const nodes = [];
    for (let n = 0; n < spec.nodesPerHost; n++) {
      nodes.push({ id: id++, listen: spec.network ? `${spec.network.addresses[h]}:${7100 + n}` : `127.0.0.1:${await freePort()}` });
    }
    hosts.push({ name: `h${h + 1}`, segment: { path: `${spec.segmentPrefix ?? `/dev/shm/naplus-${spec.name}`}-h${h + 1}`, size: 1 }, nodes });
  }
  const raw = { cluster: spec.name, secretFile: 'cluster.secret', hosts, regions: spec.regions, ...(spec.transport ? { transport: spec.transport } : {}) };
  const configPath = path.join(spec.dir, 'cluster.json');
  // Size each segment from the layout the nodes will compute.
  const probe = validateConfig(raw, configPath);
  const layouts = probe.regions.map((r) => new RegionLayout(probe, r));
  for (const h of hosts) h.segment.size = planSegment(layouts, h.name).needed;
  fs.writeFileSync(configPath, `${JSON.stringify(raw, null, 2)}\n`);
  return {
    configPath,
    nodes: hosts.flatMap((h, i) => h.nodes.map((n) => ({
      id: n.id, host: h.name, socketDir: path.join(spec.dir, `node${n.id}`), logPath: path.join(spec.dir, `node${n.id}.log`), netns: spec.network?.namespaces[i],
    }))),
    segments: hosts.map((h) => h.segment.path),
  };
}

const MOUNT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/naplus-mount.js');

export interface RunningNode {
  id: number;
  pid: number;
  process: ChildProcess;
  logPath: string;
  /** The node's log lines so far. */
  log(): string[];
  exited: Promise<number | null>;
}

function readLog(logPath: string): string[] {
  try {
    return fs.readFileSync(logPath, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** True once something accepts connections at a unix socket path. */
function listening(socketPath: string): boolean {
  try {
    UnixChannel.connect(socketPath).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts `naplus-mount` for one node, logging to `logPath`; resolves once its control
 * socket answers, rejects with its last log lines if it exits first. A `detached` node
 * outlives this process (`naplus cluster up`); with `netns` it runs in that network
 * namespace (`ip netns exec`, which becomes the node process itself).
 */
export async function startNode(
  configPath: string, id: number, socketDir: string, logPath: string,
  extraArgs: string[] = [], options: { detached?: boolean; netns?: string } = {},
): Promise<RunningNode> {
  const out = fs.openSync(logPath, 'a');
  const [cmd, ...argv] = inNamespace(options.netns, [process.execPath, MOUNT, '--cluster', configPath, '--node', String(id), '--socket-dir', socketDir, ...extraArgs]);
  const child = spawn(cmd!, argv, {
    stdio: ['ignore', out, out],
    detached: options.detached ?? false,
  });
  fs.closeSync(out);
  if (options.detached) child.unref();
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve((exitCode = code))));
  const control = path.join(socketDir, 'control.sock');
  // The node creates its control socket last, once everything else is up.
  while (!listening(control)) {
    if (exitCode !== undefined) {
      throw new NaplusError('ENODEV', `naplus-mount for node ${id} exited with ${exitCode}:\n${readLog(logPath).slice(-5).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { id, pid: child.pid!, process: child, logPath, log: () => readLog(logPath), exited };
}

/** What waitForLinks reads of a node's `stats`. */
export interface LinkStats {
  node: number;
  peers: Record<string, { up: boolean; lastFailure?: string }>;
}

/**
 * Resolves once every node (by socket directory, or whatever `stats` takes to reach
 * one) has its links to all the others up; rejects after `timeoutMs` naming the links
 * still down.
 */
export async function waitForLinks<T = string>(
  nodes: T[], timeoutMs = 15_000, stats: (node: T) => Promise<LinkStats> = (dir) => controlRequest<LinkStats>(String(dir), 'stats'),
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const down: string[] = [];
    for (const node of nodes) {
      const s = await stats(node);
      for (const [peer, p] of Object.entries(s.peers)) if (!p.up) down.push(`node ${s.node} to node ${peer}${p.lastFailure ? ` (${p.lastFailure})` : ''}`);
    }
    if (down.length === 0) return;
    if (Date.now() > deadline) throw new NaplusError('ETIMEDOUT', `Links still down after ${timeoutMs / 1000} s: ${down.join('; ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
