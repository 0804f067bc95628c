// DSM fault costs through a real cluster: two simulated hosts x two nodes on loopback
// (block placement: node n homes the n-th quarter of the region), apps attached to
// node 1 (and node 2) reading pages they have never touched. Every page holds
// text-like data, written into the host segments before the nodes start.
//
// - Read faults, one per page (shuffled order defeats readahead), for pages homed on
//   node 1 itself, on node 2 (same host: directory over TCP, data from the segment) and
//   on node 3 (other host: data over TCP); against the minimal C handler of
//   bench/fault-path, and for the remote case against a raw page round trip (a plain
//   `net` socket, 21-byte request and 4 KiB answer) plus that C fault.
// - Sequential scans of pages homed on the other host, with readahead (node 1) and
//   without (node 2 runs --readahead 0), against a plain socket streaming the same bytes.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNode, waitForLinks, writeLocalCluster, type RunningNode } from '../src/local-cluster.js';
import { loadConfig } from '../src/config.js';
import { RegionLayout, SEGMENT_HEADER_BYTES, planSegment } from '../src/node/layout.js';
import { makePage, startPeer } from '../test/fixtures/transport-protocol.js';
import { cHandlerMicrosPerFault } from './fault-path.js';
import { plainRequester, plainStream } from './lib/plain-net.js';
import { meets, median, type Bench, type Row } from './lib/report.js';

const SCAN_APP = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'lib/scan-app.js');
const MiB = 1 << 20;
const PAGE = 4096;

/** Nanoseconds an app attached through `socketDir` takes to read one byte of each page. */
function scan(socketDir: string, first: number, pages: number, order: 'seq' | 'random'): number {
  const out = execFileSync(process.execPath, [SCAN_APP, socketDir, 'data', String(first), String(pages), order], { encoding: 'utf8' });
  return (JSON.parse(out.trim().split('\n').pop()!) as { ns: number }).ns;
}

/** Fills every page slot of a host segment with text-like pages (the header is left to the nodes). */
function fillSegment(file: string, size: number): void {
  const pool = Buffer.concat(Array.from({ length: 256 }, (_, i) => makePage('text', i)));
  const fd = fs.openSync(file, 'w');
  try {
    fs.ftruncateSync(fd, size);
    for (let at = SEGMENT_HEADER_BYTES; at < size; at += pool.length) fs.writeSync(fd, pool, 0, Math.min(pool.length, size - at), at);
  } finally {
    fs.closeSync(fd);
  }
}

/** The plain-socket baselines: a 4 KiB page round trip, and one-way page throughput. */
async function plainPeer() {
  const peer = await startPeer({
    cluster: 'bdsm', nodeId: 9, listen: { host: '127.0.0.1', port: 0 }, peers: [{ id: 1, host: '127.0.0.1', port: 0 }],
    secretHex: '00'.repeat(32), plain: true,
  });
  const plain = await plainRequester(peer.plainPort!);
  const pages = Array.from({ length: 256 }, (_, i) => makePage('text', i));
  return {
    /** Median µs of `n` round trips. */
    async rtt(n: number): Promise<number> {
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = process.hrtime.bigint();
        await plain.request();
        times.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
      return median(times);
    },
    stream: (total: number) => plainStream(peer.plainPort!, pages, total, 64),
    close() {
      plain.close();
      peer.child.kill();
    },
  };
}

