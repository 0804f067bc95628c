// `naplus cluster up|status|down|restart|env`: a local virtual cluster whose state (the
// node processes it started) is kept in a private directory (cluster-state.ts), so that
// later commands find it, and can tell its nodes from whatever else holds their pids.
import fs from 'node:fs';
import type { Placement } from '../src/config.js';
import { startNode, waitForLinks, writeLocalCluster } from '../src/local-cluster.js';
import { connectControl, controlRequest } from '../src/control-client.js';
import { NaplusError } from '../src/errors.js';
import { formatTable } from './table.js';
import { intFlag, sizeFlag } from './args.js';
import { DEFAULT_CLUSTER, clusterPaths, readState, requireState, writeState, type ClusterPaths, type ClusterState, type NodeRecord } from './cluster-state.js';
import { isNodeProcess, sameProcess, startTime } from './node-process.js';

export { DEFAULT_CLUSTER };

/** How long a node may take to answer on its control socket before it counts as not answering. */
const ANSWER_MS = 3000;
/** How long a node may take to stop cleanly (it writes its dirty pages home) before SIGKILL. */
const STOP_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nameFlag = (name: string) => (name === DEFAULT_CLUSTER ? '' : ` --name ${name}`);

export interface UpOptions {
  name: string;
  hosts: string;
  nodesPerHost: string;
  size: string;
  placement: Placement;
  cache?: string;
  quiet?: boolean;
}

export interface NodeStatus {
  id: number;
  host: string;
  state: 'running' | 'stopped' | 'not answering';
  /** The node's process: the one started, or one that took its place (restarted by hand). */
  pid?: number;
  socketDir: string;
  logPath: string;
  apps?: number;
  faults?: number;
  residentPages?: number;
}

interface ControlStats {
  node: number;
  cluster: string;
  regions: Record<string, { apps: number; residentPages: number; servedFromCache: number; servedFromSegment: number; servedFromRemote: number }>;
}

function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new NaplusError('ETIMEDOUT', `no answer within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

/** The pid and stats of the node answering on `socketDir`, if it is node `id` of cluster `name`. */
async function ask(socketDir: string, name: string, id: number): Promise<{ pid: number; stats: ControlStats } | undefined> {
  try {
    const channel = connectControl(socketDir);
    const { pid } = channel.peer();
    channel.close();
    const stats = await within(ANSWER_MS, controlRequest<ControlStats>(socketDir, 'stats'));
    return stats.node === id && stats.cluster === name ? { pid, stats } : undefined;
  } catch {
    return undefined;
  }
}

/** A node's state, taking in a node restarted by hand (it answers on the node's socket, from another pid). */
async function probe(state: ClusterState, paths: ClusterPaths, rec: NodeRecord): Promise<NodeStatus> {
  const status: NodeStatus = { id: rec.id, host: rec.host, state: 'stopped', socketDir: paths.socketDir(rec.id), logPath: paths.logPath(rec.id) };
  const answer = await ask(status.socketDir, state.name, rec.id);
  if (answer) {
    const regions = Object.values(answer.stats.regions);
    const sum = (f: (r: ControlStats['regions'][string]) => number) => regions.reduce((a, r) => a + f(r), 0);
    return {
      ...status, state: 'running', pid: answer.pid,
      apps: sum((r) => r.apps), faults: sum((r) => r.servedFromCache + r.servedFromSegment + r.servedFromRemote), residentPages: sum((r) => r.residentPages),
    };
  }
  if (sameProcess(rec.pid, rec.startTime)) return { ...status, state: 'not answering', pid: rec.pid };
  return status;
}

/** Starts node `id` in the background and records its process. */
async function launch(state: ClusterState, paths: ClusterPaths, id: number, host: string): Promise<NodeRecord> {
  const extra = state.cacheBytes === undefined ? [] : ['--cache', String(state.cacheBytes)];
  const node = await startNode(paths.configPath, id, paths.socketDir(id), paths.logPath(id), extra, { detached: true });
  const rec = { id, host, pid: node.pid, startTime: startTime(node.pid) ?? '0' };
  state.nodes = [...state.nodes.filter((n) => n.id !== id), rec].sort((a, b) => a.id - b.id);
  writeState(state);
  return rec;
}

/** Segments of this cluster's name that are ours to remove: regular files this user owns. */
function ownSegments(state: ClusterState, paths: ClusterPaths): string[] {
  const segments = [];
  for (let h = 1; h <= state.hosts; h++) {
    const file = paths.segment(h);
    try {
      const st = fs.lstatSync(file);
      if (!st.isFile() || st.uid !== process.getuid!()) {
        throw new NaplusError('EEXIST', `${file} belongs to another user (uid ${st.uid}) or is not a file; choose another --name`);
      }
      segments.push(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return segments;
}

export async function clusterUp(opts: UpOptions): Promise<ClusterState> {
  const hosts = intFlag('--hosts', opts.hosts, 1, 64);
  const nodesPerHost = intFlag('--nodes-per-host', opts.nodesPerHost, 1, 64);
  const size = sizeFlag('--size', opts.size);
  const cacheBytes = opts.cache === undefined ? undefined : sizeFlag('--cache', opts.cache);
  const paths = clusterPaths(opts.name);
  const say = (line: string) => opts.quiet || console.log(line);
  const existing = readState(opts.name);
  if (existing) return startStopped(existing, paths, say);

  fs.mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  const state: ClusterState = { name: opts.name, hosts, nodesPerHost, cacheBytes, nodes: [] };
  // Leftovers of a cluster of this name that was never taken down (its nodes killed, say).
  for (const s of ownSegments(state, paths)) fs.rmSync(s);
  const files = await writeLocalCluster({
    name: opts.name, dir: paths.dir, hosts, nodesPerHost, regions: [{ name: 'data', size, placement: opts.placement }], segmentPrefix: paths.segmentPrefix,
  });
  writeState(state);
  say(`Starting ${hosts * nodesPerHost} nodes on ${hosts} simulated hosts (cluster file ${files.configPath})`);
  try {
    for (const n of files.nodes) {
      const rec = await launch(state, paths, n.id, n.host);
      say(`  node ${n.id} on ${n.host} up (pid ${rec.pid}), sockets in ${n.socketDir}`);
    }
    if (state.nodes.length > 1) {
      await waitForLinks(state.nodes.map((n) => paths.socketDir(n.id)));
      say(`  all ${state.nodes.length} nodes linked to each other`);
    }
  } catch (err) {
    await clusterDown({ name: opts.name, quiet: true });
    throw err;
  }
  say(`Cluster '${opts.name}' is up. Attach an app with NAPLUS_SOCKET_DIR set to a node's socket directory (\`npx naplus cluster env <node>\` prints it); stop with \`npx naplus cluster down${nameFlag(opts.name)}\`.`);
  return state;
}

