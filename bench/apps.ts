// The application benchmark: three algorithms written twice, once on Naplus shared
// memory and once as explicit message passing over TCP (node `net`) between the same
// number of processes, with the arithmetic shared (bench/apps/kernels.ts), so the two
// differ only in how data moves. Parallel matrix multiply, Jacobi relaxation with a
// barrier per sweep, and a sample sort; `workers` workers spread over the simulated
// hosts. Reported: time of the parallel phase, speedup over one worker, Naplus/MP.
// Then the same with each host in a network namespace behind a rate-shaped link
// (1 and 10 Gbit/s), Naplus with LZ4 ('always') and without ('never'). Naplus runs with
// sequential and with release consistency, side by side (`--consistency` picks one).
import { makeHostNetwork, namespacesUnavailable, type HostNetwork } from '../src/netns.js';
import { onAbort } from './lib/cleanup.js';
import type { Bench } from './lib/report.js';
import { report } from './apps/report.js';
import {
  KERNEL_NAMES, References, mpRun, naplusKey, naplusRun, naplusSide, shapedKey, trials,
  type NaplusSide, type Section, type Sizes, type SuiteOptions,
} from './apps/suite.js';
import type { Consistency } from '../src/config.js';

const WORKERS = 4;
const RATES = ['1gbit', '10gbit'];

// Sized so that each case runs a few seconds at most on 2 x 2 nodes of a 2-CPU machine.
const FULL: Sizes = { matmul: { n: 1024 }, jacobi: { n: 1024, iterations: 200, tolerance: 1e-9 }, sort: { n: 1 << 21 } };
const QUICK: Sizes = { matmul: { n: 128 }, jacobi: { n: 128, iterations: 30, tolerance: 1e-9 }, sort: { n: 1 << 15 } };

const repeat = <T>(times: number, item: T): T[] => Array.from({ length: times }, () => item);

/** Loopback: each kernel by MP and by Naplus in each consistency, with `workers` workers and with one. */
async function loopback(opts: SuiteOptions, refs: References): Promise<Section> {
  const counts = [opts.workers, 1];
  const needs = KERNEL_NAMES.flatMap((kernel) => counts.flatMap((workers) => repeat(opts.trials, { kernel, workers })));
  const sides: NaplusSide[] = [];
  const runs: Section = new Map();
  try {
    for (const mode of opts.modes) sides.push(await naplusSide(opts, mode, needs));
    for (const kernel of KERNEL_NAMES) {
      runs.set(kernel, await trials(opts, `${kernel} on loopback`, counts.flatMap((workers) => [
        ...opts.modes.map((mode, i) => ({ key: naplusKey(mode, workers), run: () => naplusRun(opts, refs, sides[i]!, kernel, workers, `Naplus (${mode}), ${workers} workers`) })),
        { key: `mp${workers}`, run: () => mpRun(opts, refs, kernel, workers, `message passing, ${workers} workers`) },
      ])));
    }
  } finally {
    for (const side of sides) await side.cluster.close();
  }
  return runs;
}

/**
 * One link rate: MP, Naplus with LZ4 and Naplus without, in turn. Each gets a host
 * network of its own, all alike: a cluster's nodes listen on fixed ports of their
 * host's address, so two clusters cannot share one.
 */
async function shapedLink(opts: SuiteOptions, refs: References, rate: string): Promise<Section> {
  const needs = KERNEL_NAMES.flatMap((kernel) => repeat(opts.trials, { kernel, workers: opts.workers }));
  const made: Array<{ network: HostNetwork; forget(): void }> = [];
  const sides: NaplusSide[] = [];
  const network = (tag: string) => {
    const n = makeHostNetwork(`nbapps${process.pid}${tag}`, opts.shape.hosts, { rate });
    made.push({ network: n, forget: onAbort(n.destroy) });
    return n;
  };
  const runs: Section = new Map();
  try {
    const mp = network('m');
    const cases: Array<{ key: string; side: NaplusSide; what: string }> = [];
    for (const mode of opts.modes) {
      for (const [tag, compress] of [['l', 'always'], ['r', 'never']] as const) {
        const side = await naplusSide(opts, mode, needs, network(`${mode[0]}${tag}`), compress);
        sides.push(side);
        cases.push({ key: shapedKey(mode, compress === 'always' ? 'lz4' : 'raw'), side, what: `Naplus (${mode}) ${compress === 'always' ? 'LZ4' : 'raw'}, ${rate}` });
      }
    }
    for (const kernel of KERNEL_NAMES) {
      runs.set(kernel, await trials(opts, `${kernel} over ${rate}`, [
        { key: 'mp', run: () => mpRun(opts, refs, kernel, opts.workers, `message passing, ${rate}`, mp) },
        ...cases.map((c) => ({ key: c.key, run: () => naplusRun(opts, refs, c.side, kernel, opts.workers, c.what) })),
      ]));
    }
  } finally {
    for (const side of sides) await side.cluster.close();
    for (const { network: n, forget } of made) {
      n.destroy();
      forget();
    }
  }
  return runs;
}

async function namespaces(opts: SuiteOptions, refs: References): Promise<Map<string, Section> | string> {
  const why = namespacesUnavailable();
  if (why) return why;
  const out = new Map<string, Section>();
  for (const rate of RATES) out.set(rate, await shapedLink(opts, refs, rate));
  return out;
}

export const bench: Bench = async ({ quick, shape, consistency, log }) => {
  const modes: Consistency[] = consistency ? [consistency] : ['sequential', 'release'];
  const opts: SuiteOptions = { shape, modes, workers: WORKERS, trials: quick ? 1 : 3, sizes: quick ? QUICK : FULL, timeoutMs: quick ? 60_000 : 300_000, log };
  const refs = new References(opts.sizes);
  const local = await loopback(opts, refs);
  const link = await namespaces(opts, refs);
  return report(opts, refs, local, link);
};
