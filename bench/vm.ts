// Naplus in real QEMU guests against the same cluster on the bare host, measured in one
// run: the same shape (2 hosts x 2 nodes by default), the same region and the same
// apps, once as plain processes on loopback with /dev/shm segments, then with every
// node and app in a guest (`naplus vm up`'s guests, each host's segment behind an
// ivshmem device), once with the BAR mapped write-combining (resource2_wc) and once
// uncached (resource2).
//
// - Read faults by source, from an app on node 1 reading one byte of each of a run of
//   fresh pages in shuffled order (bench/lib/scan-app, one fault per page): pages homed
//   on node 1 (copied from its host's segment), the same pages again from a second app
//   (already in node 1's cache: a minor fault), pages homed on the first node of the
//   other host (over TCP). Node 1's own fault counters confirm each scan's source.
// - Starting Node (`node -e 0`), and the matmul example with one worker per node (wall
//   time from start to the last worker's exit, Node's start included).
// Under TCG (no KVM here) every guest figure is many times the bare host's: they are
// reported for correctness and shape, not as targets.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.js';
import { controlRequest } from '../src/control-client.js';
import { startNode, waitForLinks, writeLocalCluster, type RegionSpec, type RunningNode } from '../src/local-cluster.js';
import { RegionLayout, SEGMENT_HEADER_BYTES } from '../src/node/layout.js';
import { agentRun, type CommandResult } from '../src/vm/agent-client.js';
import { vmDestroy, vmDown, vmUp } from '../src/vm/cluster.js';
import { guestNodeStats, startGuestNode, stopGuestNode, waitForGuestLinks, writeGuestCluster, type BarMapping } from '../src/vm/guest-nodes.js';
import { checkHost } from '../src/vm/host.js';
import { agentAddress, type VmState } from '../src/vm/state.js';
import { makePage } from '../test/fixtures/transport-protocol.js';
import { onAbort } from './lib/cleanup.js';
import { median, type Bench, type Row } from './lib/report.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SCAN_APP = path.join(here, 'lib/scan-app.js');
const MATMUL = path.resolve(here, '../examples/matmul.js');
const MiB = 1 << 20;
const REGION: RegionSpec = { name: 'data', size: 16 * MiB, placement: 'block' };

type Counters = { servedFromCache: number; servedFromSegment: number; servedFromRemote: number };
type Source = 'cache' | 'segment' | 'remote';
const COUNTER: Record<Source, keyof Counters> = { cache: 'servedFromCache', segment: 'servedFromSegment', remote: 'servedFromRemote' };

/** Where the cluster runs: how to run a command next to node `id`, and ask node `id` for its counters. */
interface Place {
  nodes: number[];
  socketDir(id: number): string;
  run(id: number, argv: string[], env?: Record<string, string>): Promise<string>;
  counters(id: number): Promise<Counters>;
}

interface Figures {
  startMs: number;
  faultUs: Record<Source, number>;
  matmulS: number;
}

/** Text-like pages in every page slot of a segment file, its header zeroed (the nodes format it). */
function fillSegment(file: string, size: number): void {
  const pool = Buffer.concat(Array.from({ length: 256 }, (_, i) => makePage('text', i)));
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    if (fs.fstatSync(fd).size < size) fs.ftruncateSync(fd, size); // never shrink: QEMU may have it mapped
    fs.writeSync(fd, Buffer.alloc(SEGMENT_HEADER_BYTES), 0, SEGMENT_HEADER_BYTES, 0);
    for (let at = SEGMENT_HEADER_BYTES; at < size; at += pool.length) fs.writeSync(fd, pool, 0, Math.min(pool.length, size - at), at);
  } finally {
    fs.closeSync(fd);
  }
}

/** First page homed on node `id` (block placement: each node's pages are one run). */
function firstPageOf(configPath: string, id: number): number {
  const config = loadConfig(configPath);
  return new RegionLayout(config, config.regions[0]!).home.indexOf(id);
}