export const bench: Bench = async ({ quick, log }) => {
  const regionBytes = quick ? 64 * MiB : 1024 * MiB;
  const quarterPages = regionBytes / PAGE / 4;
  const faultPages = quick ? 512 : 2048;
  const rounds = quick ? 2 : 5;
  const scanPages = quick ? 4096 : (256 * MiB) / PAGE;
  const slowScanPages = quick ? 1024 : (32 * MiB) / PAGE;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-bench-dsm-'));
  const files = await writeLocalCluster({ name: `bdsm${process.pid}`, dir, hosts: 2, nodesPerHost: 2, regions: [{ name: 'data', size: regionBytes }] });
  const config = loadConfig(files.configPath);
  const layouts = config.regions.map((r) => new RegionLayout(config, r));
  config.hosts.forEach((h, i) => fillSegment(files.segments[i]!, planSegment(layouts, h.name).needed));
  const nodes: RunningNode[] = [];
  const own: number[] = [];
  const cores: number[] = [];
  const remote: number[] = [];
  const c: number[] = [];
  const rtt: number[] = [];
  let seqNs = 0;
  let slowNs = 0;
  let streamRate = 0;
  let ceilingUs = 0;
  const peer = await plainPeer();
  try {
    for (const n of files.nodes) nodes.push(await startNode(files.configPath, n.id, n.socketDir, n.logPath, n.id === 2 ? ['--readahead', '0'] : []));
    await waitForLinks(files.nodes.map((n) => n.socketDir));
    const [n1, n2] = files.nodes as [(typeof files.nodes)[0], (typeof files.nodes)[0]];
    // Each round takes the Naplus figures and their baselines side by side: this machine's
    // wake-up latency swings several-fold with load, and only neighbours see the same machine.
    for (let r = 0; r < rounds; r++) {
      log(`dsm: read faults and their baselines, round ${r + 1}/${rounds}`);
      // Fresh pages every round: quarter q starts at page q * quarterPages.
      own.push(scan(n1.socketDir, r * faultPages, faultPages, 'random') / faultPages / 1000);
      cores.push(scan(n1.socketDir, quarterPages + r * faultPages, faultPages, 'random') / faultPages / 1000);
      remote.push(scan(n1.socketDir, 2 * quarterPages + r * faultPages, faultPages, 'random') / faultPages / 1000);
      c.push(await cHandlerMicrosPerFault(faultPages, 2));
      rtt.push(await peer.rtt(faultPages));
    }
    log(`dsm: sequential scan of ${(scanPages * PAGE) / MiB} MiB homed on the other host, readahead on, and the plain stream`);
    seqNs = scan(n1.socketDir, 3 * quarterPages, scanPages, 'seq');
    const rates: number[] = [];
    for (let i = 0; i < 3; i++) rates.push(await peer.stream(scanPages));
    streamRate = median(rates);
    ceilingUs = await cHandlerMicrosPerFault(4096, 3, 64);
    log(`dsm: sequential scan of ${(slowScanPages * PAGE) / MiB} MiB homed on the other host, readahead off`);
    slowNs = scan(n2.socketDir, 2 * quarterPages + rounds * faultPages, slowScanPages, 'seq');
  } finally {
    peer.close();
    for (const node of nodes) node.process.kill('SIGTERM');
    await Promise.all(nodes.map((n) => n.exited));
    for (const s of files.segments) fs.rmSync(s, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const cUs = median(c);
  const raw = { rttUs: median(rtt), pagesPerS: streamRate };
  const ownUs = median(own);
  const coresUs = median(cores);
  const remoteUs = median(remote);
  const seqRate = scanPages / (seqNs / 1e9);
  const slowRate = slowScanPages / (slowNs / 1e9);
  const mb = (pagesPerS: number) => `${((pagesPerS * PAGE) / MiB).toFixed(0)} MiB/s`;
  const rows: Row[] = [
    { case: 'read fault, page homed on this node', measured: `${ownUs.toFixed(1)} µs`, baseline: 'C handler fault', 'baseline value': `${cUs.toFixed(1)} µs`, ratio: ownUs / cUs },
    { case: 'read fault, page homed on the other node of this host', measured: `${coresUs.toFixed(1)} µs`, baseline: 'C handler fault', 'baseline value': `${cUs.toFixed(1)} µs`, ratio: coresUs / cUs },
    { case: 'read fault, page homed on the other host', measured: `${remoteUs.toFixed(1)} µs`, baseline: 'raw round trip + C fault', 'baseline value': `${(raw.rttUs + cUs).toFixed(1)} µs`, ratio: remoteUs / (raw.rttUs + cUs) },
    { case: 'scan of remote pages, readahead on', measured: mb(seqRate), baseline: 'plain socket stream', 'baseline value': mb(raw.pagesPerS), ratio: seqRate / raw.pagesPerS },
    { case: 'scan of remote pages, readahead off', measured: mb(slowRate), baseline: 'plain socket stream', 'baseline value': mb(raw.pagesPerS), ratio: slowRate / raw.pagesPerS },
    { case: 'scan of local pages, C handler, 64 per fault', measured: mb(1e6 / ceilingUs), baseline: 'plain socket stream', 'baseline value': mb(raw.pagesPerS), ratio: 1e6 / ceilingUs / raw.pagesPerS },
  ];
  return {
    title: 'dsm: faults and scans through a 2-host x 2-node cluster (loopback)',
    note:
      `Read faults: ${faultPages} fresh pages per scan in shuffled order, median of ${rounds} rounds, each taking the C handler and ${faultPages} raw round trips (${raw.rttUs.toFixed(1)} µs) beside it. ` +
      `Scans: ${(scanPages * PAGE) / MiB} MiB (readahead on) and ${(slowScanPages * PAGE) / MiB} MiB (off) of pages homed on the other host. ` +
      'Targets: same-host fault <= 2x the C handler; remote fault <= 1.5x (raw round trip + C fault); remote scan with readahead >= 0.6x the plain stream.',
    rows,
    figures: {
      same_node_ratio: ownUs / cUs,
      same_host_ratio: coresUs / cUs,
      remote_ratio: remoteUs / (raw.rttUs + cUs),
      remote_scan_ratio: seqRate / raw.pagesPerS,
      remote_scan_no_readahead_ratio: slowRate / raw.pagesPerS,
      same_node_us: ownUs,
      same_host_us: coresUs,
      remote_us: remoteUs,
      c_handler_us: cUs,
      c_handler_64_us_per_page: ceilingUs,
      raw_rtt_us: raw.rttUs,
    },
    discussion: [
      `A read fault on a page homed on this host costs ${ownUs.toFixed(1)} µs when this node is its home (${(ownUs / cUs).toFixed(2)}x the C handler, ${meets(ownUs / cUs, 2)}) ` +
        `and ${coresUs.toFixed(1)} µs when the other node of the host is (${(coresUs / cUs).toFixed(2)}x, ${meets(coresUs / cUs, 2)}): the data comes from the host segment either way, ` +
        'but the directory of those pages is on the other node, a loopback round trip (and two process wake-ups) away. ' +
        `A page homed on the other host costs ${remoteUs.toFixed(1)} µs, ${(remoteUs / (raw.rttUs + cUs)).toFixed(2)}x a raw socket round trip plus a C fault, ${meets(remoteUs / (raw.rttUs + cUs), 1.5)}.`,
      `A scan of remote pages runs at ${mb(seqRate)} with readahead and ${mb(slowRate)} without, against ${mb(raw.pagesPerS)} for a plain socket streaming the same bytes ` +
        `(${(seqRate / raw.pagesPerS).toFixed(2)} of it with readahead, ${meets(seqRate / raw.pagesPerS, 0.6, 'at least')}): readahead turns a fault per page into one per window. ` +
        `The last row is what the kernel path alone allows: the minimal C handler, mapping pages of a local file 64 per fault (each page a copy, a page allocation and a mapping), ` +
        `reaches ${mb(1e6 / ceilingUs)} (${(1e6 / ceilingUs / raw.pagesPerS).toFixed(2)} of the socket stream); the remote scan reaches ${(seqRate / (1e6 / ceilingUs)).toFixed(2)} of that.`,
    ],
  };
};
