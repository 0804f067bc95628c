// The pieces release consistency is built from, each on its own: diffs (only changed
// words travel, writers of one page merge, a peer's malformed diff changes nothing), write
// notices in deltas (each peer is told what it has not been, and everything again once it
// went down), and atomic operations as a home applies them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyDiff, makeDiff, WHOLE } from '../src/coherence/release/diff.js';
import { decodeNotices, VersionLog, Watermarks } from '../src/coherence/release/notices.js';
import { applyAtomic, checkAtomic, decodeResult, encodeAtomic } from '../src/coherence/release/atomics.js';
import type { NaplusError } from '../src/errors.js';
import { prng } from './fixtures/transport-protocol.js';

const PAGE = 4096;

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as NaplusError).code;
  }
  return 'none';
}

test('a diff carries exactly the changed words: applied to the twin it gives the page', () => {
  const random = prng(7);
  for (let round = 0; round < 200; round++) {
    const twin = new Uint8Array(PAGE).map(() => Math.floor(random() * 256));
    const page = twin.slice();
    const words = new Uint32Array(page.buffer);
    const changes = Math.floor(random() * 40);
    for (let k = 0; k < changes; k++) {
      // Runs and scattered words alike.
      const at = Math.floor(random() * words.length);
      const len = random() < 0.5 ? 1 : Math.floor(random() * 64);
      for (let i = at; i < Math.min(words.length, at + len); i++) words[i] = (words[i]! + 1) >>> 0;
    }
    const diff = makeDiff(twin, page);
    if (changes === 0) {
      assert.is(diff, undefined);
      continue;
    }
    assert.ok(diff instanceof Uint8Array);
    assert.ok(diff.length < PAGE + 1, `a diff is never bigger than its page (${diff.length})`);
    const rebuilt = twin.slice();
    applyDiff(rebuilt, diff);
    assert.equal(rebuilt, page);
  }
});

test('two writers of different words of one page both keep their writes at its home; a fully written page goes whole', () => {
  const twin = new Uint8Array(PAGE);
  const a = twin.slice();
  const b = twin.slice();
  new Float64Array(a.buffer).fill(1.5, 0, 256); // the first half
  new Float64Array(b.buffer).fill(2.5, 256); // the second
  const master = twin.slice();
  applyDiff(master, makeDiff(twin, a) as Uint8Array);
  applyDiff(master, makeDiff(twin, b) as Uint8Array);
  const f = new Float64Array(master.buffer);
  assert.ok(f.subarray(0, 256).every((x) => x === 1.5) && f.subarray(256).every((x) => x === 2.5));
  assert.is(makeDiff(twin, new Uint8Array(PAGE).fill(9)), WHOLE);
});

test('scattered changes (float64 values whose high halves change) travel as a bitmap, not as runs', () => {
  const twin = new Uint8Array(PAGE);
  const page = twin.slice();
  const f = new Float64Array(page.buffer);
  for (let i = 0; i < f.length; i++) f[i] = 2 ** (i % 8); // low 32 bits zero: every other word changes
  const diff = makeDiff(twin, page) as Uint8Array;
  assert.is(diff[0], 1, 'bitmap format');
  const runsDiff = makeDiff(twin, Uint8Array.from(twin).fill(5, 100, 300)) as Uint8Array;
  assert.is(runsDiff[0], 0, 'one run: runs format');
  assert.ok(diff.length <= 4 + PAGE / 32 + PAGE / 2, `${diff.length} bytes`);
  const rebuilt = twin.slice();
  applyDiff(rebuilt, diff);
  assert.equal(rebuilt, page);
});

test('a malformed diff from a peer is refused (EPROTO) and changes nothing', () => {
  const page = new Uint8Array(PAGE).fill(3);
  const runs = (first: number, count: number, words: number) => new Uint8Array(new Uint32Array([0, first, count, ...new Array<number>(words).fill(7)]).buffer);
  for (const bad of [new Uint8Array(0), new Uint8Array([9, 0, 0]), runs(1020, 8, 8), runs(0, 0, 0), runs(0, 4, 3), new Uint8Array(4 + PAGE / 32).fill(255, 0, 1)]) {
    assert.is(code(() => applyDiff(page, bad)), 'EPROTO');
  }
  const bitmap = new Uint8Array(4 + PAGE / 32);
  bitmap[0] = 1;
  bitmap[4] = 1; // one word changed, but no word follows
  assert.is(code(() => applyDiff(page, bitmap)), 'EPROTO');
  assert.ok(page.every((x) => x === 3), 'nothing changed');
});

