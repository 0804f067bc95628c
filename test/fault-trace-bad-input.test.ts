// naplus-fault-trace on bad input: one clear line on stderr and a non-zero exit, or, for
// damaged lines in a trace, a count of what was skipped (no silent data loss).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FaultEvent } from '../src/trace/fault-event.js';
import { makeCluster } from './helpers/cluster.js';
import { faultTrace } from './helpers/fault-trace.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-fault-bad-'));
const good: FaultEvent = { t: 1_700_000_000_000, node: 1, region: 'data', app: 42, page: 3, kind: 'read', source: 'segment', waitUs: 12.5, wireBytes: 0 };

function write(name: string, lines: string[]): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, lines.map((l) => `${l}\n`).join(''));
  return f;
}

/** The error is a single line naming the command. */
function oneLine(err: string): string {
  assert.is(err.trimEnd().split('\n').length, 1, err);
  assert.match(err, /^naplus-fault-trace: /);
  return err;
}

test('report: a missing file is a clear error', () => {
  const missing = path.join(dir, 'nope.jsonl');
  const r = faultTrace('report', missing);
  assert.is(r.code, 1);
  assert.match(oneLine(r.err), new RegExp(`Cannot read trace file ${missing}: no such file; record one with 'naplus-fault-trace record'`));
});

test('report: malformed lines are skipped, counted, and the first one named', () => {
  const f = write('mixed.jsonl', [
    JSON.stringify(good),
    '{"t": 1, "node": 1',                                      // line 2: cut short
    JSON.stringify({ ...good, page: 4 }),
    '',                                                        // blank lines are not damage
    JSON.stringify({ ...good, kind: 'execute' }),              // line 5: unknown kind
    JSON.stringify({ ...good, page: -1 }),                     // line 6: negative page
    'hello',                                                   // line 7
    JSON.stringify({ ...good, page: 5, waitUs: 30 }),
  ]);
  const r = faultTrace('report', f, '--json');
  assert.is(r.code, 0, r.err);
  assert.match(r.err, new RegExp(`skipped 4 malformed lines in ${f} \\(the first at line 2\\)`));
  const figures = JSON.parse(r.out);
  assert.is(figures.events, 3);
  assert.equal(figures.files[0], { file: f, events: 3, malformed: 4, firstMalformedLine: 2 });
});

test('report: a file without a single event is an error, even next to a good one', () => {
  const garbage = write('garbage.jsonl', ['not json', '[1,2,3]']);
  const r = faultTrace('report', garbage);
  assert.is(r.code, 1);
  assert.match(oneLine(r.err), /garbage\.jsonl holds no fault events, only 2 malformed lines \(the first at line 1\)/);
  const empty = write('empty.jsonl', []);
  const r2 = faultTrace('report', write('one.jsonl', [JSON.stringify(good)]), empty);
  assert.is(r2.code, 1);
  assert.match(oneLine(r2.err), /empty\.jsonl holds no fault events; is it a trace/);
});

test('report: --top must be a positive integer; --svg must be writable', () => {
  const f = write('ok.jsonl', [JSON.stringify(good)]);
  const r = faultTrace('report', f, '--top', '0');
  assert.is(r.code, 1);
  assert.match(oneLine(r.err), /Expected a positive integer for --top but received '0'/);
  const r2 = faultTrace('report', f, '--svg', path.join(dir, 'no/such/dir/map.svg'));
  assert.is(r2.code, 1);
  assert.match(oneLine(r2.err), /Cannot write the heatmap to .*map\.svg \(ENOENT/);
});

test('record: a bad --duration is refused before anything else', () => {
  for (const bad of ['abc', '0', '-5s', '10x', '1e3']) {
    const r = faultTrace('record', '--node', dir, '--duration', bad);
    assert.is(r.code, 1, bad);
    assert.match(oneLine(r.err), new RegExp(`Expected a duration such as 500ms, 10s, 2m or 30 \\(seconds\\) for --duration but received '${bad}'`));
  }
});

test('record: a node that is not running is named, with the command that starts one', () => {
  const r = faultTrace('record', '--node', dir, '--duration', '1s');
  assert.is(r.code, 1);
  const socket = path.join(dir, 'control.sock');
  assert.match(oneLine(r.err), new RegExp(`No Naplus node answers at ${socket} .*; start one with 'naplus-mount --cluster <file> --node <id> --socket-dir ${dir}'`));
  const r2 = faultTrace('record', '--node', dir, '--duration', '1s', '-o', path.join(dir, 'never.jsonl'));
  assert.is(r2.code, 1);
  assert.ok(!fs.existsSync(path.join(dir, 'never.jsonl')), 'no empty trace is left behind');
});

test('record: a socket that is not a node\'s control socket is named as such', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: 1 << 20 }] });
  try {
    const regionSocket = path.join(c.files.nodes[0]!.socketDir, 'data.sock');
    const r = faultTrace('record', '--node', regionSocket, '--duration', '1s');
    assert.is(r.code, 1);
    assert.match(oneLine(r.err), new RegExp(`${regionSocket} answered .*refused.* instead of a node's stats; is it a Naplus node's control socket\\?`));
  } finally {
    await c.close();
  }
});

test('record: an unwritable output file is refused', () => {
  for (const out of [path.join(dir, 'no/such/dir/t.jsonl'), dir]) {
    const r = faultTrace('record', '--node', dir, '-o', out);
    assert.is(r.code, 1);
    assert.match(oneLine(r.err), new RegExp(`Cannot write the trace to ${out} \\((ENOENT|EISDIR)`));
  }
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