/** `cluster up` on a cluster that exists: starts the nodes that are not running. */
async function startStopped(state: ClusterState, paths: ClusterPaths, say: (line: string) => void): Promise<ClusterState> {
  const statuses = await Promise.all(state.nodes.map((rec) => probe(state, paths, rec)));
  const stopped = statuses.filter((s) => s.state === 'stopped');
  if (stopped.length === 0) {
    throw new NaplusError('EEXIST', `Local cluster '${state.name}' is already up; stop it with \`npx naplus cluster down${nameFlag(state.name)}\` (a cluster of another shape needs that first)`);
  }
  say(`Cluster '${state.name}' exists: starting its stopped node(s) ${stopped.map((s) => s.id).join(', ')} with its cluster file ${paths.configPath}`);
  for (const s of stopped) {
    const rec = await launch(state, paths, s.id, s.host);
    say(`  node ${s.id} on ${s.host} up (pid ${rec.pid}), sockets in ${s.socketDir}`);
  }
  if (state.nodes.length > 1) {
    await waitForLinks(state.nodes.map((n) => paths.socketDir(n.id)));
    say(`  all ${state.nodes.length} nodes linked to each other`);
  }
  return state;
}

/** `cluster restart <id>`: stops the node if it runs (cleanly: its dirty pages go home) and starts it again. */
export async function clusterRestart(id: string, opts: { name: string }): Promise<void> {
  const state = requireState(opts.name);
  const paths = clusterPaths(opts.name);
  const rec = state.nodes.find((n) => String(n.id) === id);
  if (!rec) throw new NaplusError('ENOENT', `Local cluster '${state.name}' has no node ${id}; its nodes are ${state.nodes.map((n) => n.id).join(', ')}`);
  const status = await probe(state, paths, rec);
  const refused = await stopNodes(paths, [status], console.log);
  if (refused.length > 0) throw new NaplusError('EBUSY', refused[0]!);
  const started = await launch(state, paths, rec.id, rec.host);
  console.log(`  node ${rec.id} on ${rec.host} up (pid ${started.pid}), sockets in ${paths.socketDir(rec.id)}`);
  if (state.nodes.length > 1) await waitForLinks(state.nodes.map((n) => paths.socketDir(n.id)));
}

export interface StatusOptions {
  name: string;
  json?: boolean;
}

