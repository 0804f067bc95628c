// The application benchmark's results as tables, figures and the method text for
// docs/BENCHMARKS.md, all from the runs' records.
import { median, type BenchResult, type Row } from '../lib/report.js';
import { TARGET, discuss } from './discussion.js';
import type { KernelName } from './index.js';
import { KERNEL_NAMES, naplusKey, shapedKey, type References, type Run, type Section, type Sizes, type SuiteOptions } from './suite.js';
import type { Consistency } from '../../src/config.js';

function problem(kernel: KernelName, sizes: Sizes): string {
  if (kernel === 'matmul') return `n=${sizes.matmul.n} float64`;
  if (kernel === 'jacobi') return `${sizes.jacobi.n}x${sizes.jacobi.n}, ${sizes.jacobi.iterations} sweeps`;
  return `${sizes.sort.n} float64 keys`;
}

const ms = (runs: Run[]) => median(runs.map((r) => r.ms));
const secs = (runs: Run[]): string => {
  const t = runs.map((r) => r.ms / 1000);
  return t.length === 1 ? t[0]!.toFixed(2) : `${median(t).toFixed(2)} (${Math.min(...t).toFixed(2)}-${Math.max(...t).toFixed(2)})`;
};
const mib = (bytes: number) => bytes / 2 ** 20;
/** The last run's data movement (the same in every trial but for timing). */
const last = (runs: Run[]): Run => runs[runs.length - 1]!;

function method(opts: SuiteOptions): string[] {
  const { sizes, workers } = opts;
  return [
    `Three algorithms, each written twice over the same compute functions (bench/apps/kernels.ts), so that the versions differ only in how data moves. ` +
      `**Naplus**: ${workers} worker processes attach to region 'data' through their node, share input and output through it and synchronise with region.barrier. ` +
      `**MP** (message passing): the same number of processes, one TCP connection (node \`net\`) per pair, sending exactly the data the algorithm needs; ` +
      `collective steps (start barrier, max-reduction) go through rank 0, as Naplus barriers go through a node.`,
    `The input is deterministic and is at rank 0 before the clock starts (Naplus: written into the region by rank 0; MP: in rank 0's memory). ` +
      `Rank 0's clock runs from a common start barrier until the result is available: in the region after a final barrier (Naplus), or gathered at rank 0 (MP). ` +
      `Naplus runs keep their arrays in named blocks of the region's heap: rank 0 allocates them (malloc) before the start, the others look them up. ` +
      `Blocks are never freed, so no run gets memory another used or finds its pages cached; the region's pages are homed interleaved (page i on node i mod nodes), ` +
      `so every run sees the same spread of homes. Worker w runs on node floor(w x nodes / workers) and on that node's host.`,
    `- **matmul** (${problem('matmul', sizes)}): rows of C in blocks. Naplus workers read A and B in the region and write their rows of C there; ` +
      `MP rank 0 sends each worker its rows of A and all of B, and gathers C.`,
    `- **jacobi** (${problem('jacobi', sizes)}, 5-point relaxation, fixed boundary): interior rows in blocks; after each sweep a max-reduction of the change decides whether to go on. ` +
      `Naplus: two grids in the region, neighbours' edge rows read where they are, one barrier per sweep. ` +
      `MP: rank 0 scatters the blocks, workers send their edge rows to their neighbours while the change is reduced through rank 0, rank 0 gathers the grid.`,
    `- **sort** (${problem('sort', sizes)}, sample sort by regular sampling): each worker sorts a block, all agree on splitters from regular samples, worker j merges bucket j of every block. ` +
      `Naplus: blocks sorted in place in the region, samples and bucket bounds published in pages of each worker's own, buckets merged straight into the output array. ` +
      `MP: scatter, samples gathered and splitters broadcast by rank 0, an all-to-all exchange of buckets, gather.`,
    `Every run's result is hashed (SHA-256) at rank 0 and compared with the result of a sequential run of the same functions; a mismatch fails the benchmark. ` +
      `Speedup is each version's 1-worker time over its ${workers}-worker time.`,
  ];
}

/** Figure names of `mode`: the first mode's plain (`matmul_ratio`), the others' with the mode (`matmul_release_ratio`). */
export function figureKey(opts: SuiteOptions, mode: Consistency): (kernel: string, name: string) => string {
  return (kernel, name) => (mode === opts.modes[0] ? `${kernel}_${name}` : `${kernel}_${mode}_${name}`);
}

