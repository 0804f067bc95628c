// The test command's runner: every `*.test.js` under dist/test runs in its own process
// (see helpers/run-files.ts), two at a time on this 2-core machine. It ends with the
// plain `N passed, N failed` line CI reads, and exits non-zero on any failure. The
// tests in real guests (test/vm, `*.vmtest.js`) have a runner of their own: npm run test:vm.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTests, onStop, report, runFile, summary, type Outcome } from './helpers/run-files.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
// With --coverage every test process writes V8 coverage, and c8 reports it before our
// closing line (so that `N passed, N failed` stays the last line CI reads).
const coverage = process.argv.includes('--coverage');
const coverageTmp = path.join(root, 'coverage', 'tmp');
const FILE_TIMEOUT_MS = 5 * 60_000;
const CONCURRENCY = Number(process.env.NAPLUS_TEST_JOBS ?? 2);

onStop();

async function main(): Promise<void> {
  const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  if (coverage) fs.rmSync(coverageTmp, { recursive: true, force: true });
  let files = findTests(here, '.test.js');
  if (only.length > 0) files = files.filter((f) => only.some((o) => f.includes(o)));
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const o = await runFile(files[next++]!, coverage ? { NODE_V8_COVERAGE: coverageTmp } : {}, FILE_TIMEOUT_MS);
      outcomes.push(o);
      report(o, here);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, files.length) }, worker));
  if (coverage) {
    spawnSync(path.join(root, 'node_modules/.bin/c8'), ['report', '--temp-directory', coverageTmp, '--reporter=text-summary', '--reporter=html', '--exclude=dist/test/**'], { stdio: 'inherit', cwd: root });
  }
  const { line, failed } = summary(outcomes);
  console.log(line);
  process.exitCode = failed > 0 || files.length === 0 ? 1 : 0;
}

await main();
