// What a fault-injection run says: one JSON line for machines, a table for people, and
// docs/RELIABILITY.md (with --write-docs), all from the same result.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { distro, git, markdownTable } from '../../bench/lib/docs.js';
import type { Row } from '../../bench/lib/report.js';
import type { CampaignResult } from './campaign.js';
import type { Counts } from './checker.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const DOCS_FILE = path.join(ROOT, 'docs', 'RELIABILITY.md');

/** Findings that fail a run, beyond the three the promise names first. */
const FAILING: Array<keyof Counts> = ['lost', 'silent', 'hangs', 'disturbed', 'lost_unsynced', 'crashes'];

export function failed(r: CampaignResult): boolean {
  return FAILING.some((k) => r.totals[k] > 0);
}

export function replayCommand(r: CampaignResult): string {
  const o = r.options;
  return `npm run test:faults -- --seed ${o.seed} --faults ${o.faults}${o.kinds ? ` --kinds ${o.kinds.join(',')}` : ''}${o.namespaces ? '' : ' --loopback'}`;
}

/** The --json line: the figures the issue names first, then the rest. */
export function summary(r: CampaignResult): Record<string, unknown> {
  const { lost, silent, hangs, disturbed, lost_unsynced, crashes } = r.totals;
  return {
    injected: r.injected,
    by_kind: r.byKind,
    sync_writes_checked: r.syncWritesChecked,
    lost, silent, hangs, disturbed, lost_unsynced, crashes,
    reads_checked: r.readsChecked,
    rounds: r.rounds.rounds,
    seed: r.options.seed,
    duration_s: Math.round(r.seconds),
    network: r.network.startsWith('loopback') ? 'loopback' : 'namespaces',
    skipped: r.skipped,
    ...(failed(r) ? { replay: replayCommand(r) } : {}),
  };
}

const COLUMNS: Array<[keyof Counts | 'max_wait_ms', string]> = [
  ['injected', 'injected'], ['lost', 'lost'], ['silent', 'silent'], ['hangs', 'hangs'],
  ['told', 'apps told'], ['disturbed', 'disturbed'], ['lost_unsynced', 'lost unsynced'], ['crashes', 'node crashes'], ['max_wait_ms', 'longest wait ms'],
];

export function rows(r: CampaignResult): Row[] {
  const out: Row[] = Object.entries(r.byKind).map(([kind, c]) => {
    const row: Row = { kind };
    for (const [k, label] of COLUMNS) row[label] = c[k];
    const extra = Object.entries(c).filter(([k]) => !COLUMNS.some(([c]) => c === k) && !(k in r.totals));
    for (const [k, v] of extra) row[k.replace(/_/g, ' ')] = v;
    return row;
  });
  const total: Row = { kind: 'all' };
  for (const [k, label] of COLUMNS) total[label] = k === 'max_wait_ms' ? Math.max(0, ...Object.values(r.byKind).map((c) => c.max_wait_ms)) : r.totals[k];
  return [...out, total];
}

const at = (r: CampaignResult, t: number) => `at ${((t - r.startedAt) / 1000).toFixed(1)} s`;

/** The first `max` findings in time order. */
export function findingLines(r: CampaignResult, max: number): string[] {
  return r.findings.slice(0, max).map((f) => `${f.what} (${f.kind}), ${at(r, f.t)}: ${f.detail}`);
}

/** One line per kind of finding and fault kind: how many, and the first of them. */
export function findingExamples(r: CampaignResult): string[] {
  const groups = new Map<string, { n: number; first: CampaignResult['findings'][number] }>();
  for (const f of r.findings) {
    const key = `${f.what} (${f.kind})`;
    const g = groups.get(key);
    if (g) g.n++;
    else groups.set(key, { n: 1, first: f });
  }
  const order = (key: string) => FAILING.findIndex((w) => key.startsWith(`${w} `));
  return [...groups].sort((a, b) => order(a[0]) - order(b[0]) || a[1].first.t - b[1].first.t)
    .map(([key, g]) => `${key}: ${g.n}; the first, ${at(r, g.first.t)}: ${g.first.detail}`);
}

const MEANINGS = [
  '**injected**: faults of that kind injected.',
  '**lost**: synchronized writes (the writer\'s `barrier()` or lock release had returned) that a later read from a node that had not failed found missing: an older value, zero, another writer\'s value, or garbage. Each lost write counts once, however many readers saw it.',
  '**silent**: apps whose node was killed or stopped and that went on (began a stretch of loads and stores, read the region, or had a sync call return) after the deadline without having been told (their process dying, e.g. of SIGBUS, or an API call rejecting). Deadline: 500 ms after a SIGKILL; after a SIGSTOP, `peerTimeoutMs` + 2 heartbeats + 500 ms (when peers forget the stopped node\'s copies), or 500 ms after SIGCONT if that comes first.',
  '**hangs**: a sync call or a single load/store that waited longer than the bound (below) from the moment it could complete, minus the time its own node was stopped by the nemesis (each app times its own accesses and reports the longest of every step; a wait is counted from the last fault that began during it, since each failure may hold an access up for the bound; a step that reports nothing for three bounds is stuck and counts too); also a cluster that was not whole again 20 s after a fault was healed.',
  '**apps told**: apps that died or had an API call rejected under that kind (expected under most kinds; for information).',
  '**disturbed**: apps told while the only faults under way promise none (a reset connection), or no fault at all.',
  '**lost unsynced**: an app read back something other than its own last store (synchronized or not) while its node was alive: such writes may be lost only with the node that made them.',
  '**node crashes**: nodes that exited without being killed; the suite restarts them.',
  '**longest wait ms**: the longest sync call or load/store stall seen, measured as for hangs.',
  '**sockets killed** (reset): TCP sockets `ss -K` destroyed; one per reset when the link was up.',
  'A finding is blamed on the latest-started fault whose window (injection to the cluster being whole again, plus the hang bound) overlaps the span in which it arose, or on `none`.',
];