export function report(opts: SuiteOptions, refs: References, local: Section, link: Map<string, Section> | string): BenchResult {
  const { shape, workers } = opts;
  const figures: Record<string, number> = { hosts: shape.hosts, nodes_per_host: shape.nodesPerHost, workers, trials: opts.trials };
  const rows: Row[] = [];
  const moved: Row[] = [];
  for (const kernel of KERNEL_NAMES) {
    const r = local.get(kernel)!;
    const [m4, m1] = [ms(r.get(`mp${workers}`)!), ms(r.get('mp1')!)];
    const mr = last(r.get(`mp${workers}`)!);
    Object.assign(figures, {
      [`${kernel}_mp_s`]: m4 / 1000,
      [`${kernel}_mp_1w_s`]: m1 / 1000,
      [`${kernel}_mp_speedup`]: m1 / m4,
      [`${kernel}_mp_mib`]: mib(mr.bytesSent),
      [`${kernel}_mp_messages`]: mr.messagesSent,
      [`${kernel}_verified_runs`]: refs.verifiedRuns.get(kernel) ?? 0,
    });
    for (const mode of opts.modes) {
      const key = figureKey(opts, mode);
      const [n4, n1] = [ms(r.get(naplusKey(mode, workers))!), ms(r.get(naplusKey(mode, 1))!)];
      const ratio = n4 / m4;
      rows.push({
        kernel,
        consistency: mode,
        problem: problem(kernel, opts.sizes),
        'Naplus s': secs(r.get(naplusKey(mode, workers))!),
        'MP s': secs(r.get(`mp${workers}`)!),
        'Naplus/MP': ratio,
        'Naplus speedup': n1 / n4,
        'MP speedup': m1 / m4,
        target: ratio <= TARGET ? `met (<= ${TARGET})` : `MISSED (> ${TARGET})`,
      });
      const nr = last(r.get(naplusKey(mode, workers))!);
      moved.push({
        kernel,
        consistency: mode,
        'Naplus faults': nr.faults,
        'from another host': nr.remoteFaults,
        'page MiB on links': mib(nr.wireBytes),
        twins: nr.twins,
        diffs: nr.diffs,
        'diff MiB': mib(nr.diffBytes),
        'MP messages': mr.messagesSent,
        'MP MiB sent': mib(mr.bytesSent),
      });
      Object.assign(figures, {
        [key(kernel, 'naplus_s')]: n4 / 1000,
        [key(kernel, 'ratio')]: ratio,
        [key(kernel, 'naplus_1w_s')]: n1 / 1000,
        [key(kernel, '1w_ratio')]: n1 / m1,
        [key(kernel, 'naplus_speedup')]: n1 / n4,
        [key(kernel, 'naplus_faults')]: nr.faults,
        [key(kernel, 'naplus_remote_faults')]: nr.remoteFaults,
        [key(kernel, 'naplus_wire_mib')]: mib(nr.wireBytes),
        [key(kernel, 'naplus_twins')]: nr.twins,
        [key(kernel, 'naplus_diffs')]: nr.diffs,
        [key(kernel, 'naplus_diff_mib')]: mib(nr.diffBytes),
      });
    }
  }
  const where = `${shape.hosts} host(s) x ${shape.nodesPerHost} node(s), ${workers} workers`;
  const tables = [{
    title: `apps: data moved in the parallel phase of one run with ${workers} workers`,
    note: "Naplus: page faults the nodes served, how many of them from another host, and the page bytes the nodes sent each other over links, as sent (LZ4 or not; the links' default compress 'auto'); " +
      'with release consistency also the twins made (first writes to a page after a release), the diffs sent to pages\' master copies and their bytes (words, or whole pages). MP: frames and payload bytes all workers sent.',
    rows: moved,
  }];
  if (typeof link === 'string') {
    tables.push({ title: 'apps over rate-shaped links', note: `Skipped: ${link}.`, rows: [] });
  } else {
    const linkRows: Row[] = [];
    for (const [rate, section] of link) {
      for (const kernel of KERNEL_NAMES) {
        const r = section.get(kernel)!;
        const m = ms(r.get('mp')!);
        figures[`${kernel}_${rate}_mp_s`] = m / 1000;
        for (const mode of opts.modes) {
          const key = figureKey(opts, mode);
          const [lz4Runs, rawRuns] = [r.get(shapedKey(mode, 'lz4'))!, r.get(shapedKey(mode, 'raw'))!];
          const [lz4, raw] = [ms(lz4Runs), ms(rawRuns)];
          linkRows.push({
            rate,
            kernel,
            consistency: mode,
            'MP s': secs(r.get('mp')!),
            'Naplus LZ4 s': secs(lz4Runs),
            'Naplus raw s': secs(rawRuns),
            'LZ4 ratio': lz4 / m,
            'raw ratio': raw / m,
            'page MiB LZ4/raw': `${mib(last(lz4Runs).wireBytes).toFixed(2)}/${mib(last(rawRuns).wireBytes).toFixed(2)}`,
          });
          Object.assign(figures, {
            [key(kernel, `${rate}_lz4_ratio`)]: lz4 / m,
            [key(kernel, `${rate}_raw_ratio`)]: raw / m,
            [key(kernel, `${rate}_lz4_wire_mib`)]: mib(last(lz4Runs).wireBytes),
            [key(kernel, `${rate}_raw_wire_mib`)]: mib(last(rawRuns).wireBytes),
          });
        }
      }
    }
    tables.push({
      title: `apps over rate-shaped links (${where}, each host in a network namespace)`,
      note:
        `Hosts in network namespaces joined by a bridge, each host's egress shaped by tc tbf to the rate; nodes and MP workers of a host run in its namespace. ` +
        `LZ4 ratio: Naplus with compress 'always' / MP; raw ratio: compress 'never' / MP (MP sends raw bytes). Median of ${opts.trials}.` +
        (shape.hosts === 1 ? ' With 1 host nothing crosses the shaped link, so these rows only prove the path (run with --hosts 2 or more).' : ''),
      rows: linkRows,
    });
  }
  return {
    title: `apps: Naplus vs message passing (${where}, loopback)`,
    note:
      `Time of the parallel phase (from a common start barrier to the result in the region, or gathered at rank 0), median of ${opts.trials} (min-max); ` +
      `speedup: 1-worker time / ${workers}-worker time of the same version; Naplus/MP at ${workers} workers, with each consistency the region can run (${opts.modes.join(', ')}). ` +
      'Every run\'s result is checked against a sequential run.',
    method: method(opts),
    rows,
    tables,
    discussion: opts.modes.flatMap((mode) => discuss(opts, mode, link, figures)),
    figures,
  };
}
