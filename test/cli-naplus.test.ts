// The naplus command as a user drives it: local cluster up/status/env/stats/restart/down
// with their exit codes and --json shapes, the demo, and bad input.
import { test } from 'uvu';
import { XMLValidator } from 'fast-xml-parser';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, privateRuntimeDir, run } from './helpers/cli.js';

const env = { XDG_RUNTIME_DIR: privateRuntimeDir(), NAPLUS_SOCKET_DIR: '' };
const naplus = (...args: string[]) => run('naplus', args, env);
const name = `cli${process.pid}`;
const json = (s: string) => JSON.parse(s);

test('every command says its version', () => {
  const { version } = JSON.parse(fs.readFileSync(path.join(BIN('naplus'), '../../../package.json'), 'utf8'));
  for (const cmd of ['naplus', 'naplus-mount', 'naplus-fault-trace']) {
    const r = run(cmd, ['--version']);
    assert.is(r.code, 0, `${cmd}: ${r.err}`);
    assert.is(r.out.trim(), version, cmd);
  }
});

test('cluster up, status, env, stats, restart and down, with exit codes and JSON', async () => {
  const up = naplus('cluster', 'up', '--name', name, '--size', '8M', '--placement', 'first-touch');
  assert.is(up.code, 0, up.err);
  assert.match(up.out, /node 1 on h1 up \(pid \d+\)/);
  try {
    assert.match(naplus('cluster', 'up', '--name', name).err, /already up; stop it with `npx naplus cluster down --name/);
    const status = naplus('cluster', 'status', '--name', name);
    assert.is(status.code, 0, status.err);
    assert.match(status.out, /1\s+h1\s+\d+\s+running\s+0\s+0\s+0/);
    const s = json(naplus('cluster', 'status', '--name', name, '--json').out);
    assert.is(s.running, true);
    assert.equal(s.nodes.map((n: any) => [n.id, n.state]), [[1, 'running'], [2, 'running'], [3, 'running'], [4, 'running']]);
    const socketDir = s.nodes[1].socketDir;
    assert.is(naplus('cluster', 'env', '2', '--name', name).out, `NAPLUS_SOCKET_DIR=${socketDir}\n`);
    assert.match(naplus('cluster', 'env', '9', '--name', name).err, /has no node 9; its nodes are 1, 2, 3, 4/);

    const stats = naplus('stats', '--name', name);
    assert.is(stats.code, 0, stats.err);
    assert.match(stats.out, /node\s+host\s+region\s+apps\s+faults\s+cache\s+segment\s+remote\s+upgrades\s+readahead/);
    const st = json(naplus('stats', '--name', name, '--json').out);
    assert.is(st.nodes.length, 4);
    assert.match(stats.out, /consistency\s+twins\/diffs \(KiB\)\n/, 'the region\'s consistency, and release consistency\'s counters');
    assert.match(stats.out, /sequential\s+-\n/);
    assert.equal(Object.keys(st.nodes[0].regions.data).sort(), ['apps', 'bySource', 'cacheLimitPages', 'consistency', 'evictions', 'faults', 'readahead', 'residentPages', 'upgrades', 'wireBytes', 'writebacks']);
    // NAPLUS_SOCKET_DIR names the node, as it does for apps.
    const one = json(run('naplus', ['stats', '--json'], { ...env, NAPLUS_SOCKET_DIR: socketDir }).out);
    assert.equal(one.nodes.map((n: any) => n.node), [2]);

    // A node killed: status says so, with its columns, and exits 3; up starts it again.
    process.kill(s.nodes[2].pid, 'SIGKILL');
    let down;
    for (;;) {
      down = naplus('cluster', 'status', '--name', name);
      if (/3\s+h2\s+-\s+stopped/.test(down.out)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.is(down.code, 3);
    assert.match(down.out, /node\s+host\s+pid\s+state\s+apps\s+faults\s+resident pages\s+socket dir/);
    assert.match(down.out, /1 of 4 node\(s\) not running/);
    assert.is(json(naplus('cluster', 'status', '--name', name, '--json').out).running, false);
    const again = naplus('cluster', 'up', '--name', name);
    assert.is(again.code, 0, again.err);
    assert.match(again.out, /starting its stopped node\(s\) 3/);

    // A node restarted by hand (another pid) counts as running, and down stops it too.
    const n4 = json(naplus('cluster', 'status', '--name', name, '--json').out).nodes[3];
    process.kill(n4.pid, 'SIGTERM');
    while (json(naplus('cluster', 'status', '--name', name, '--json').out).nodes[3].state !== 'stopped') await new Promise((r) => setTimeout(r, 50));
    const manual = spawn(process.execPath, [BIN('naplus-mount'), '--cluster', s.configPath, '--node', '4', '--socket-dir', n4.socketDir], { stdio: 'ignore', detached: true });
    manual.unref();
    let byHand;
    for (;;) {
      byHand = json(naplus('cluster', 'status', '--name', name, '--json').out).nodes[3];
      if (byHand.state === 'running') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.is(byHand.pid, manual.pid);

    const restart = naplus('cluster', 'restart', '1', '--name', name);
    assert.is(restart.code, 0, restart.err);
    assert.match(restart.out, /node 1 stopped\n {2}node 1 on h1 up \(pid \d+\)/);
  } finally {
    const d = naplus('cluster', 'down', '--name', name);
    assert.is(d.code, 0, d.err);
    assert.match(d.out, /node 4 stopped/, d.out + d.err);
    assert.match(d.out, /Node logs kept in (\S+)\/node<id>\.log/);
    const dir = /Node logs kept in (\S+)\/node<id>\.log/.exec(d.out)![1]!;
    assert.equal(fs.readdirSync(dir).sort(), ['node1.log', 'node2.log', 'node3.log', 'node4.log'], 'only the logs stay');
    assert.match(fs.readFileSync(path.join(dir, 'node4.log'), 'utf8'), /SIGTERM received, stopping/);
  }
  const gone = naplus('cluster', 'status', '--name', name);
  assert.is(gone.code, 1);
  assert.match(gone.err, /No local cluster '.*' is up; start one with `npx naplus cluster up --name/);
  assert.equal(fs.readdirSync('/dev/shm').filter((f) => f.startsWith(`naplus-${name}-`)), [], 'the segments are removed');
});

test('stats with no node: a clear error, a hint, and exit 1; --watch into a pipe sends no escape codes', async () => {
  const none = naplus('stats');
  assert.is(none.code, 1);
  assert.is(none.out, '');
  assert.match(none.err, /^naplus: No Naplus node answers at \/run\/naplus \(from the default socket directory\); start a local cluster with `npx naplus cluster up`/);
  const there = run('naplus', ['stats'], { ...env, NAPLUS_SOCKET_DIR: '/nonexistent/dir' });
  assert.is(there.code, 1);
  assert.match(there.err, /No Naplus node answers at \/nonexistent\/dir \(from NAPLUS_SOCKET_DIR\)/);
  const asJson = naplus('stats', '--node', '/nonexistent/sock', '--json');
  assert.is(asJson.code, 1);
  assert.equal(json(asJson.out).nodes.map((n: any) => n.error.code), ['ENOTCONN']);

  const watch = spawn(process.execPath, [BIN('naplus'), 'stats', '--node', '/nonexistent/sock', '--watch', '0.1'], { env: { ...process.env, ...env } });
  let out = '';
  watch.stdout.on('data', (d) => (out += d));
  while ((out.match(/\n\n/g) ?? []).length < 2) await new Promise((r) => setTimeout(r, 20));
  watch.kill();
  assert.not.match(out, /\x1b/);
  assert.match(out, /^\d{4}-\d\d-\d\dT.*Z\nnaplus: No Naplus node answers at \/nonexistent\/sock/);
});

test('bad input is one line in the API\'s words, naming the flag, and exit 1', () => {
  const cases: Array<[string[], RegExp]> = [
    [['cluster', 'up', '--hosts', 'two'], /^naplus: Expected an integer from 1 to 64 for --hosts but received 'two' of type string\n$/],
    [['cluster', 'up', '--cache', '5x'], /^naplus: Expected a positive size such as 4096, 64M or 2G for --cache but received '5x' of type string\n$/],
    [['cluster', 'up', '--name', '../x'], /^naplus: Expected a name of letters, digits.* for --name but received '..\/x' of type string\n$/],
    [['cluster', 'up', '--placement', 'random'], /Allowed choices are block, interleave, first-touch/],
    [['demo', '--n', '3'], /^naplus: Expected an integer from 4 to 4096 for --n but received '3' of type string\n$/],
    [['stats', '--watch', 'x', '--node', '/x'], /^naplus: Expected a positive number of seconds for --watch but received 'x'/],
  ];
  for (const [args, message] of cases) {
    const r = naplus(...args);
    assert.is(r.code, 1, args.join(' '));
    assert.match(r.err, message);
  }
  const mount = run('naplus-mount', ['--cluster', '/x.json', '--node', '1', '--cache', '12Q']);
  assert.is(mount.code, 1);
  assert.match(mount.err, /Expected a positive size such as 4096, 64M or 2G for --cache but received '12Q'/);
  assert.not.match(mount.err, /Cluster file/);
});

test('the demo multiplies matrices on 2 hosts x 2 nodes, checks the result and reports what it cost', () => {
  const svg = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-demo-test-')), 'faults.svg');
  const r = naplus('demo', '--n', '96', '--svg', svg);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /Starting 4 nodes on 2 simulated hosts/);
  assert.match(r.out, /all 4 nodes linked to each other/);
  // Not a terminal: no progress line, a summary instead.
  assert.not.match(r.out, /progress|\r/);
  assert.match(r.out, /4 workers finished their rows in [\d.]+ s/);
  assert.match(r.out, /Result check: PASSED: C = A x B matches a single-process multiply \(0 of 9216 entries differ\)/);
  assert.match(r.out, /node\s+host\s+faults\s+cache\s+segment\s+remote\s+upgrades\s+readahead/);
  const rows = [1, 2, 3, 4].map((id) => new RegExp(`^${id}\\s+h${id < 3 ? 1 : 2}\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`, 'm').exec(r.out)!.slice(1).map(Number));
  for (const [faults, cache, segment, remote] of rows) assert.is(cache! + segment! + remote!, faults, 'the sources add up to the faults');
  // Nodes 3 and 4 are on the other host from the matrices' pages: they fetched some over the links.
  assert.ok(rows[2]![3]! > 0 && rows[3]![3]! > 0, 'nodes of the other host served faults from remote');
  assert.match(r.out, /Links carried \d+ KiB in all \(page data \d+ KiB raw, \d+ KiB on the wire: [\d.]+x smaller/);
  assert.match(r.out, /Fault trace: \d+ faults recorded/);
  assert.match(r.out, new RegExp(`Heatmap of the faults over time, by page and source: ${svg}`));
  const drawn = fs.readFileSync(svg, 'utf8');
  assert.is(XMLValidator.validate(drawn), true, 'the heatmap is well-formed XML');
  fs.rmSync(path.dirname(svg), { recursive: true });
});

test.run();
