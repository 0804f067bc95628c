// `naplus-fault-trace report` on small hand-written traces whose answers are known by
// construction: percentiles, counts, hottest and ping-pong pages, merging of files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FaultEvent, FaultKind, FaultSource } from '../src/trace/fault-event.js';
import { checkHeatmap, faultTrace, nearestRank } from './helpers/fault-trace.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-fault-report-'));
const T0 = 1_700_000_000_000;

function ev(i: number, node: number, page: number, source: FaultSource, waitUs: number, kind: FaultKind = 'read', region = 'data'): FaultEvent {
  return { t: T0 + i, node, region, app: 100 + node, page, kind, source, waitUs, wireBytes: source === 'remote' ? 4096 + page : 0 };
}

// Node 1: 100 segment reads of pages 0-99 waiting 1..100 µs (shuffled), then page 7
// faulted 12 more times; node 2: 20 remote writes waiting 1000..1019 µs. Pages 500 and
// 501 are shared: 500 alternates nodes 1,2,1,2,1 (4 moves), 501 goes 1,1,2,2 (1 move),
// 502 is faulted three times from node 1 alone (no move). Each node's events go to its
// own file, so only a merge in time order sees the moves.
const events: FaultEvent[] = [];
let i = 0;
for (const w of Array.from({ length: 100 }, (_, k) => ((k * 37) % 100) + 1)) events.push(ev(i++, 1, w - 1, 'segment', w));
for (let k = 0; k < 12; k++) events.push(ev(i++, 1, 7, 'cache', 5, 'minor'));
for (let k = 0; k < 20; k++) events.push(ev(i++, 2, 200 + k, 'remote', 1000 + k, 'write'));
[1, 2, 1, 2, 1].forEach((node) => events.push(ev(i++, node, 500, node === 1 ? 'cache' : 'remote', 50)));
[1, 1, 2, 2].forEach((node) => events.push(ev(i++, node, 501, node === 1 ? 'cache' : 'remote', 60)));
for (let k = 0; k < 3; k++) events.push(ev(i++, 1, 502, 'cache', 70, 'minor', 'other<&>'));

const files = [1, 2].map((node) => {
  const f = path.join(dir, `node${node}.jsonl`);
  fs.writeFileSync(f, events.filter((e) => e.node === node).map((e) => `${JSON.stringify(e)}\n`).join(''));
  return f;
});

/** Moves of each page, recomputed: a fault from another node than the page's previous one. */
function moves(all: FaultEvent[]): Map<string, number> {
  const last = new Map<string, number>();
  const m = new Map<string, number>();
  for (const e of [...all].sort((a, b) => a.t - b.t)) {
    const key = `${e.region}/${e.page}`;
    if (last.has(key) && last.get(key) !== e.node) m.set(key, (m.get(key) ?? 0) + 1);
    last.set(key, e.node);
  }
  return m;
}

test('--json: counts, shares, nearest-rank percentiles and wire bytes', () => {
  const r = faultTrace('report', ...files, '--json');
  assert.is(r.code, 0, r.err);
  const f = JSON.parse(r.out);
  assert.is(f.events, events.length);
  assert.equal(f.nodes, [1, 2]);
  assert.equal(f.regions, ['data', 'other<&>']);
  for (const kind of ['read', 'write', 'minor'] as const) {
    const n = events.filter((e) => e.kind === kind).length;
    assert.equal(f.byKind[kind], { count: n, percent: (100 * n) / events.length });
  }
  for (const source of ['cache', 'segment', 'remote'] as const) {
    const waits = events.filter((e) => e.source === source).map((e) => e.waitUs);
    assert.equal(f.waitUs[source], { count: waits.length, p50: nearestRank(waits, 50), p90: nearestRank(waits, 90), p99: nearestRank(waits, 99), max: Math.max(...waits) });
    assert.is(f.bySource[source].count, waits.length);
  }
  // Segment waits are exactly 1..100 µs: nearest-rank gives the rank itself.
  assert.equal([f.waitUs.segment.p50, f.waitUs.segment.p90, f.waitUs.segment.p99, f.waitUs.segment.max], [50, 90, 99, 100]);
  const all = events.map((e) => e.waitUs);
  assert.equal(f.waitUs.all, { count: all.length, p50: nearestRank(all, 50), p90: nearestRank(all, 90), p99: nearestRank(all, 99), max: Math.max(...all) });
  assert.is(f.wireBytes, events.reduce((a, e) => a + e.wireBytes, 0));
  assert.equal(f.files.map((x: { events: number; malformed: number }) => [x.events, x.malformed]), [[events.filter((e) => e.node === 1).length, 0], [events.filter((e) => e.node === 2).length, 0]]);
});

test('--json: hottest pages by faults and ping-pong pages by moves, across merged files', () => {
  const f = JSON.parse(faultTrace('report', ...files, '--json', '--top', '3').out);
  const page7 = events.filter((e) => e.page === 7);
  assert.equal(f.hottest[0], {
    region: 'data', page: 7, faults: page7.length, nodes: [1],
    meanWaitUs: page7.reduce((a, e) => a + e.waitUs, 0) / page7.length, moves: 0,
  });
  assert.equal(f.hottest.slice(1).map((p: { page: number; faults: number }) => [p.page, p.faults]), [[500, 5], [501, 4]]);
  const m = moves(events);
  assert.equal([...m.keys()].sort(), ['data/500', 'data/501']);
  assert.equal(f.pingPong.map((p: { region: string; page: number; moves: number; nodes: number[] }) => [`${p.region}/${p.page}`, p.moves, p.nodes]), [
    ['data/500', m.get('data/500'), [1, 2]],
    ['data/501', m.get('data/501'), [1, 2]],
  ]);
  assert.is(m.get('data/500'), 4);
  assert.is(m.get('data/501'), 1);
});

test('tables for people: sections, --top, the ping-pong definition', () => {
  const r = faultTrace('report', ...files, '--top', '2');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`^Fault trace: ${events.length} faults from 2 nodes`));
  assert.match(r.out, /^read\s+\d+\s+\d+\.\d%$/m);
  assert.match(r.out, /^segment\s+100\s+\d+\.\d%\s+50\s+90\s+99\s+100$/m);
  const hot = r.out.slice(r.out.indexOf('Hottest pages'), r.out.indexOf('Ping-pong pages'));
  assert.match(hot, /^data\s+7\s+13\s+1\s/m);
  assert.is(hot.split('\n').filter((l) => /^data\s/.test(l)).length, 2, '--top 2 rows');
  const pp = r.out.slice(r.out.indexOf('Ping-pong pages'));
  assert.match(pp, /a move is a fault on the page from another node than the page's previous fault/);
  assert.match(pp, /^data\s+500\s+4\s+5\s+1,2$/m);
  assert.match(faultTrace('report', files[0]!).out, /Ping-pong pages[^\n]*\n\(none/, 'one node alone moves nothing');
});

test('--svg: a well-formed heatmap whose cells match the events, region names escaped', () => {
  const svg = path.join(dir, 'map.svg');
  const r = faultTrace('report', ...files, '--svg', svg);
  assert.is(r.code, 0, r.err);
  assert.match(r.err, /heatmap written to .*map\.svg/);
  const text = fs.readFileSync(svg, 'utf8');
  assert.ok(text.includes('other&lt;&amp;&gt;'));
  checkHeatmap(text, events);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