async function measure(place: Place, configPath: string, pages: number, n: number, log: (l: string) => void): Promise<Figures> {
  const [first, ...rest] = place.nodes as [number, ...number[]];
  const hostOf = (id: number) => loadConfig(configPath).nodes.find((x) => x.id === id)!.host;
  const remoteNode = rest.find((id) => hostOf(id) !== hostOf(first))!;
  const starts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = process.hrtime.bigint();
    await place.run(first, [process.execPath, '-e', '0']);
    starts.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const scan = async (source: Source, from: number): Promise<number> => {
    const before = await place.counters(first);
    const out = await place.run(first, [process.execPath, SCAN_APP, place.socketDir(first), 'data', String(from), String(pages), 'random']);
    const counted = (await place.counters(first))[COUNTER[source]] - before[COUNTER[source]];
    if (counted < pages * 0.9) throw new Error(`the ${source} scan of ${pages} pages counted only ${counted} faults from ${source} on node ${first}`);
    return (JSON.parse(out.trim().split('\n').pop()!) as { ns: number }).ns / pages / 1000;
  };
  log(`vm:   read faults, ${pages} pages per source`);
  const own = firstPageOf(configPath, first);
  const segment = await scan('segment', own);
  const cache = await scan('cache', own);
  const remote = await scan('remote', firstPageOf(configPath, remoteNode));
  log(`vm:   matmul n=${n}, ${place.nodes.length} workers`);
  const t0 = Date.now();
  const outs = await Promise.all(place.nodes.map((id, w) => place.run(id, [process.execPath, MATMUL, String(w), String(place.nodes.length), String(n)], { NAPLUS_SOCKET_DIR: place.socketDir(id) })));
  const matmulS = (Date.now() - t0) / 1000;
  const result = JSON.parse(outs[0]!.trim().split('\n').pop()!) as { ok: boolean; mismatches: number };
  if (!result.ok) throw new Error(`matmul gave a wrong product (${result.mismatches} entries differ)`);
  return { startMs: median(starts), faultUs: { cache, segment, remote }, matmulS };
}

const exec = promisify(execFile);

