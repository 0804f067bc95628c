// naplus-fault-trace record against a real node while apps fault, and report on what it
// recorded: the recording is exactly what the node itself traced (its --trace file), and
// the report's figures agree with ones recomputed here from the same file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeCluster } from './helpers/cluster.js';
import { checkHeatmap, faultTrace, nearestRank, readEvents, startRecorder } from './helpers/fault-trace.js';

const MiB = 1 << 20;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-fault-record-'));

test('--duration: records while an app faults, stops by itself, and keeps exactly what the node traced', async () => {
  const truth = path.join(dir, 'node-duration.jsonl');
  const out = path.join(dir, 'duration.jsonl');
  const c = await makeCluster({ regions: [{ name: 'data', size: 32 * MiB }], nodeArgs: ['--trace', truth] });
  try {
    const app = await c.app(1, 'data');
    const pages = app.hello.size / app.hello.pageSize;
    const rec = startRecorder('--node', c.files.nodes[0]!.socketDir, '--duration', '400ms', '-o', out);
    let done = false;
    void rec.exited.then(() => (done = true));
    await rec.waitFor(/recording node 1 \(.*control\.sock\) to .*duration\.jsonl for 0\.4 s/);
    // Fresh pages, four at a time, for as long as the recording lasts: every write faults.
    let next = 0;
    while (!done && next < pages) {
      await app.cmd({ op: 'write-pattern', seed: 3, from: next, to: next + 4, descending: true });
      next += 4;
    }
    assert.is(await rec.exited, 0, rec.stderr());
    assert.is(await c.stopNode(1), 0); // flushes the node's own trace file
    const recorded = readEvents(fs.readFileSync(out, 'utf8'));
    const traced = readEvents(fs.readFileSync(truth, 'utf8'));
    assert.ok(recorded.length > 0, 'the app faulted during the recording');
    // What was recorded is one unbroken stretch of what the node traced...
    const first = traced.findIndex((e) => e.page === recorded[0]!.page);
    assert.equal(recorded, traced.slice(first, first + recorded.length));
    // ...and it is what the app did: one write fault per fresh page, in the order written
    // (each group of four last page first, so that no write is read ahead).
    const written = Array.from({ length: next }, (_, k) => k - (k % 4) + 3 - (k % 4));
    const from = written.indexOf(recorded[0]!.page);
    assert.equal(recorded.map((e) => e.page), written.slice(from, from + recorded.length));
    assert.ok(recorded.every((e) => e.kind === 'write' && e.source === 'segment' && e.app === app.child.pid && e.node === 1 && e.region === 'data'));
    assert.match(rec.stderr(), new RegExp(`recorded ${recorded.length} events in \\d+\\.\\d s to .*duration\\.jsonl \\(node 1: ${recorded.length}\\)`));
  } finally {
    await c.close();
  }
});

