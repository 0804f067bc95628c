// `npm run bench` runs every benchmark; `npm run bench -- <name> [--json] [--quick]`
// runs one. Each benchmark lives in bench/<name>.ts and exports `bench: Bench`.
import { printResult, type Bench, type BenchResult } from './lib/report.js';

const ALL = ['fault-path', 'transport', 'dsm'];

async function load(name: string): Promise<Bench> {
  if (!ALL.includes(name)) {
    console.error(`Unknown benchmark '${name}'. Choose from: ${ALL.join(', ')}`);
    process.exit(2);
  }
  return ((await import(`./${name}.js`)) as { bench: Bench }).bench;
}

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const names = args.filter((a) => !a.startsWith('--'));
const results: Record<string, BenchResult> = {};
for (const name of names.length > 0 ? names : ALL) {
  const bench = await load(name);
  const result = await bench({ json, quick, log: (l) => console.error(l) });
  results[name] = result;
  printResult(result);
}
if (json) {
  const figures =
    names.length === 1
      ? results[names[0]!]!.figures
      : Object.fromEntries(Object.entries(results).flatMap(([n, r]) => Object.entries(r.figures).map(([k, v]) => [`${n}.${k}`, v])));
  console.log(JSON.stringify(figures));
}
