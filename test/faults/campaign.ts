// One fault-injection run: the cluster (env.ts), the workload (workload.ts) running rounds
// without pause, the nemesis (nemesis.ts) injecting meanwhile, and at the end, with every
// fault healed, a last barrier round verified from every node. Returns what the checker
// found, for the report.
import { onAbort } from '../../bench/lib/cleanup.js';
import { RegionLayout } from '../../src/node/layout.js';
import { prng } from '../fixtures/transport-protocol.js';
import { Checker, type Counts, type Finding } from './checker.js';
import { FaultEnv, SLACK_MS } from './env.js';
import { KINDS, PAUSE } from './kinds.js';
import { Nemesis, type FaultNote } from './nemesis.js';
import { PAGES_PER_BLOCK, SLOTS_PER_PAGE, decodeValue, planSlots } from './slots.js';
import { Workload } from './workload.js';

export interface CampaignOptions {
  seed: number;
  faults: number;
  /** Kind names to draw from (every kind of KINDS when undefined; 'pause' only when named). */
  kinds?: string[];
  namespaces: boolean;
  appsPerNode: number;
  heartbeatMs: number;
  peerTimeoutMs: number;
  log(line: string): void;
}

export interface CampaignResult {
  options: Omit<CampaignOptions, 'log'>;
  injected: number;
  byKind: Record<string, Counts & { max_wait_ms: number } & Record<string, number>>;
  totals: Counts;
  syncWritesChecked: number;
  readsChecked: number;
  rounds: { rounds: number; synced: number; failed: number; abandoned: number; verifies: number; appsStarted: number };
  skipped: Record<string, string>;
  /** What each kind drawn from does. */
  kinds: Record<string, string>;
  /** The cluster and workload the run used, for the report. */
  shape: { hosts: number; nodesPerHost: number; regionBytes: number; pagesPerBlock: number; slotsPerPage: number; stretchMs: number; roundStretchMs: number };
  network: string;
  segmentFs: string;
  hangMs: number;
  findings: Finding[];
  notes: FaultNote[];
  startedAt: number;
  seconds: number;
  /** 1-minute load average before and after the run. */
  load: [number, number];
}

const REGION_BYTES = 4 << 20;
const HOSTS = 2;
const NODES_PER_HOST = 2;
const STRETCH_MS = 25;
const ROUND_STRETCH_MS = 100;
/** "A few heartbeats" in the promise's bound on waits. */
const HANG_HEARTBEATS = 4;

export async function runCampaign(o: CampaignOptions, loadavg: () => number): Promise<CampaignResult> {
  const started = Date.now();
  const load0 = loadavg();
  const rng = prng(o.seed);
  const env = await FaultEnv.create({
    hosts: HOSTS, nodesPerHost: NODES_PER_HOST, regionBytes: REGION_BYTES, heartbeatMs: o.heartbeatMs, peerTimeoutMs: o.peerTimeoutMs, namespaces: o.namespaces, log: o.log,
  });
  const forget = onAbort(() => env.abort());
  try {
    const skipped: Record<string, string> = {};
    const kinds = [];
    for (const k of [...KINDS, PAUSE].filter((k) => (o.kinds ? o.kinds.includes(k.name) : k !== PAUSE))) {
      const why = await k.unavailable(env);
      if (why) skipped[k.name] = why;
      else kinds.push(k);
    }
    if (kinds.length === 0) throw new Error(`no fault kind can run here: ${JSON.stringify(skipped)}`);
    const positions = o.appsPerNode * env.nodeIds.length;
    const plan = planSlots(new RegionLayout(env.config, env.config.regions[0]!), positions);
    const nonce = Math.floor(rng() * 2 ** 31);
    const hangMs = o.peerTimeoutMs + HANG_HEARTBEATS * o.heartbeatMs + SLACK_MS;
    const checker = new Checker(hangMs, (slot) => plan.slots[slot]!.position, (slot, v) => decodeValue(nonce, slot, v));
    for (const k of kinds) checker.row(k.name);
    const workload = new Workload({
      env, checker, plan, nonce, positions, stretchMs: STRETCH_MS, roundStretchMs: ROUND_STRETCH_MS, hangMs, rng, log: o.log,
    });
    workload.start();
    if (!(await workload.staffed(30_000))) throw new Error('the workload apps did not all attach within 30 s');

    let injecting = true;
    const rounds = (async () => {
      while (injecting) if (!(await workload.runRound())) await new Promise((r) => setTimeout(r, 50));
    })();
    const nemesis = new Nemesis({ env, checker, kinds, faults: o.faults, rng, overlap: 0.3, gapMs: [200, 800], startedAt: started, log: o.log });
    const progress = setInterval(() => {
      const t = checker.totals();
      o.log(`${Math.round((Date.now() - started) / 1000)} s: ${nemesis.injected}/${o.faults} faults, ${workload.roundsRun} rounds, ` +
        `${checker.syncWritesChecked} synchronized writes checked; lost ${t.lost}, silent ${t.silent}, hangs ${t.hangs}`);
    }, 10_000);
    try {
      await nemesis.run();
    } finally {
      injecting = false;
      clearInterval(progress);
      await rounds;
    }

    // Everything healed: every node must be back, every position staffed, and every
    // synchronized write readable from every node.
    if (!(await env.whole())) checker.hang(Date.now(), Date.now(), 'the cluster was not whole again at the end of the run');
    if (!(await workload.staffed(30_000))) o.log('final check: not every writer position has an app again after 30 s');
    await workload.runRound('barrier');
    await workload.runRound('barrier');
    await workload.close();

    const byKind: CampaignResult['byKind'] = {};
    for (const [kind, c] of checker.byKind) {
      byKind[kind] = { ...c, max_wait_ms: workload.maxWaitMs.get(kind) ?? 0, ...(nemesis.tallies.get(kind) ?? {}) };
    }
    return {
      options: { seed: o.seed, faults: o.faults, kinds: o.kinds, namespaces: o.namespaces, appsPerNode: o.appsPerNode, heartbeatMs: o.heartbeatMs, peerTimeoutMs: o.peerTimeoutMs },
      injected: nemesis.injected,
      byKind,
      totals: checker.totals(),
      syncWritesChecked: checker.syncWritesChecked,
      readsChecked: checker.readsChecked,
      rounds: workload.stats,
      skipped,
      kinds: Object.fromEntries(kinds.map((k) => [k.name, k.description])),
      shape: {
        hosts: HOSTS, nodesPerHost: NODES_PER_HOST, regionBytes: REGION_BYTES, pagesPerBlock: PAGES_PER_BLOCK, slotsPerPage: SLOTS_PER_PAGE, stretchMs: STRETCH_MS, roundStretchMs: ROUND_STRETCH_MS,
      },
      network: env.network ? `${HOSTS} network namespaces joined by veth links through a bridge, tbf 1 Gbit/s` : `loopback (${env.networkUnavailable})`,
      segmentFs: env.disk ? `a tmpfs of its own at ${env.disk.dir}, sized for the segments plus 4 MiB` : `/dev/shm (${env.diskUnavailable})`,
      hangMs,
      findings: checker.findings,
      notes: nemesis.notes,
      startedAt: started,
      seconds: (Date.now() - started) / 1000,
      load: [load0, loadavg()],
    };
  } finally {
    await env.close();
    forget();
  }
}
