// `naplus cluster up|status|down`: a local virtual cluster whose state (pids, sockets,
// files) is kept in a folder under the temp dir, so later commands find it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseSize, type Placement } from '../src/config.js';
import { startNode, waitForLinks, writeLocalCluster } from '../src/local-cluster.js';
import { controlRequest } from '../src/control-client.js';
import { NaplusError } from '../src/errors.js';
import { formatTable } from '../bench/lib/report.js';

export const DEFAULT_CLUSTER = 'local';

export interface ClusterState {
  name: string;
  dir: string;
  configPath: string;
  nodes: Array<{ id: number; host: string; pid: number; socketDir: string; logPath: string }>;
  segments: string[];
}

const stateDir = (name: string) => path.join(os.tmpdir(), `naplus-cluster-${name}`);
const stateFile = (name: string) => path.join(stateDir(name), 'state.json');

export function readState(name: string): ClusterState {
  try {
    return JSON.parse(fs.readFileSync(stateFile(name), 'utf8')) as ClusterState;
  } catch {
    throw new NaplusError('ENOENT', `No local cluster '${name}' is up; start one with \`naplus cluster up --name ${name}\``);
  }
}

export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function positive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new NaplusError('EINVAL', `${flag} must be an integer from 1 to 64, got '${value}'`);
  return n;
}

export interface UpOptions {
  name: string;
  hosts: string;
  nodesPerHost: string;
  size: string;
  placement: Placement;
  cache?: string;
  dir?: string;
  quiet?: boolean;
}

export async function clusterUp(opts: UpOptions): Promise<ClusterState> {
  const hosts = positive(opts.hosts, '--hosts');
  const nodesPerHost = positive(opts.nodesPerHost, '--nodes-per-host');
  const size = parseSize(opts.size, '--size');
  if (fs.existsSync(stateFile(opts.name)) && readState(opts.name).nodes.some((n) => alive(n.pid))) {
    throw new NaplusError('EEXIST', `Local cluster '${opts.name}' is already up; stop it with \`naplus cluster down --name ${opts.name}\``);
  }
  const dir = opts.dir ?? stateDir(opts.name);
  fs.rmSync(dir, { recursive: true, force: true });
  const files = await writeLocalCluster({ name: opts.name, dir, hosts, nodesPerHost, regions: [{ name: 'data', size, placement: opts.placement }] });
  const state: ClusterState = { name: opts.name, dir, configPath: files.configPath, nodes: [], segments: files.segments };
  fs.mkdirSync(stateDir(opts.name), { recursive: true });
  const say = (line: string) => opts.quiet || console.log(line);
  say(`Starting ${hosts * nodesPerHost} nodes on ${hosts} simulated hosts (cluster file ${files.configPath})`);
  try {
    for (const n of files.nodes) {
      const extra = opts.cache ? ['--cache', opts.cache] : [];
      const node = await startNode(files.configPath, n.id, n.socketDir, n.logPath, extra, { detached: true });
      state.nodes.push({ id: n.id, host: n.host, pid: node.pid, socketDir: n.socketDir, logPath: n.logPath });
      fs.writeFileSync(stateFile(opts.name), JSON.stringify(state, null, 2));
      say(`  node ${n.id} on ${n.host} up (pid ${node.pid}), sockets in ${n.socketDir}`);
    }
    if (state.nodes.length > 1) {
      await waitForLinks(state.nodes.map((n) => n.socketDir));
      say(`  all ${state.nodes.length} nodes linked to each other`);
    }
  } catch (err) {
    await clusterDown({ name: opts.name, quiet: true });
    throw err;
  }
  say(`Cluster '${opts.name}' is up. Attach an app with NAPLUS_SOCKET_DIR=${files.nodes[0]!.socketDir}; stop with \`naplus cluster down${opts.name === DEFAULT_CLUSTER ? '' : ` --name ${opts.name}`}\`.`);
  return state;
}

export async function clusterStatus(opts: { name: string }): Promise<void> {
  const state = readState(opts.name);
  const rows = [];
  for (const n of state.nodes) {
    const row: Record<string, string | number> = { node: n.id, host: n.host, pid: n.pid, state: alive(n.pid) ? 'running' : 'stopped' };
    if (row.state === 'running') {
      try {
        const s = await controlRequest<{ regions: Record<string, { apps: number; faults: number; residentPages: number }> }>(n.socketDir, 'stats');
        const r = Object.values(s.regions);
        row.apps = r.reduce((a, x) => a + x.apps, 0);
        row.faults = r.reduce((a, x) => a + x.faults, 0);
        row['resident pages'] = r.reduce((a, x) => a + x.residentPages, 0);
      } catch {
        row.state = 'not answering';
      }
    }
    row['socket dir'] = n.socketDir;
    rows.push(row);
  }
  console.log(`Cluster '${state.name}' (${state.configPath})\n`);
  console.log(formatTable(rows));
}

export async function clusterDown(opts: { name: string; quiet?: boolean }): Promise<void> {
  const state = readState(opts.name);
  const say = (line: string) => opts.quiet || console.log(line);
  for (const n of state.nodes) if (alive(n.pid)) process.kill(n.pid, 'SIGTERM');
  const deadline = Date.now() + 15_000;
  for (const n of state.nodes) {
    while (alive(n.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    if (alive(n.pid)) {
      process.kill(n.pid, 'SIGKILL');
      say(`  node ${n.id} did not stop in time; killed`);
    } else {
      say(`  node ${n.id} stopped`);
    }
  }
  for (const s of state.segments) fs.rmSync(s, { force: true });
  fs.rmSync(state.dir, { recursive: true, force: true });
  fs.rmSync(stateDir(opts.name), { recursive: true, force: true });
  say(`Cluster '${state.name}' is down.`);
}
