// One worker process of the application benchmark, either version:
//   node worker.js '<WorkerSpec as JSON>'      (forked with an IPC channel)
// Naplus workers attach to region 'data' through NAPLUS_SOCKET_DIR; message-passing
// workers announce their address over IPC and get everyone's back. Rank 0 reports the
// parallel phase's time and a digest of the result; every rank reports what it sent.
import { attach, type Region } from '../../src/index.js';
import { runBlocks } from './blocks.js';
import { kernelFor, type KernelName, type KernelParams } from './index.js';
import { digest } from './kernels.js';
import { Mesh } from './mesh.js';
import { clock, type Version } from './team.js';

export interface WorkerSpec {
  kernel: KernelName;
  version: Version;
  params: KernelParams[KernelName];
  rank: number;
  workers: number;
  /** Naplus: the run's number, which names its blocks and barriers apart from other runs'. */
  run: number;
  /** Message passing: the address to listen on. */
  host: string;
  /** Naplus: this worker reports its node's counters (one worker per node does). */
  countsNode: boolean;
}

/** What a worker tells the benchmark when it is done. */
export interface WorkerReport {
  ms: number;
  /** Rank 0 only: SHA-256 of the result. */
  digest?: string;
  /** Message passing: what this worker sent. */
  bytesSent: number;
  messagesSent: number;
  /** Naplus, a worker that counts its node: the node's faults during the parallel phase. */
  faults: number;
  remoteFaults: number;
  /** Page bytes the node sent over its links in that phase: as sent (LZ4 or not), and raw. */
  wireBytes: number;
  rawBytes: number;
  /** Release consistency: twins the node made, diffs it sent home and their bytes, in that phase. */
  twins: number;
  diffs: number;
  diffBytes: number;
}

type Counters = Pick<WorkerReport, 'faults' | 'remoteFaults' | 'wireBytes' | 'rawBytes' | 'twins' | 'diffs' | 'diffBytes'>;

/**
 * The node's counters. region.stats() reports the region alone; the node's links are
 * in the same reply (their page bytes as sent show what LZ4 saved).
 */
async function nodeCounters(region: Region): Promise<Counters> {
  const s = await region.attached.call<{
    regions: Record<string, { faults: number; servedFromRemote: number; coherence: { twins?: number; diffs?: number; diffBytes?: number } }>;
    peers: Record<string, { pageBytesWire: number; pageBytesRaw: number }>;
  }>('stats');
  const peers = Object.values(s.peers);
  const r = s.regions[region.name]!;
  return {
    faults: r.faults,
    remoteFaults: r.servedFromRemote,
    wireBytes: peers.reduce((sum, p) => sum + p.pageBytesWire, 0),
    rawBytes: peers.reduce((sum, p) => sum + p.pageBytesRaw, 0),
    twins: r.coherence.twins ?? 0,
    diffs: r.coherence.diffs ?? 0,
    diffBytes: r.coherence.diffBytes ?? 0,
  };
}

/** Parent to worker: every worker's address, by rank. */
export interface Addresses {
  addresses: string[];
}

const spec = JSON.parse(process.argv[2]!) as WorkerSpec;
const kernel = kernelFor(spec.kernel);
const tell = (m: unknown) => new Promise<void>((resolve, reject) => process.send!(m, (err: Error | null) => (err ? reject(err) : resolve())));
let report: WorkerReport;

if (spec.version === 'naplus') {
  const region = await attach('data');
  const barrier = (name: string) => region.barrier(`apps.${spec.run}.${name}`, spec.workers);
  const counted = async () => (spec.countsNode ? nodeCounters(region) : undefined);
  let before: Counters | undefined;
  // Counted after this worker's setup, before the start: the parallel phase alone.
  const c = clock(async () => {
    before = await counted();
    await barrier('begin');
  });
  const blocks = await runBlocks(region, spec.run, spec.rank, kernel.blocks(spec.params, spec.workers, region.pageSize), () => barrier('blocks'));
  const result = await kernel.naplus({ rank: spec.rank, workers: spec.workers, region, blocks, barrier, ...c }, spec.params);
  // Every worker is past the last barrier; hashing the result below faults no more into it.
  const after = await counted();
  const delta = (k: keyof Counters) => (before && after ? after[k] - before[k] : 0);
  report = {
    ms: c.ms(),
    digest: result && digest(result),
    bytesSent: 0,
    messagesSent: 0,
    faults: delta('faults'),
    remoteFaults: delta('remoteFaults'),
    wireBytes: delta('wireBytes'),
    rawBytes: delta('rawBytes'),
    twins: delta('twins'),
    diffs: delta('diffs'),
    diffBytes: delta('diffBytes'),
  };
  await region.detach();
} else {
  const mesh = await Mesh.join({
    rank: spec.rank,
    size: spec.workers,
    host: spec.host,
    exchange: async (address) => {
      const reply = new Promise<Addresses>((resolve) => process.once('message', resolve));
      await tell({ address });
      return (await reply).addresses;
    },
  });
  const c = clock(() => mesh.barrier());
  const result = await kernel.mp({ rank: spec.rank, workers: spec.workers, mesh, ...c }, spec.params);
  report = {
    ms: c.ms(), digest: result && digest(result), bytesSent: mesh.bytesSent, messagesSent: mesh.messagesSent,
    faults: 0, remoteFaults: 0, wireBytes: 0, rawBytes: 0, twins: 0, diffs: 0, diffBytes: 0,
  };
  await mesh.close();
}
await tell({ report });
process.disconnect();
