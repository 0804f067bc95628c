// The test command's runner: every `*.test.js` under dist/test runs in its own process
// (tests start real processes, sockets and userfaultfds; isolation keeps one crash from
// hiding the others), two at a time on this 2-core machine. It ends with the plain
// `N passed, N failed` line CI reads, and exits non-zero on any failure.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
// With --coverage every test process writes V8 coverage, and c8 reports it before our
// closing line (so that `N passed, N failed` stays the last line CI reads).
const coverage = process.argv.includes('--coverage');
const coverageTmp = path.join(root, 'coverage', 'tmp');
const FILE_TIMEOUT_MS = 5 * 60_000;
const CONCURRENCY = Number(process.env.NAPLUS_TEST_JOBS ?? 2);

function findTests(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return findTests(p);
    return e.name.endsWith('.test.js') ? [p] : [];
  });
}

interface Outcome {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  output: string;
  ms: number;
}

function count(output: string, label: string): number | undefined {
  const m = new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm').exec(output);
  return m ? Number(m[1]) : undefined;
}

/** Process groups of the test files running now. */
const running = new Set<number>();

// Stopped (Ctrl-C, a CI timeout): the test files' groups go too, with the nodes they started.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const pid of running) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    process.exit(130);
  });
}

function runFile(file: string): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    // Its own process group, so that whatever a test leaves behind is killed with it.
    const child = spawn(process.execPath, [file], {
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...(coverage ? { NODE_V8_COVERAGE: coverageTmp } : {}) },
      detached: true,
    });
    running.add(child.pid!);
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      output += `\n[run] ${file} exceeded ${FILE_TIMEOUT_MS / 1000}s and was killed\n`;
      process.kill(-child.pid!, 'SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.on('exit', () => {
      running.delete(child.pid!);
      try {
        process.kill(-child.pid!, 'SIGKILL'); // leftovers would hold our pipes open
      } catch {
        // the group is already gone
      }
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const total = count(output, 'Total') ?? 0;
      const passed = count(output, 'Passed') ?? 0;
      const skipped = count(output, 'Skipped') ?? 0;
      let failed = total - passed - skipped;
      if ((code !== 0 || signal) && failed <= 0) failed = 1; // crashed outside a test
      resolve({ file, passed, failed, skipped, output, ms: Date.now() - started });
    });
  });
}

async function main(): Promise<void> {
  const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  if (coverage) fs.rmSync(coverageTmp, { recursive: true, force: true });
  let files = findTests(here).sort();
  if (only.length > 0) files = files.filter((f) => only.some((o) => f.includes(o)));
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const o = await runFile(files[next++]!);
      outcomes.push(o);
      const name = path.relative(here, o.file);
      const status = o.failed > 0 ? 'FAIL' : 'ok  ';
      console.log(`${status} ${name}  (${o.passed} passed, ${o.failed} failed, ${o.skipped} skipped, ${(o.ms / 1000).toFixed(1)}s)`);
      if (o.failed > 0 || process.env.NAPLUS_TEST_VERBOSE) console.log(o.output.replace(/^/gm, '    '));
      else for (const line of o.output.split('\n')) if (line.startsWith('SKIP: ')) console.log(`    ${line}`); // why a file skipped tests
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, files.length) }, worker));
  if (coverage) {
    spawnSync(path.join(root, 'node_modules/.bin/c8'), ['report', '--temp-directory', coverageTmp, '--reporter=text-summary', '--reporter=html', '--exclude=dist/test/**'], { stdio: 'inherit', cwd: root });
  }
  const sum = (k: 'passed' | 'failed' | 'skipped') => outcomes.reduce((a, o) => a + o[k], 0);
  const failed = sum('failed');
  const skipped = sum('skipped');
  console.log(`${sum('passed')} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exitCode = failed > 0 || files.length === 0 ? 1 : 0;
}

await main();
