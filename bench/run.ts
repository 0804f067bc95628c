// `npm run bench` runs every benchmark; `npm run bench -- <name> [--json] [--quick]`
// runs one. Each benchmark lives in bench/<name>.ts and exports `bench: Bench`.
// `--hosts H --nodes-per-host N` shape the simulated cluster of those that run one
// (default 2 x 2); `--consistency sequential|release` runs their regions with that
// consistency only (default: both, side by side, where a benchmark can). `--write-docs` runs every benchmark and writes docs/BENCHMARKS.md
// from that run's results.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { writeDocs } from './lib/docs.js';
import { printResult, type Bench, type BenchResult } from './lib/report.js';
import type { Consistency } from '../src/config.js';

const ALL = ['fault-path', 'transport', 'dsm', 'apps', 'vm'];

const USAGE = `Usage: npm run bench -- [${ALL.join('|')} ...] [--json] [--quick] [--hosts H] [--nodes-per-host N] [--consistency sequential|release] [--write-docs]

Runs the named benchmarks (default: all), each printing a table of ratios against a
baseline measured in the same run.

  --json              the last line is one JSON object of the figures
  --quick             smaller runs (smoke tests)
  --hosts H           simulated hosts of the benchmarks that run a cluster (1-16, default 2)
  --nodes-per-host N  nodes per simulated host (1-16, default 2)
  --consistency C     run the regions with consistency C only (sequential or release;
                      default: both, side by side, where a benchmark can)
  --write-docs        run every benchmark and write docs/BENCHMARKS.md from this run
  -h, --help          this text`;

function usage(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

async function load(name: string): Promise<Bench> {
  if (!ALL.includes(name)) usage(`Unknown benchmark '${name}'. Choose from: ${ALL.join(', ')}`);
  return ((await import(`./${name}.js`)) as { bench: Bench }).bench;
}

function count(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 16) usage(`${flag} must be an integer from 1 to 16, got '${value}'`);
  return n;
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h', default: false },
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      'write-docs': { type: 'boolean', default: false },
      hosts: { type: 'string', default: '2' },
      'nodes-per-host': { type: 'string', default: '2' },
      consistency: { type: 'string' },
    },
  });
} catch (err) {
  usage((err as Error).message);
}
const { values, positionals: names } = parsed;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const writing = values['write-docs'];
if (writing && names.length > 0) usage('--write-docs runs every benchmark; name none');
const shape = { hosts: count(values.hosts, '--hosts'), nodesPerHost: count(values['nodes-per-host'], '--nodes-per-host') };
const consistency = values.consistency as Consistency | undefined;
if (consistency !== undefined && !['sequential', 'release'].includes(consistency)) usage(`--consistency must be sequential or release, got '${consistency}'`);
const results: Record<string, BenchResult> = {};
const seconds: Record<string, number> = {};
const started = Date.now();
const loadBefore = os.loadavg()[0]!;
for (const name of names.length > 0 ? names : ALL) {
  const bench = await load(name);
  const t0 = Date.now();
  const result = await bench({ json: values.json, quick: values.quick, shape, consistency, log: (l) => console.error(l) });
  seconds[name] = (Date.now() - t0) / 1000;
  results[name] = result;
  printResult(result);
}
const totalSeconds = (Date.now() - started) / 1000;
console.error(`\nbench: ${Object.entries(seconds).map(([n, s]) => `${n} ${s.toFixed(0)} s`).join(', ')}; total ${totalSeconds.toFixed(0)} s`);
if (writing) {
  const file = writeDocs({ results, seconds, totalSeconds, quick: values.quick, shape, argv: process.argv.slice(2), load: [loadBefore, os.loadavg()[0]!] });
  console.error(`bench: wrote ${file}`);
}
if (values.json) {
  const figures =
    names.length === 1
      ? results[names[0]!]!.figures
      : Object.fromEntries(Object.entries(results).flatMap(([n, r]) => Object.entries(r.figures).map(([k, v]) => [`${n}.${k}`, v])));
  console.log(JSON.stringify(figures));
}
