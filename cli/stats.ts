// `naplus stats`: live counters of running nodes, as a table, or as JSON.
import { controlRequest } from '../src/control-client.js';
import { DEFAULT_SOCKET_DIR } from '../src/client/attach.js';
import { NaplusError, errnoOf, invalidArgument } from '../src/errors.js';
import { regionFigures, type RegionFigures, type StatsReply } from '../src/stats.js';
import { fitTable, type Row } from './table.js';
import { DEFAULT_CLUSTER, clusterPaths, readState, requireState } from './cluster-state.js';

export interface StatsOptions {
  node?: string;
  name?: string;
  id?: string;
  json?: boolean;
  watch?: string | boolean;
}

interface Target {
  socketDir: string;
  /** Where the target came from, for the hint when nothing answers there. */
  from: string;
}

export interface NodeFigures {
  node: number;
  host: string;
  socketDir: string;
  regions: Record<string, RegionFigures>;
  links: { up: number; total: number };
  bytesOut: number;
  bytesIn: number;
}

export interface NodeFailure {
  socketDir: string;
  error: { code: string; message: string };
}

/**
 * Which nodes: --node; else the local cluster named by --name/--id; else the node of
 * NAPLUS_SOCKET_DIR (as apps find theirs); else the local cluster 'local' if it is up;
 * else the default socket directory of a node started by hand or by systemd.
 */
function targets(opts: StatsOptions): Target[] {
  if (opts.node) return [{ socketDir: opts.node, from: '--node' }];
  const local = (name: string) => {
    const state = requireState(name);
    const nodes = state.nodes.filter((n) => opts.id === undefined || String(n.id) === opts.id);
    if (nodes.length === 0) throw new NaplusError('ENOENT', `Local cluster '${name}' has no node ${opts.id}; its nodes are ${state.nodes.map((n) => n.id).join(', ')}`);
    const paths = clusterPaths(name);
    return nodes.map((n) => ({ socketDir: paths.socketDir(n.id), from: `local cluster '${name}'` }));
  };
  if (opts.name !== undefined || opts.id !== undefined) return local(opts.name ?? DEFAULT_CLUSTER);
  if (process.env.NAPLUS_SOCKET_DIR) return [{ socketDir: process.env.NAPLUS_SOCKET_DIR, from: 'NAPLUS_SOCKET_DIR' }];
  if (readState(DEFAULT_CLUSTER)) return local(DEFAULT_CLUSTER);
  return [{ socketDir: DEFAULT_SOCKET_DIR, from: 'the default socket directory' }];
}

async function ask(t: Target): Promise<NodeFigures | NodeFailure> {
  try {
    const s = await controlRequest<StatsReply>(t.socketDir, 'stats');
    const peers = Object.values(s.peers);
    return {
      node: s.node, host: s.host, socketDir: t.socketDir,
      regions: Object.fromEntries(Object.entries(s.regions).map(([name, r]) => [name, regionFigures(r)])),
      links: { up: peers.filter((p) => p.up).length, total: peers.length },
      bytesOut: peers.reduce((a, p) => a + p.bytesOut, 0),
      bytesIn: peers.reduce((a, p) => a + p.bytesIn, 0),
    };
  } catch (err) {
    const code = errnoOf(err) ?? 'EIO';
    const message = code === 'ENOTCONN'
      ? `No Naplus node answers at ${t.socketDir} (from ${t.from}); start a local cluster with \`npx naplus cluster up\`, or name a running node's socket directory with --node <dir> or NAPLUS_SOCKET_DIR`
      : `The node at ${t.socketDir} did not answer: ${(err as Error).message}`;
    return { socketDir: t.socketDir, error: { code, message } };
  }
}

const mib = (bytes: number) => (bytes / (1 << 20)).toFixed(1);

function rows(results: NodeFigures[]): Row[] {
  return results.flatMap((n) => Object.entries(n.regions).map(([region, r]) => ({
    node: n.node, host: n.host, region, apps: r.apps, faults: r.faults, cache: r.bySource.cache, segment: r.bySource.segment, remote: r.bySource.remote,
    upgrades: r.upgrades, readahead: r.readahead, evictions: r.evictions, writebacks: r.writebacks,
    resident: `${r.residentPages}/${r.cacheLimitPages}`, links: `${n.links.up}/${n.links.total}`, 'MiB out/in': `${mib(n.bytesOut)}/${mib(n.bytesIn)}`,
    consistency: r.consistency,
    'twins/diffs (KiB)': r.release ? `${r.release.twins}/${r.release.diffs} (${Math.round(r.release.diffBytes / 1024)})` : '-',
  })));
}

/** Dropped first when a terminal is too narrow: the least asked-for figures. */
const DROP_FIRST = ['twins/diffs (KiB)', 'writebacks', 'evictions', 'readahead', 'MiB out/in', 'host', 'upgrades', 'links', 'resident', 'apps'];

const LEGEND = 'faults = cache + segment + remote (where each fault\'s page came from); upgrades: of those, writes to pages held read-only; readahead: pages mapped ahead (no fault); resident: pages cached / cache limit; twins/diffs: release consistency\'s twins made and diffs sent home';

/** The table of the nodes that answered, and one error line per node that did not. */
function render(results: Array<NodeFigures | NodeFailure>, width: number | undefined): { table: string; errors: string[] } {
  const ok = results.filter((r): r is NodeFigures => !('error' in r));
  const failed = results.filter((r): r is NodeFailure => 'error' in r);
  return {
    table: ok.length > 0 ? `${fitTable(rows(ok), width, DROP_FIRST)}\n\n${LEGEND}` : '',
    errors: failed.map((f) => `naplus: ${f.error.message}`),
  };
}

const asJson = (results: Array<NodeFigures | NodeFailure>) => JSON.stringify({ time: new Date().toISOString(), nodes: results });

export async function statsCommand(opts: StatsOptions): Promise<void> {
  const list = targets(opts);
  const snapshot = () => Promise.all(list.map(ask));
  if (opts.watch === undefined) {
    const results = await snapshot();
    if (opts.json) console.log(asJson(results));
    else {
      const { table, errors } = render(results, process.stdout.isTTY ? process.stdout.columns : undefined);
      if (table) console.log(table);
      for (const e of errors) console.error(e);
    }
    if (results.some((r) => 'error' in r)) process.exitCode = 1;
    return;
  }
  const seconds = opts.watch === true ? 1 : Number(opts.watch);
  if (!(seconds > 0) || !Number.isFinite(seconds)) throw invalidArgument('--watch', 'a positive number of seconds', opts.watch);
  const tty = process.stdout.isTTY === true && !opts.json;
  for (;;) {
    const results = await snapshot();
    if (opts.json) {
      process.stdout.write(`${asJson(results)}\n`);
    } else {
      const { table, errors } = render(results, tty ? process.stdout.columns : undefined);
      const body = [table, ...errors].filter(Boolean).join('\n');
      // Clear-screen codes only for a terminal: a pipe or a file gets one snapshot after another.
      if (tty) process.stdout.write(`\x1b[2J\x1b[H${new Date().toISOString()}  (every ${seconds} s, Ctrl-C to stop)\n\n${body}\n`);
      else process.stdout.write(`${new Date().toISOString()}\n${body}\n\n`);
    }
    await new Promise((r) => setTimeout(r, seconds * 1000));
  }
}