test('notices travel in deltas: each peer is told what rose since it was last told, and everything again after it went down', () => {
  const log = new VersionLog(1000);
  const told = new Watermarks(log);
  const pairs = (b: Uint8Array | undefined) => (b ? decodeNotices(b, 1000) : []);
  assert.is(told.take(7), undefined, 'nothing known yet');
  log.raise(5, 1);
  log.raise(9, 2);
  assert.equal(pairs(told.take(7)), [[5, 1], [9, 2]]);
  assert.is(told.take(7), undefined, 'told already');
  assert.ok(!log.raise(9, 1), 'an older version is no news');
  log.raise(5, 3);
  assert.equal(pairs(told.take(7)), [[5, 3]], 'only what rose since');
  assert.equal(pairs(told.take(8)), [[9, 2], [5, 3]], 'another peer hears everything, once');
  // Many rises of few pages: what is read back stays exact as the log compacts.
  for (let v = 4; v < 5000; v++) log.raise(v % 3, v);
  assert.equal(pairs(told.take(8)).sort((x, y) => x[0] - y[0]), [[0, 4998], [1, 4999], [2, 4997]]);
  told.forget(7);
  assert.equal(pairs(told.take(7)).length, 5, 'a peer that went down is told everything anew');
});

test('notices kept in a store are known again by a new process (a restarted lock home)', () => {
  const kept = new Uint32Array(100);
  const store = { read: (p: number) => kept[p]!, write: (p: number, v: number) => (kept[p] = v) };
  const first = new VersionLog(100, store);
  first.raise(3, 4);
  first.raise(42, 1);
  const again = new Watermarks(new VersionLog(100, store));
  assert.equal(decodeNotices(again.take(1)!, 100), [[3, 4], [42, 1]]);
});

test('malformed notices from a peer are refused (EPROTO)', () => {
  assert.is(code(() => decodeNotices(new Uint8Array(7), 10)), 'EPROTO');
  const pair = (page: number, version: number) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setUint32(0, page, true);
    new DataView(b.buffer).setUint32(4, version, true);
    return b;
  };
  assert.is(code(() => decodeNotices(pair(10, 1), 10)), 'EPROTO');
  assert.is(code(() => decodeNotices(pair(1, 0), 10)), 'EPROTO');
  assert.equal(decodeNotices(pair(9, 3), 10), [[9, 3]]);
});

test('atomic operations as a home applies them: unsigned words that wrap, compareExchange, 64-bit BigInts', () => {
  const page = new Uint8Array(PAGE);
  const region = { name: 'r', size: 1 << 20 };
  const run = (args: Parameters<typeof checkAtomic>[0]) => applyAtomic(page, encodeAtomic(checkAtomic(args, region), args.offset as number));
  assert.is(run({ op: 'sub', width: 4, offset: 8, value: 1 }), 0n);
  assert.is(run({ op: 'load', width: 4, offset: 8 }), 2n ** 32n - 1n, 'wrapped, unsigned');
  assert.is(run({ op: 'add', width: 4, offset: 8, value: 2 }), 2n ** 32n - 1n);
  assert.is(run({ op: 'compareExchange', width: 4, offset: 8, expected: 5, value: 9 }), 1n, 'no match: unchanged');
  assert.is(run({ op: 'compareExchange', width: 4, offset: 8, expected: 1, value: 9 }), 1n);
  assert.is(run({ op: 'xor', width: 4, offset: 8, value: 15 }), 9n);
  assert.is(run({ op: 'load', width: 4, offset: 8 }), 6n);
  assert.is(run({ op: 'store', width: 8, offset: 16, value: 2n ** 63n }), 0n);
  assert.is(run({ op: 'or', width: 8, offset: 16, value: 1n }), 2n ** 63n);
  assert.is(run({ op: 'exchange', width: 8, offset: 16, value: '7' }), 2n ** 63n + 1n);
  assert.is(decodeResult(new Uint8Array([7, 0, 0, 0, 0, 0, 0, 0])), 7n);
});

test('bad atomic operations are refused with the reason, before anything is sent or changed', () => {
  const region = { name: 'r', size: 4096 };
  assert.is(code(() => checkAtomic({ op: 'mul', width: 4, offset: 0 }, region)), 'EINVAL');
  assert.is(code(() => checkAtomic({ op: 'add', width: 2, offset: 0 }, region)), 'EINVAL');
  assert.is(code(() => checkAtomic({ op: 'add', width: 8, offset: 4 }, region)), 'EINVAL');
  assert.is(code(() => checkAtomic({ op: 'add', width: 4, offset: 4096 }, region)), 'ERANGE');
  assert.is(code(() => checkAtomic({ op: 'add', width: 4, offset: 0, value: 1.5 }, region)), 'EINVAL');
  assert.throws(() => checkAtomic({ op: 'add', width: 4, offset: 6 }, region), /Expected a non-negative multiple of 4 for offset but received 6/);
  const page = new Uint8Array(PAGE);
  const request = encodeAtomic(checkAtomic({ op: 'add', width: 4, offset: 0, value: 1 }, region), 0);
  assert.is(code(() => applyAtomic(page, request.subarray(0, 20))), 'EPROTO');
  const far = encodeAtomic(checkAtomic({ op: 'add', width: 4, offset: 0, value: 1 }, region), PAGE);
  assert.is(code(() => applyAtomic(page, far)), 'EPROTO');
  assert.ok(page.every((x) => x === 0), 'nothing changed');
});

test.run();