export function writeDocs(r: CampaignResult, argv: string[]): string {
  const cpus = os.cpus();
  const commit = git(['rev-parse', '--short=12', 'HEAD']) || 'unknown';
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) !== '';
  const o = r.options;
  const sh = r.shape;
  const lines = [
    '# Reliability',
    '',
    `Generated by \`npm run test:faults -- ${argv.join(' ')}\` on ${new Date().toISOString().slice(0, 10)} from commit ${commit}${dirty ? ' (with uncommitted changes)' : ''}, ` +
      `in ${Math.round(r.seconds)} s. Do not edit this file: rerun that command. Replay this run's choices with \`${replayCommand(r)}\`.`,
    '',
    `**Result: ${failed(r) ? 'the promise was broken' : 'the promise held'}.** ${r.injected} faults injected; ${r.syncWritesChecked} synchronized writes checked ` +
      `(${r.readsChecked} reads); lost ${r.totals.lost}, silent ${r.totals.silent}, hangs ${r.totals.hangs}, disturbed ${r.totals.disturbed}, ` +
      `lost unsynced ${r.totals.lost_unsynced}, node crashes ${r.totals.crashes}.`,
    '',
    '## Machine',
    '',
    `- CPU: ${cpus.length} x ${cpus[0]?.model.trim() ?? 'unknown'}`,
    `- Kernel: Linux ${os.release()} (${distro()}); Node.js ${process.version}`,
    `- Load average (1 min): ${r.load[0].toFixed(2)} before the run (other work sharing the CPUs), ${r.load[1].toFixed(2)} after it (its own processes included)`,
    '',
    '## Method',
    '',
    `A local cluster of ${sh.hosts} hosts x ${sh.nodesPerHost} nodes (real \`naplus-mount\` processes), hosts in ${r.network}; segments on ${r.segmentFs}; ` +
      `region \`data\` of ${sh.regionBytes >> 20} MiB, placement \`block\`; \`heartbeatMs\` ${o.heartbeatMs}, \`peerTimeoutMs\` ${o.peerTimeoutMs}.`,
    '',
    `Workload: ${o.appsPerNode} app(s) per node, each a writer owning ${sh.pagesPerBlock * sh.slotsPerPage} slots (64-bit, stored and loaded with Atomics) on ${sh.pagesPerBlock} pages homed on each node ` +
      `(every writer x every home), plus a scratch counter on each of those pages. Rounds: every app stores in its slots a value naming its writer, the round and the slot, ` +
      `does ${sh.roundStretchMs} ms of plain loads and stores, then synchronizes: \`barrier()\` across the round's roster, or a lock taken and released (drawn per round). ` +
      'A write is synchronized when that call has returned; the controller keeps the ledger. After each round every app whose node has not failed reads every slot of every ' +
      'writer, which must hold its writer\'s latest synchronized value or a later value of the same writer. Between commands apps run stretches of ' +
      `${sh.stretchMs} ms of plain loads and stores (no API call), reading back their own slots and counters and storing the counters again, and report each. ` +
      'Apps that were told or died are replaced by fresh ones once their node is up. At the end, with every fault healed, two barrier rounds are verified from every node.',
    '',
    `Faults (seed ${o.seed}), one at a time or, as the seed decides (30%), overlapping a fault of another resource (at most one node or link faulty at once; the disk may fill meanwhile), ` +
      '200-800 ms apart, every kind once first:',
    '',
    ...Object.entries(r.kinds).map(([k, what]) => `- \`${k}\`: ${what};`),
    '',
    `Hang bound: \`peerTimeoutMs\` + 4 heartbeats + 500 ms of scheduling slack = ${r.hangMs} ms.`,
    '',
    ...(Object.keys(r.skipped).length ? ['Skipped kinds:', '', ...Object.entries(r.skipped).map(([k, why]) => `- \`${k}\`: ${why}`), ''] : []),
    '## Results by fault kind',
    '',
    markdownTable(rows(r)),
    '',
    `Rounds: ${r.rounds.rounds} (${r.rounds.synced} syncs returned, ${r.rounds.failed} rejected, ${r.rounds.abandoned} abandoned because a party of the round was lost); ` +
      `${r.rounds.verifies} verifications; ${r.rounds.appsStarted} apps started in all.`,
    '',
    '### What the columns mean',
    '',
    ...MEANINGS.map((m) => `- ${m}`),
    '',
    ...(r.findings.length ? ['## Findings', '', `${r.findings.length} in all (a lost write or silent app counts once; lost unsynced counts each word), by kind, with the first of each:`, '', ...findingExamples(r).map((l) => `- ${l}`), ''] : []),
  ];
  fs.writeFileSync(DOCS_FILE, `${lines.join('\n')}\n`);
  return DOCS_FILE;
}