test('SIGINT: stops with every fault so far, to stdout; report and heatmap agree with the events', async () => {
  const truth = path.join(dir, 'node-sigint.jsonl');
  const c = await makeCluster({ regions: [{ name: 'data', size: 4 * MiB }], nodeArgs: ['--trace', truth] });
  try {
    const rec = startRecorder('--node', path.join(c.files.nodes[0]!.socketDir, 'control.sock'));
    await rec.waitFor(/recording node 1 .* to stdout until Ctrl-C/);
    const writer = await c.app(1, 'data');
    await writer.cmd({ op: 'write-pattern', seed: 1, from: 10, to: 30, descending: true });
    const reader = await c.app(1, 'data');
    assert.equal(await reader.cmd({ op: 'check-pattern', seed: 1, from: 10, to: 30 }), { bad: 0, firstBad: -1 });
    await reader.cmd({ op: 'read-u32', index: (600 * writer.hello.pageSize) / 4 });
    await writer.cmd({ op: 'write-u32', index: (600 * writer.hello.pageSize) / 4, value: 7 });
    rec.child.kill('SIGINT');
    assert.is(await rec.exited, 0, rec.stderr());
    assert.is(await c.stopNode(1), 0);
    const recorded = readEvents(rec.stdout());
    assert.equal(recorded, readEvents(fs.readFileSync(truth, 'utf8')), 'every fault the node traced, none twice');
    const kinds = (pid: number) => new Set(recorded.filter((e) => e.app === pid).map((e) => `${e.kind}/${e.source}`));
    assert.equal(recorded.filter((e) => e.app === writer.child.pid && e.page < 30).map((e) => e.page), Array.from({ length: 20 }, (_, k) => 29 - k));
    assert.ok(kinds(writer.child.pid!).has('write/segment'));
    assert.ok(kinds(reader.child.pid!).has('minor/cache'), 'the reader maps the writer\'s pages without a copy');
    assert.ok(recorded.some((e) => e.app === reader.child.pid && e.page === 600 && e.kind === 'read' && e.source === 'segment'));

    const file = path.join(dir, 'sigint.jsonl');
    fs.writeFileSync(file, rec.stdout());
    const svg = path.join(dir, 'sigint.svg');
    const r = faultTrace('report', file, '--json', '--svg', svg);
    assert.is(r.code, 0, r.err);
    const f = JSON.parse(r.out);
    assert.is(f.events, recorded.length);
    for (const kind of ['read', 'write', 'minor'] as const) assert.is(f.byKind[kind].count, recorded.filter((e) => e.kind === kind).length, kind);
    for (const source of ['cache', 'segment'] as const) {
      const waits = recorded.filter((e) => e.source === source).map((e) => e.waitUs);
      assert.equal(f.waitUs[source], { count: waits.length, p50: nearestRank(waits, 50), p90: nearestRank(waits, 90), p99: nearestRank(waits, 99), max: Math.max(...waits) });
    }
    assert.is(f.waitUs.remote, null, 'one node: nothing remote');
    assert.is(f.wireBytes, 0);
    const perPage = new Map<number, number>();
    for (const e of recorded) perPage.set(e.page, (perPage.get(e.page) ?? 0) + 1);
    const most = Math.max(...perPage.values());
    assert.is(f.hottest[0].faults, most);
    assert.equal(f.hottest.map((p: { page: number; faults: number }) => p.faults), f.hottest.map((p: { page: number }) => perPage.get(p.page)));
    assert.equal(f.pingPong, [], 'one node: nothing moves');
    checkHeatmap(fs.readFileSync(svg, 'utf8'), recorded);
  } finally {
    await c.close();
  }
});

test('a node that goes away is reported, what it sent is kept, the other node is still recorded, exit 1', async () => {
  const [a, b] = [await makeCluster({ regions: [{ name: 'data', size: MiB }] }), await makeCluster({ regions: [{ name: 'data', size: MiB }] })];
  const out = path.join(dir, 'lost.jsonl');
  try {
    const appA = await a.app(1, 'data');
    const appB = await b.app(1, 'data');
    const rec = startRecorder('--node', a.files.nodes[0]!.socketDir, '--node', b.files.nodes[0]!.socketDir, '-o', out);
    await rec.waitFor(/recording node 1 .*, node 1 .* until Ctrl-C/);
    await appA.cmd({ op: 'write-pattern', seed: 1, from: 0, to: 5, descending: true });
    // Wait until node A's events are on disk: then they were recorded before it went away.
    while (fs.readFileSync(out, 'utf8').split('\n').length <= 5) await new Promise((r) => setTimeout(r, 5));
    assert.is(await a.stopNode(1), 0);
    const socketA = path.join(a.files.nodes[0]!.socketDir, 'control.sock');
    await rec.waitFor(new RegExp(`node 1 \\(${socketA}\\) went away after 5 events; still recording node 1 \\(`));
    await appB.cmd({ op: 'write-pattern', seed: 2, from: 0, to: 3, descending: true });
    rec.child.kill('SIGTERM');
    assert.is(await rec.exited, 1, 'a lost node makes the recording fail');
    const recorded = readEvents(fs.readFileSync(out, 'utf8'));
    assert.equal(recorded.filter((e) => e.app === appA.child.pid).map((e) => e.page), [4, 3, 2, 1, 0]);
    assert.equal(recorded.filter((e) => e.app === appB.child.pid).map((e) => e.page), [2, 1, 0]);
    assert.match(rec.stderr(), /recorded 8 events in .* \(node 1 \(.*\): 5, lost: went away; node 1 \(.*\): 3\)/);
  } finally {
    await a.close();
    await b.close();
  }
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