async function bareHost(shape: { hosts: number; nodesPerHost: number }, pages: number, n: number, log: (l: string) => void): Promise<Figures> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-bench-vm-'));
  const files = await writeLocalCluster({ name: `bvm${process.pid}`, dir, ...shape, regions: [REGION] });
  const nodes: RunningNode[] = [];
  const undo = () => {
    for (const node of nodes) node.process.kill('SIGKILL');
    for (const s of files.segments) fs.rmSync(s, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const forget = onAbort(undo);
  try {
    const config = loadConfig(files.configPath);
    config.hosts.forEach((h, i) => fillSegment(files.segments[i]!, h.segment.size));
    for (const node of files.nodes) nodes.push(await startNode(files.configPath, node.id, node.socketDir, node.logPath));
    await waitForLinks(files.nodes.map((x) => x.socketDir));
    const dirOf = (id: number) => files.nodes.find((x) => x.id === id)!.socketDir;
    return await measure({
      nodes: files.nodes.map((x) => x.id),
      socketDir: dirOf,
      run: async (_id, argv, env = {}) => (await exec(argv[0]!, argv.slice(1), { env: { ...process.env, ...env }, maxBuffer: 16 * MiB })).stdout,
      counters: async (id) => (await controlRequest<{ regions: Record<string, Counters> }>(dirOf(id), 'stats')).regions.data!,
    }, files.configPath, pages, n, log);
  } finally {
    for (const node of nodes) node.process.kill('SIGTERM');
    await Promise.all(nodes.map((x) => x.exited));
    nodes.length = 0;
    undo();
    forget();
  }
}

async function guests(state: VmState, mapping: BarMapping, pages: number, n: number, log: (l: string) => void): Promise<Figures> {
  for (const h of state.hosts) fillSegment(h.segmentFile, h.segmentBytes);
  const cluster = writeGuestCluster(state, { name: `b-${mapping.replace('_', '-')}`, regions: [REGION], mapping });
  const guestOf = (id: number) => state.guests.find((g) => g.nodeId === id)!.name;
  const pids = new Map<number, number>();
  try {
    await Promise.all(state.guests.map(async (g) => pids.set(g.nodeId, await startGuestNode(state, g.name, cluster))));
    await waitForGuestLinks(state, state.guests.map((g) => g.name), cluster.socketDir);
    return await measure({
      nodes: state.guests.map((g) => g.nodeId),
      socketDir: () => cluster.socketDir,
      run: async (id, argv, env = {}) => {
        const r: CommandResult = await agentRun(agentAddress(state, guestOf(id)), argv, env);
        if (r.code !== 0) throw new Error(`${argv.join(' ')} in ${guestOf(id)} exited with ${r.code ?? r.signal}: ${r.stderr.trim()}`);
        return r.stdout;
      },
      counters: async (id) => (await guestNodeStats<{ regions: Record<string, Counters> }>(state, guestOf(id), cluster.socketDir)).regions.data!,
    }, cluster.configPath, pages, n, log);
  } finally {
    await Promise.all([...pids].map(([id, pid]) => stopGuestNode(state, guestOf(id), pid)));
  }
}

export const bench: Bench = async ({ quick, shape, log }) => {
  const title = `vm: Naplus in QEMU guests (${shape.hosts} hosts x ${shape.nodesPerHost} guests) against the same cluster on the bare host`;
  let accel = 'tcg';
  try {
    accel = checkHost('auto').accel;
  } catch (err) {
    const why = `skipped: ${(err as Error).message}`;
    log(`vm: ${why}`);
    return { title, note: why, rows: [], figures: {} };
  }
  if (shape.hosts < 2) throw new Error('bench vm compares faults from the other host: it needs --hosts 2 or more');
  const pages = quick ? 32 : 128;
  const n = quick ? 128 : 256;
  log(`vm: the cluster on the bare host (loopback, /dev/shm segments)`);
  const bare = await bareHost(shape, pages, n, log);
  const name = `bench${process.pid}`;
  const forget = onAbort(() => vmDestroy(name));
  const inGuests: Partial<Record<BarMapping, Figures>> = {};
  try {
    const state = await vmUp({
      name, hosts: shape.hosts, guestsPerHost: shape.nodesPerHost, memoryMiB: 1024, regionBytes: REGION.size, accel: 'auto', bootTimeoutMs: 600_000,
      startNodes: false, keep: false, say: (l) => log(`vm: ${l}`),
    });
    for (const mapping of ['resource2_wc', 'resource2'] as const) {
      log(`vm: the cluster in the guests, BAR2 mapped as ${mapping}`);
      inGuests[mapping] = await guests(state, mapping, pages, n, log);
    }
  } finally {
    await vmDown({ name, say: () => undefined }).catch(() => vmDestroy(name));
    forget();
  }
  const wc = inGuests.resource2_wc!;
  const uc = inGuests.resource2!;
  const cases: Array<{ key: string; label: string; unit: string; get(f: Figures): number }> = [
    { key: 'node_start', label: 'start Node (node -e 0)', unit: 'ms', get: (f) => f.startMs },
    { key: 'fault_cache', label: 'read fault, page in the node\'s cache', unit: 'µs', get: (f) => f.faultUs.cache },
    { key: 'fault_segment', label: 'read fault, page from this host\'s segment', unit: 'µs', get: (f) => f.faultUs.segment },
    { key: 'fault_remote', label: 'read fault, page from the other host (TCP)', unit: 'µs', get: (f) => f.faultUs.remote },
    { key: 'matmul', label: `matmul n=${n}, one worker per node (wall)`, unit: 's', get: (f) => f.matmulS },
  ];
  const fmt = (v: number, unit: string) => `${v >= 100 ? v.toFixed(0) : v.toFixed(unit === 's' ? 2 : 1)} ${unit}`;
  const rows: Row[] = cases.map((c) => ({
    case: c.label, 'bare host': fmt(c.get(bare), c.unit),
    'guests, resource2_wc': fmt(c.get(wc), c.unit), 'wc / bare': c.get(wc) / c.get(bare),
    'guests, resource2': fmt(c.get(uc), c.unit), 'uc / bare': c.get(uc) / c.get(bare),
  }));
  const figures: Record<string, number> = {};
  for (const c of cases) {
    figures[`${c.key}_bare`] = c.get(bare);
    figures[`${c.key}_wc`] = c.get(wc);
    figures[`${c.key}_uc`] = c.get(uc);
    figures[`${c.key}_wc_ratio`] = c.get(wc) / c.get(bare);
    figures[`${c.key}_uc_ratio`] = c.get(uc) / c.get(bare);
  }
  return {
    title,
    note:
      `Guests under ${accel.toUpperCase()}${accel === 'tcg' ? ' (KVM is not usable here): every guest figure includes the emulation, so they show correctness and shape, not targets' : ''}. ` +
      `Faults: ${pages} fresh pages per source in shuffled order, from an app on node 1; node 1's counters confirm each scan's source. Ratios: guests / bare host, measured in this run.`,
    rows,
    figures,
    discussion: [
      `In the guests a fault from the host's segment costs ${fmt(wc.faultUs.segment, 'µs')} with the BAR mapped write-combining and ${fmt(uc.faultUs.segment, 'µs')} uncached ` +
        `(${(uc.faultUs.segment / wc.faultUs.segment).toFixed(2)}x), against ${fmt(bare.faultUs.segment, 'µs')} on the bare host; a fault from the other host ${fmt(wc.faultUs.remote, 'µs')} against ${fmt(bare.faultUs.remote, 'µs')}. ` +
        `Starting Node alone takes ${(wc.startMs / bare.startMs).toFixed(1)}x as long in a guest, a measure of the emulation's own cost on this machine.`,
    ],
  };
};
