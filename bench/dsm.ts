// DSM fault costs through the whole node: an app attached to a naplus-mount node reads
// pages it has never touched. Same-host rows: pages homed on the node's own host, so
// each miss is a copy from the host segment plus UFFDIO_CONTINUE, as a ratio to the
// minimal C handler of bench/fault-path; and a sequential scan with readahead against
// the same pages read in shuffled order (one fault per page).
// Remote rows need the cross-node protocol, which is not wired into the node yet.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNode, writeLocalCluster } from '../src/local-cluster.js';
import { cHandlerMicrosPerFault } from './fault-path.js';
import { median, type Bench, type Row } from './lib/report.js';

const SCAN_APP = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'lib/scan-app.js');

function scan(socketDir: string, first: number, pages: number, order: 'seq' | 'random'): number {
  const out = execFileSync(process.execPath, [SCAN_APP, socketDir, 'data', String(first), String(pages), order], { encoding: 'utf8' });
  return (JSON.parse(out.trim().split('\n').pop()!) as { ns: number }).ns;
}

export const bench: Bench = async ({ quick, log }) => {
  const pages = quick ? 512 : 4096;
  const rounds = quick ? 3 : 7;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-bench-dsm-'));
  // Every scan reads fresh pages, so the region holds 2 x rounds scans.
  const files = await writeLocalCluster({ name: `bdsm${process.pid}`, dir, hosts: 1, nodesPerHost: 1, regions: [{ name: 'data', size: 2 * rounds * pages * 4096 }] });
  const n = files.nodes[0]!;
  const node = await startNode(files.configPath, n.id, n.socketDir, n.logPath);
  const random: number[] = [];
  const seq: number[] = [];
  let c: number[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      log(`dsm: round ${r + 1}/${rounds}`);
      random.push(scan(n.socketDir, 2 * r * pages, pages, 'random') / pages / 1000);
      seq.push(scan(n.socketDir, (2 * r + 1) * pages, pages, 'seq') / pages / 1000);
    }
    c = [await cHandlerMicrosPerFault(pages, 3)];
  } finally {
    node.process.kill('SIGTERM');
    await node.exited;
    for (const s of files.segments) fs.rmSync(s, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const sameHost = median(random);
  const cUs = median(c);
  const seqUs = median(seq);
  const rows: Row[] = [
    { case: 'same-host read fault (shuffled, 1 fault/page)', 'µs/page': sameHost, baseline: 'C handler', 'baseline µs': cUs, ratio: sameHost / cUs },
    { case: 'same-host sequential scan (readahead)', 'µs/page': seqUs, baseline: 'shuffled scan', 'baseline µs': sameHost, ratio: seqUs / sameHost },
    { case: 'remote read fault / remote scan', 'µs/page': 'n/a', baseline: 'needs the cross-node protocol (not wired yet)' },
  ];
  return {
    title: 'dsm: faults through a naplus-mount node',
    note: `${pages} fresh pages per scan, median of ${rounds} scans. Same-host target: <= 2x the C handler.`,
    rows,
    figures: {
      same_host_ratio: sameHost / cUs,
      same_host_us: sameHost,
      c_handler_us: cUs,
      readahead_ratio: seqUs / sameHost,
      seq_scan_mb_per_s: 4096 / seqUs,
    },
  };
};
