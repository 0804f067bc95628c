// What the application benchmark's figures mean, in sentences written from them, so
// that the explanation in docs/BENCHMARKS.md always matches the tables above it.
import os from 'node:os';
import { meets } from '../lib/report.js';
import { KERNEL_NAMES, type Section, type SuiteOptions } from './suite.js';
import type { Consistency } from '../../src/config.js';

/** Naplus / MP at most this for every kernel (the target of issue 14). */
export const TARGET = 1.5;

const f2 = (x: number) => x.toFixed(2);
const f1 = (x: number) => x.toFixed(1);

function verdict(kernel: string, fig: Record<string, number>): string {
  const ratio = fig[`${kernel}_ratio`]!;
  return `**${kernel}**: Naplus ${f2(fig[`${kernel}_naplus_s`]!)} s, message passing ${f2(fig[`${kernel}_mp_s`]!)} s, ratio ${f2(ratio)}, ${meets(ratio, TARGET)}.`;
}

/** Where the time goes, from the data each version moved. */
function mechanism(kernel: string, opts: SuiteOptions, fig: Record<string, number>): string {
  const diffs = fig[`${kernel}_naplus_diffs`] ?? 0;
  const moved = `In the parallel phase the nodes served ${fig[`${kernel}_naplus_faults`]} page faults, ${fig[`${kernel}_naplus_remote_faults`]} of them from another host, ` +
    `and sent each other ${f2(fig[`${kernel}_naplus_wire_mib`]!)} MiB of pages` +
    (diffs > 0 ? `; ${diffs} diffs (${f2(fig[`${kernel}_naplus_diff_mib`]!)} MiB of words and whole pages) went into master copies at synchronizations, from ${fig[`${kernel}_naplus_twins`]} twins` : '') +
    `; message passing sent ${f1(fig[`${kernel}_mp_mib`]!)} MiB in ${fig[`${kernel}_mp_messages`]} messages, copied on both ends.`;
  const slower = fig[`${kernel}_ratio`]! > TARGET
    ? ' Naplus moves its data page by page: each fault waits for the node, and a fault on a page homed on another node for a round trip over TCP to its home (and owner); ' +
      `the nodes doing this share the ${os.cpus().length} CPU(s) with the workers. Message passing moves whole blocks in a few large writes.`
    : '';
  if (kernel === 'jacobi') {
    const sweeps = opts.sizes.jacobi.iterations;
    const [n, m] = [fig.jacobi_naplus_s! * 1000 / sweeps, fig.jacobi_mp_s! * 1000 / sweeps];
    return `A sweep took ${f2(n)} ms with Naplus and ${f2(m)} ms with message passing; Naplus served ${f1(fig.jacobi_naplus_faults! / sweeps)} faults per sweep, ` +
      `${f1(fig.jacobi_naplus_remote_faults! / sweeps)} of them from another host. ` +
      'Each Naplus sweep ends in one barrier served by the barrier\'s home node (arrivals and releases cross unix sockets, and links when the home is elsewhere), ' +
      'which is a durability point: every row a worker wrote that sweep is in its page\'s master copy before the barrier returns ' +
      (diffs > 0 ? '(as diffs: put in place by the writer when the page is homed on its host, sent to the home otherwise); after it the neighbours\' edge rows, which notices made stale, are fetched again; ' : '(written back whole); and workers read their neighbours\' edge rows where they are, which moves those pages between nodes every sweep; ') +
      'each message-passing sweep sends the edge rows to the neighbours while the change is reduced through rank 0. ' + moved + slower;
  }
  const what = kernel === 'matmul' ? 'read A and B where they are and write their rows of C in place' : 'sort their blocks in place and merge the buckets straight out of the other blocks';
  return `Naplus workers ${what}. ${moved}${slower}`;
}

function shapedLinks(opts: SuiteOptions, link: Map<string, Section> | string, fig: Record<string, number>): string[] {
  if (typeof link === 'string') return [`The rate-shaped runs were skipped: ${link}.`];
  if (opts.shape.hosts === 1) return ['With one host no byte crossed the shaped link: the rate-shaped rows show that the path works, not what the link or LZ4 cost.'];
  return [...link.keys()].map((rate) => `At ${rate}: ${KERNEL_NAMES.map((k) => {
    const gain = fig[`${k}_${rate}_raw_ratio`]! / fig[`${k}_${rate}_lz4_ratio`]!;
    return `${k}: message passing took ${f2(fig[`${k}_${rate}_mp_s`]! / fig[`${k}_mp_s`]!)}x its loopback time; ` +
      `LZ4 took Naplus's page bytes on links from ${f2(fig[`${k}_${rate}_raw_wire_mib`]!)} to ${f2(fig[`${k}_${rate}_lz4_wire_mib`]!)} MiB and made it ` +
      `${gain >= 1 ? `${f2(gain)}x faster` : `${f2(1 / gain)}x slower`} (ratio ${f2(fig[`${k}_${rate}_lz4_ratio`]!)} with LZ4, ${f2(fig[`${k}_${rate}_raw_ratio`]!)} without)`;
  }).join('; ')}.`);
}

/**
 * The discussion of one consistency's runs, from the figures (each mode's are named as
 * figureKey says: read here through a view that names them plainly).
 */
export function discuss(opts: SuiteOptions, mode: Consistency, link: Map<string, Section> | string, figures: Record<string, number>): string[] {
  const own = `_${mode}_`;
  const fig = mode === opts.modes[0]
    ? figures
    : { ...figures, ...Object.fromEntries(Object.entries(figures).filter(([k]) => k.includes(own)).map(([k, v]) => [k.replace(own, '_'), v])) };
  const { shape, workers } = opts;
  const out: string[] = [`With ${mode} consistency:`];
  const cpus = os.cpus().length;
  if (shape.hosts * shape.nodesPerHost === 1) {
    out.push(
      `All ${workers} workers attached to one node, so no page moved between nodes: these figures compare Naplus page faults and node-served barriers ` +
        'with copying the same data through loopback TCP, and they flatter Naplus. Run with --hosts 2 or more for what crossing nodes and hosts costs.',
    );
  }
  for (const kernel of KERNEL_NAMES) out.push(`${verdict(kernel, fig)} ${mechanism(kernel, opts, fig)}`);
  const slower = KERNEL_NAMES.filter((k) => fig[`${k}_mp_speedup`]! < 1 || fig[`${k}_naplus_speedup`]! < 1);
  out.push(
    `Speedups are bounded by the machine: ${workers} workers and the nodes share ${cpus} CPU(s), so no version can get more than ${cpus}x here, ` +
      `and other work on the machine (1-minute load average ${f2(os.loadavg()[0]!)} as this benchmark ended) takes CPUs away from the workers and delays every synchronisation step.` +
      (slower.length ? ` ${slower.join(', ')}: slower with ${workers} workers than with one in at least one version; the more often a kernel synchronises (Jacobi: every sweep), the more it loses to waiting for CPUs.` : ''),
  );
  out.push(...shapedLinks(opts, link, fig));
  return out;
}