/** Prints the cluster's nodes; exit status 3 if any is not running (as `systemctl status` does). */
export async function clusterStatus(opts: StatusOptions): Promise<void> {
  const state = requireState(opts.name);
  const paths = clusterPaths(opts.name);
  const nodes = await Promise.all(state.nodes.map((rec) => probe(state, paths, rec)));
  const down = nodes.filter((n) => n.state !== 'running');
  if (opts.json) {
    console.log(JSON.stringify({ name: state.name, configPath: paths.configPath, dir: paths.dir, running: down.length === 0, nodes }));
  } else {
    const dash = (v: number | undefined) => v ?? '-';
    console.log(`Cluster '${state.name}' (${paths.configPath})\n`);
    console.log(formatTable(nodes.map((n) => ({
      node: n.id, host: n.host, pid: dash(n.pid), state: n.state, apps: dash(n.apps), faults: dash(n.faults), 'resident pages': dash(n.residentPages), 'socket dir': n.socketDir,
    }))));
    if (down.length > 0) {
      console.log(`\n${down.length} of ${nodes.length} node(s) not running; \`npx naplus cluster up${nameFlag(state.name)}\` starts the stopped ones; their logs: ${down.map((n) => n.logPath).join(', ')}`);
    }
  }
  if (down.length > 0) process.exitCode = 3;
}

/** `cluster env <id>`: the environment an app needs to attach through node `id`. */
export function clusterEnv(id: string, opts: { name: string }): void {
  const state = requireState(opts.name);
  if (!state.nodes.some((n) => String(n.id) === id)) {
    throw new NaplusError('ENOENT', `Local cluster '${state.name}' has no node ${id}; its nodes are ${state.nodes.map((n) => n.id).join(', ')}`);
  }
  console.log(`NAPLUS_SOCKET_DIR=${clusterPaths(opts.name).socketDir(Number(id))}`);
}

/**
 * SIGTERM to each node's process, but only to a process that is provably that node: the
 * process recorded at start (same pid, same start time), or the one answering on its
 * socket, each checked to be naplus-mount of this cluster file and node id. Returns why
 * any node could not be stopped.
 */
async function stopNodes(paths: ClusterPaths, nodes: NodeStatus[], say: (line: string) => void): Promise<string[]> {
  const problems: string[] = [];
  const targets: Array<{ id: number; pid: number; started: string }> = [];
  for (const n of nodes) {
    if (n.pid === undefined) continue;
    const started = startTime(n.pid);
    if (started === undefined) continue; // exited meanwhile
    if (!isNodeProcess(n.pid, paths.configPath, n.id)) {
      problems.push(`node ${n.id}: pid ${n.pid} is not naplus-mount of ${paths.configPath} node ${n.id}; it was not signalled`);
      continue;
    }
    process.kill(n.pid, 'SIGTERM');
    targets.push({ id: n.id, pid: n.pid, started });
  }
  const deadline = Date.now() + STOP_MS;
  for (const t of targets) {
    while (sameProcess(t.pid, t.started) && Date.now() < deadline) await sleep(25);
    if (sameProcess(t.pid, t.started)) {
      process.kill(t.pid, 'SIGKILL');
      say(`  node ${t.id} did not stop within ${STOP_MS / 1000} s and was killed (its dirty pages are lost)`);
    } else {
      say(`  node ${t.id} stopped`);
    }
  }
  return problems;
}

export interface DownOptions {
  name: string;
  quiet?: boolean;
  /** Remove the node logs too (the demo, after a run that went well). */
  dropLogs?: boolean;
}

/**
 * Stops every node of the cluster, then removes what `up` made: segments, sockets, the
 * cluster file and secret, the state. The node logs stay (and it says where). Nothing is
 * removed while any node still runs on the segments.
 */
export async function clusterDown(opts: DownOptions): Promise<void> {
  const state = requireState(opts.name);
  const paths = clusterPaths(opts.name);
  const say = (line: string) => opts.quiet || console.log(line);
  const before = await Promise.all(state.nodes.map((rec) => probe(state, paths, rec)));
  const problems = await stopNodes(paths, before, say);
  const still = (await Promise.all(state.nodes.map((rec) => probe(state, paths, rec)))).filter((n) => n.state !== 'stopped');
  if (still.length > 0) {
    throw new NaplusError('EBUSY', [
      ...problems,
      `node(s) ${still.map((n) => `${n.id} (pid ${n.pid ?? 'unknown'})`).join(', ')} still run on cluster '${state.name}': its segments and files were left in place; stop them, then run \`npx naplus cluster down${nameFlag(state.name)}\` again`,
    ].join('; '));
  }
  for (const s of ownSegments(state, paths)) fs.rmSync(s);
  for (const n of state.nodes) {
    fs.rmSync(paths.socketDir(n.id), { recursive: true, force: true });
    if (opts.dropLogs) fs.rmSync(paths.logPath(n.id), { force: true });
  }
  for (const f of [paths.configPath, paths.secretPath, paths.stateFile]) fs.rmSync(f, { force: true });
  if (opts.dropLogs) fs.rmSync(paths.dir, { recursive: true, force: true });
  say(`Cluster '${state.name}' is down.${opts.dropLogs ? '' : ` Node logs kept in ${paths.dir}/node<id>.log.`}`);
}
