// A bounded, seeded slice of the fault-injection suite (`npm run test:faults`, see
// test/faults/) inside npm test: the same runner with 12 faults, every kind this
// machine allows at least once, and the promise asserted as it stands in the README:
// nothing synchronized lost, no app silent, nothing hung (nor an app disturbed by a
// reset, an unsynchronized write lost under a live node, a node crashed). First a control
// run injecting nothing, which must find nothing: the suite itself does not cry wolf.
// NAPLUS_FAULTS_SEED picks another seed for the slice.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const RUN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'faults', 'run.js');
const SEED = process.env.NAPLUS_FAULTS_SEED ?? '11';
const KINDS = ['kill', 'stop', 'reset', 'linkdown', 'diskfull'];
const RUN_TIMEOUT_MS = 150_000;

interface Outcome {
  status: number | null;
  summary: Record<string, any>;
  stderr: string;
}

function suite(args: string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUN, '--json', '--findings', '10', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGINT'), RUN_TIMEOUT_MS);
    child.on('close', (status) => {
      clearTimeout(timer);
      const last = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve({ status, summary: JSON.parse(last), stderr });
      } catch {
        reject(new Error(`the suite printed no JSON line (exit ${status}):\n${stderr.slice(-3000)}`));
      }
    });
  });
}

const FINDINGS = ['lost', 'silent', 'hangs', 'disturbed', 'lost_unsynced', 'crashes'] as const;
const nothingFound = Object.fromEntries(FINDINGS.map((k) => [k, 0]));
const found = (s: Record<string, any>) => Object.fromEntries(FINDINGS.map((k) => [k, s[k]]));

test('control: a run that injects nothing finds nothing', async () => {
  const { status, summary, stderr } = await suite(['--kinds', 'pause', '--faults', '3', '--seed', '5']);
  assert.equal(found(summary), nothingFound, stderr.slice(-3000));
  assert.ok(summary.sync_writes_checked > 500, `synchronized writes were checked (${summary.sync_writes_checked})`);
  assert.is(status, 0);
});

test(`seed ${SEED}: 12 faults, every kind at least once: nothing synchronized lost, no app silent, nothing hung`, async () => {
  const { status, summary, stderr } = await suite(['--faults', '12', '--seed', SEED]);
  for (const [kind, why] of Object.entries(summary.skipped as Record<string, string>)) console.log(`SKIP: fault kind ${kind}: ${why}`);
  for (const kind of KINDS) {
    if (summary.skipped[kind]) continue;
    assert.ok(summary.by_kind[kind]?.injected >= 1, `${kind} was injected (${JSON.stringify(summary.by_kind[kind])})`);
  }
  assert.is(summary.injected, 12);
  assert.ok(summary.sync_writes_checked > 0);
  assert.equal(found(summary), nothingFound, `by kind: ${JSON.stringify(summary.by_kind)}\n${stderr.slice(-4000)}`);
  assert.is(status, 0);
});

test.run();
