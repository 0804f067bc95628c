// What `naplus vm up` says when it cannot finish: a guest that does not boot in time
// (its console's last lines, and nothing left behind afterwards), a cluster name
// already up.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { vmLeftovers } from '../../src/vm/cluster.js';
import { vm } from './helpers/guest-cluster.js';

const NAPLUS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../cli/naplus.js');
const naplus = (args: string[]) => spawnSync(process.execPath, [NAPLUS, 'vm', ...args], { encoding: 'utf8' });

test('a guest that does not boot in time: the error shows its console, and nothing is left behind', () => {
  const name = `late${process.pid}`;
  const r = naplus(['up', '--name', name, '--hosts', '1', '--guests-per-host', '1', '--boot-timeout', '1']);
  assert.is(r.status, 1);
  assert.match(r.stderr, /^naplus: Guest\(s\) g1 did not come up within 1\.0 s \(.*\)\.\nConsole of g1 \(.*g1\.console\.log\), last lines:\n {4}\S/);
  assert.equal(vmLeftovers(name), [], 'no process, network namespace, segment file or folder left');
});

test('a cluster name that is up already is refused, and the running cluster is untouched', () => {
  const state = vm();
  const r = naplus(['up', '--name', state.name]);
  assert.equal([r.status, r.stderr.trim()], [1, `naplus: Virtual cluster '${state.name}' is already up; stop it with \`naplus vm down --name ${state.name}\``]);
  assert.is(naplus(['status', '--name', state.name]).stdout.match(/running \(pid/g)?.length, state.guests.length);
});

test.run();
