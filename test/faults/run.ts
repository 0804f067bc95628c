// npm run test:faults [-- --seed S --faults N --kinds kill,stop,... --json --write-docs --loopback]
// The fault-injection suite (see campaign.ts): progress on stderr; a table (or with
// --json one JSON object as the last line) on stdout; exit status 1 when anything was
// lost, silent or hung (or an app disturbed, an unsynchronized write lost, a node
// crashed), with the seed and the command that replays the run.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { formatTable } from '../../bench/lib/report.js';
import { runCampaign } from './campaign.js';
import { KINDS, PAUSE } from './kinds.js';
import { failed, findingExamples, findingLines, replayCommand, rows, summary, writeDocs } from './report.js';

const NAMES = [...KINDS, PAUSE].map((k) => k.name);
const USAGE = `Usage: npm run test:faults -- [--seed S] [--faults N] [--kinds ${KINDS.map((k) => k.name).join(',')}  ('pause': a control injecting nothing)]
       [--apps-per-node N] [--loopback] [--json] [--write-docs] [--findings N (also print the first N findings)]`;

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`Expected a positive integer for --${name} but received '${value}'\n${USAGE}`);
  return n;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const { values } = parseArgs({
    args: argv,
    options: {
      seed: { type: 'string' },
      faults: { type: 'string' },
      kinds: { type: 'string' },
      'apps-per-node': { type: 'string' },
      findings: { type: 'string' },
      loopback: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'write-docs': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const kinds = values.kinds?.split(',').map((k) => k.trim()).filter(Boolean);
  const unknown = kinds?.filter((k) => !NAMES.includes(k));
  if (unknown?.length) throw new Error(`Unknown fault kind(s) ${unknown.join(', ')}: expected some of ${NAMES.join(', ')}`);
  const seed = values.seed === undefined ? Date.now() % 1_000_000 : positiveInt('seed', values.seed, 1);
  const log = (line: string) => process.stderr.write(`[faults] ${line}\n`);
  log(`seed ${seed}`);
  const result = await runCampaign({
    seed,
    faults: positiveInt('faults', values.faults, 200),
    kinds,
    namespaces: !values.loopback,
    appsPerNode: positiveInt('apps-per-node', values['apps-per-node'], 1),
    heartbeatMs: 300,
    peerTimeoutMs: 1500,
    log,
  }, () => os.loadavg()[0]!);
  const bad = failed(result);
  if (values['write-docs']) log(`wrote ${writeDocs(result, argv)}`);
  if (bad) {
    for (const line of findingExamples(result)) log(line);
    if (values.findings !== undefined) for (const line of findingLines(result, positiveInt('findings', values.findings, 1))) log(line);
    log(`FAILED with seed ${seed}; replay: ${replayCommand(result)}`);
  }
  if (values.json) {
    console.log(JSON.stringify(summary(result)));
  } else {
    console.log(`\nFault injection, seed ${seed}: ${result.injected} faults in ${Math.round(result.seconds)} s, ${result.syncWritesChecked} synchronized writes checked\n`);
    console.log(formatTable(rows(result)));
    for (const [k, why] of Object.entries(result.skipped)) console.log(`skipped ${k}: ${why}`);
  }
  return bad ? 1 : 0;
}

main().then((code) => process.exit(code), (err) => {
  console.error(`[faults] ${(err as Error).message}`);
  process.exit(2);
});
