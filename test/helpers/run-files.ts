// How the test runners run test files: each in its own process and process group (tests
// start real processes, sockets and userfaultfds; isolation keeps one crash from hiding
// the others, and whatever a file leaves behind dies with its group), with uvu's counts
// read from its output.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Outcome {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  output: string;
  ms: number;
}

/** Every file under `dir` whose name ends with `suffix`, sorted. */
export function findTests(dir: string, suffix: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return findTests(p, suffix);
    return e.name.endsWith(suffix) ? [p] : [];
  }).sort();
}

function count(output: string, label: string): number | undefined {
  const m = new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm').exec(output);
  return m ? Number(m[1]) : undefined;
}

/** Process groups of the test files running now. */
const running = new Set<number>();

/** Stopped (Ctrl-C, a CI timeout): the test files' groups go too, after `cleanup`. */
export function onStop(cleanup: () => void = () => undefined): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const pid of running) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      cleanup();
      process.exit(130);
    });
  }
}

export function runFile(file: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...env }, detached: true });
    running.add(child.pid!);
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      output += `\n[run] ${file} exceeded ${timeoutMs / 1000}s and was killed\n`;
      process.kill(-child.pid!, 'SIGKILL');
    }, timeoutMs);
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

/** One line per file, its output when it failed (or always, with NAPLUS_TEST_VERBOSE). */
export function report(o: Outcome, base: string): void {
  const status = o.failed > 0 ? 'FAIL' : 'ok  ';
  console.log(`${status} ${path.relative(base, o.file)}  (${o.passed} passed, ${o.failed} failed, ${o.skipped} skipped, ${(o.ms / 1000).toFixed(1)}s)`);
  if (o.failed > 0 || process.env.NAPLUS_TEST_VERBOSE) console.log(o.output.replace(/^/gm, '    '));
  else for (const line of o.output.split('\n')) if (line.startsWith('SKIP: ')) console.log(`    ${line}`); // why a file skipped tests
}

/** The plain closing line CI reads. */
export function summary(outcomes: Outcome[]): { line: string; failed: number } {
  const sum = (k: 'passed' | 'failed' | 'skipped') => outcomes.reduce((a, o) => a + o[k], 0);
  const skipped = sum('skipped');
  return { line: `${sum('passed')} passed, ${sum('failed')} failed${skipped ? `, ${skipped} skipped` : ''}`, failed: sum('failed') };
}
