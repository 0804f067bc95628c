// The measurements of the application benchmark. Each case is a kernel run by one
// version with some number of workers; each trial runs every case of a group once, in
// turn, so that drift in the machine's load hits the versions alike. Every run's
// result is checked against the sequential result: a wrong one fails the benchmark.
import type { HostNetwork } from '../../src/netns.js';
import type { CompressMode } from '../../src/transport/index.js';
import type { Consistency } from '../../src/config.js';
import { blocksSpan, regionBytesFor } from './blocks.js';
import { PAGE_SIZE, startCluster, type BenchCluster, type Shape } from './cluster.js';
import { KERNELS, kernelFor, type KernelName, type KernelParams } from './index.js';
import { digest } from './kernels.js';
import { runCase, type CaseResult, type Slot } from './launch.js';

export type Sizes = KernelParams;

export interface SuiteOptions {
  shape: Shape;
  /** The consistencies Naplus runs with, side by side (the first one's figures are named plainly, see report.ts). */
  modes: Consistency[];
  workers: number;
  trials: number;
  sizes: Sizes;
  /** Longest one case may take. */
  timeoutMs: number;
  log(line: string): void;
}

/** One run: rank 0's time, and what the workers moved in the parallel phase. */
export type Run = Omit<CaseResult, 'digest'>;

export const KERNEL_NAMES = Object.keys(KERNELS) as KernelName[];

/** Per kernel, every case's runs by case key. */
export type Section = Map<KernelName, Map<string, Run[]>>;

/** Case keys: Naplus with `workers` workers on loopback, and one compression over a shaped link. */
export const naplusKey = (mode: Consistency, workers: number): string => `naplus-${mode}-${workers}`;
export const shapedKey = (mode: Consistency, compression: 'lz4' | 'raw'): string => `${compression}-${mode}`;

/** Worker w's node (workers spread evenly over the nodes) and that node's host. */
function placement(shape: Shape, workers: number): Array<{ node: number; host: number }> {
  const nodes = shape.hosts * shape.nodesPerHost;
  return Array.from({ length: workers }, (_, w) => {
    const node = Math.floor((w * nodes) / workers);
    return { node, host: Math.floor(node / shape.nodesPerHost) };
  });
}

/** The sequential results, each computed once per benchmark run. */
export class References {
  private digests = new Map<KernelName, string>();
  verifiedRuns = new Map<KernelName, number>();

  constructor(private readonly sizes: Sizes) {}

  check(kernel: KernelName, what: string, got: string): void {
    let want = this.digests.get(kernel);
    if (want === undefined) {
      want = digest(kernelFor(kernel).sequential(this.sizes[kernel]));
      this.digests.set(kernel, want);
    }
    if (got !== want) {
      throw new Error(`apps: WRONG RESULT: ${kernel} (${what}) computed a result whose SHA-256 is ${got}; the sequential result's is ${want}`);
    }
    this.verifiedRuns.set(kernel, (this.verifiedRuns.get(kernel) ?? 0) + 1);
  }
}

/** A Naplus cluster, its hosts' network if they are in namespaces, and how many runs it has had. */
export interface NaplusSide {
  cluster: BenchCluster;
  network?: HostNetwork;
  runs: number;
}

/** Heap bytes one run of `kernel` with `workers` workers needs. */
function runSpan(sizes: Sizes, kernel: KernelName, workers: number): number {
  return blocksSpan(kernelFor(kernel).blocks(sizes[kernel], workers, PAGE_SIZE), PAGE_SIZE);
}

/** Starts a cluster with room for `runs`. */
export async function naplusSide(
  opts: SuiteOptions, consistency: Consistency, runs: Array<{ kernel: KernelName; workers: number }>, network?: HostNetwork, compress?: CompressMode,
): Promise<NaplusSide> {
  const regionBytes = regionBytesFor(runs.reduce((s, r) => s + runSpan(opts.sizes, r.kernel, r.workers), 0), PAGE_SIZE);
  return { cluster: await startCluster({ shape: opts.shape, regionBytes, consistency, compress, network }), network, runs: 0 };
}

/** Where each worker runs; Naplus workers attach through the node `socketDirs` names. */
function slots(opts: SuiteOptions, workers: number, network?: HostNetwork, socketDirs?: string[]): Slot[] {
  return placement(opts.shape, workers).map(({ node, host }, w, all) => ({
    socketDir: socketDirs?.[node],
    netns: network?.namespaces[host],
    address: network?.addresses[host] ?? '127.0.0.1',
    countsNode: w === 0 || all[w - 1]!.node !== node,
  }));
}

/** One run of `kernel` by Naplus on `side`, checked. */
export async function naplusRun(opts: SuiteOptions, refs: References, side: NaplusSide, kernel: KernelName, workers: number, what: string): Promise<Run> {
  const { digest: got, ...run } = await runCase({ kernel, version: 'naplus', params: opts.sizes[kernel], run: side.runs++ }, slots(opts, workers, side.network, side.cluster.socketDirs), opts.timeoutMs);
  refs.check(kernel, what, got);
  return run;
}

/** One run of `kernel` by message passing, checked. */
export async function mpRun(opts: SuiteOptions, refs: References, kernel: KernelName, workers: number, what: string, network?: HostNetwork): Promise<Run> {
  const { digest: got, ...run } = await runCase({ kernel, version: 'mp', params: opts.sizes[kernel], run: 0 }, slots(opts, workers, network), opts.timeoutMs);
  refs.check(kernel, what, got);
  return run;
}

/** Runs each case once per trial, in turn; returns every case's runs by key. */
export async function trials(opts: SuiteOptions, label: string, cases: Array<{ key: string; run(): Promise<Run> }>): Promise<Map<string, Run[]>> {
  const out = new Map<string, Run[]>(cases.map((c) => [c.key, []]));
  for (let t = 0; t < opts.trials; t++) {
    opts.log(`apps: ${label}, trial ${t + 1}/${opts.trials}`);
    for (const c of cases) out.get(c.key)!.push(await c.run());
  }
  return out;
}
