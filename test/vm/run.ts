// `npm run test:vm`: Naplus in real QEMU guests. Boots one virtual cluster of 2 hosts x
// 2 guests (`naplus vm up` without its nodes: each test starts its own), runs every
// `*.vmtest.js` here one after the other against it (each in its own process, told the
// cluster's name through NAPLUS_VM_NAME), takes the cluster down, checks that nothing
// of it is left, and ends with the plain `N passed, N failed` line (non-zero exit on a
// failure). Needs root and QEMU: without them it says why and fails.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { agentRequest } from '../../src/vm/agent-client.js';
import { vmDestroy, vmDown, vmLeftovers, vmUp } from '../../src/vm/cluster.js';
import { agentAddress, readVmState } from '../../src/vm/state.js';
import { findTests, onStop, report, runFile, summary, type Outcome } from '../helpers/run-files.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FILE_TIMEOUT_MS = 5 * 60_000;
const name = `test${process.pid}`;
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;

onStop(() => vmDestroy(name));

async function main(): Promise<void> {
  const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  let files = findTests(here, '.vmtest.js');
  if (only.length > 0) files = files.filter((f) => only.some((o) => f.includes(o)));
  const outcomes: Outcome[] = [];
  try {
    await vmUp({
      name, hosts: 2, guestsPerHost: 2, memoryMiB: 1024, regionBytes: 64 << 20, accel: 'auto', bootTimeoutMs: 300_000,
      startNodes: false, keep: false, say: (line) => console.log(line),
    });
    console.log(`Virtual cluster '${name}' up after ${elapsed()}; running ${files.length} test file(s) in it`);
    const state = readVmState(name);
    for (const file of files) {
      const o = await runFile(file, { NAPLUS_VM_NAME: name }, FILE_TIMEOUT_MS);
      outcomes.push(o);
      report(o, here);
      // A file killed mid-test leaves its nodes and apps running in the guests: the next starts clean.
      await Promise.all(state.guests.map((g) => agentRequest(agentAddress(state, g.name), { op: 'reset' })));
    }
  } catch (err) {
    console.log(`FAIL the virtual cluster: ${(err as Error).message}`);
    outcomes.push({ file: 'vm up', passed: 0, failed: 1, skipped: 0, output: '', ms: 0 });
  } finally {
    try {
      await vmDown({ name, say: () => undefined });
    } catch {
      vmDestroy(name); // never came up far enough for a state file: nothing to stop gently
    }
  }
  // `naplus vm down` leaves no process, network or file behind: checked after every run.
  const left = vmLeftovers(name);
  const down: Outcome = { file: 'vm down', passed: left.length ? 0 : 1, failed: left.length ? 1 : 0, skipped: 0, output: left.length ? `left behind: ${left.join(', ')}` : '', ms: 0 };
  outcomes.push(down);
  console.log(left.length ? `FAIL vm down left ${left.join(', ')}` : 'ok   vm down left no process, network namespace, segment file or folder');
  console.log(`test:vm took ${elapsed()}`);
  const { line, failed } = summary(outcomes);
  console.log(line);
  process.exitCode = failed > 0 || files.length === 0 ? 1 : 0;
}

await main();
