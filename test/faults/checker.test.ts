// The fault-injection suite's judge, fed made-up histories: it must flag a lost
// synchronized write, a silent app, a disturbed app and a reverted own write, blame the
// right fault, count each lost write once, and accept what the promise allows.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Checker, type FaultWindow } from './checker.js';
import { decodeValue, encodeValue } from './slots.js';

const NONCE = 12345;
const SETTLE = 1000;
/** Two writer positions with four slots each: slots 0-3 are position 0's, 4-7 position 1's. */
const owner = (slot: number) => (slot < 4 ? 0 : 1);
const v = (position: number, round: number, slot: number) => encodeValue(NONCE, position, round, slot);

function checker(): Checker {
  const c = new Checker(SETTLE, owner, (slot, value) => decodeValue(NONCE, slot, value));
  c.appStarted(1, 0, 1); // app 1: writer 0 on node 1
  c.appStarted(2, 1, 2); // app 2: writer 1 on node 2
  c.appStarted(3, 1, 3); // app 3: a reader on node 3
  return c;
}

function fault(id: number, kind: string, start: number, end?: number, undisturbed = false): FaultWindow {
  return { id, kind, target: `node ${id}`, start, end, undisturbed };
}

/** Every slot holding round `r` of its writer. */
const all = (r: number) => Array.from({ length: 8 }, (_, s) => v(owner(s), r, s));

test('values encode writer, round and slot, and nothing else decodes as valid', () => {
  assert.equal(decodeValue(NONCE, 5, v(1, 77, 5)), { position: 1, round: 77 });
  assert.is(decodeValue(NONCE, 5, 0n), 'zero');
  assert.is(decodeValue(NONCE, 6, v(1, 77, 5)), 'garbage', 'a value copied to another slot');
  assert.is(decodeValue(NONCE + 1, 5, v(1, 77, 5)), 'garbage', 'a value from another run');
  assert.is(decodeValue(NONCE, 5, v(1, 77, 5) ^ 1n), 'garbage', 'one bit flipped');
});

test('a lost synchronized write is flagged once, blamed on the fault that overlapped it', () => {
  const c = checker();
  for (const r of [1, 2, 3]) for (const p of [0, 1]) c.issued(p, r);
  c.synced(0, 2, 100);
  c.synced(1, 2, 100);
  c.faultStarted(fault(1, 'kill', 150, 400));
  const expected = c.expectations(8);
  // Writer 0's slots 0-1 went back to round 1: lost. Slot 2 holds round 3 (later, issued): fine.
  const read = all(2);
  read[0] = v(0, 1, 0);
  read[1] = 0n;
  read[2] = v(0, 3, 2);
  c.verify(3, 200, 210, read, expected);
  c.verify(2, 200, 220, read, expected); // a second reader sees the same loss: not counted again
  assert.is(c.byKind.get('kill')!.lost, 2);
  assert.is(c.totals().lost, 2);
  assert.is(c.syncWritesChecked, 8);
  assert.is(c.readsChecked, 16);
  assert.match(c.findings[0]!.detail, /slot 0 \(writer 0\) read from node 3: older round 1/);
  assert.match(c.findings[1]!.detail, /slot 1 .*: zero/);
});

test('another writer\'s value, garbage, and a round never issued are lost; a lost write with no fault is blamed on none', () => {
  const c = checker();
  for (const p of [0, 1]) c.issued(p, 1);
  c.synced(0, 1, 100);
  c.synced(1, 1, 100);
  const read = all(1);
  read[3] = v(1, 1, 3); // writer 1's value in writer 0's slot
  read[4] = 0xdeadbeefn;
  read[5] = v(1, 9, 5); // well formed, but round 9 was never issued
  c.verify(3, 200, 210, read, c.expectations(8));
  assert.is(c.byKind.get('none')!.lost, 3);
  assert.match(c.findings.map((f) => f.detail).join('\n'), /writer 1's round 1[^]*garbage[^]*never issued/);
});

test('an app of a failed node that keeps going past its deadline is silent, once; one told in time is not', () => {
  const c = checker();
  c.faultStarted(fault(1, 'kill', 1000));
  c.nodeFailed([1], 1000, 1500, 'kill');
  c.nodeFailed([2], 1000, 1500, 'kill');
  assert.is(c.progress(1, 1400, 'a stretch'), false, 'within the deadline');
  assert.is(c.progress(1, 1600, 'a stretch'), true, 'past it, not told');
  assert.is(c.progress(1, 1700, 'a stretch'), false, 'counted once');
  c.told(2, 1450, 'died of SIGBUS');
  assert.is(c.progress(2, 1600, 'a stretch'), false, 'told before');
  assert.is(c.byKind.get('kill')!.silent, 1);
  assert.is(c.byKind.get('kill')!.told, 1);
  assert.match(c.findings[0]!.detail, /app 1 \(writer 0\) on node 1: a stretch 600 ms after its node failed/);
});

test('a resumed node brings its apps\' deadline forward; reads of a failed node\'s apps are not judged for loss', () => {
  const c = checker();
  c.faultStarted(fault(1, 'stop', 1000));
  c.nodeFailed([3], 1000, 4000, 'stop');
  c.tellBy([3], 2500);
  c.issued(0, 1);
  c.synced(0, 1, 100);
  const stale = all(1).map(() => 0n);
  c.verify(3, 2600, 2700, stale, c.expectations(8)); // a read past the deadline: silent, not lost
  assert.is(c.byKind.get('stop')!.silent, 1);
  assert.is(c.totals().lost, 0);
});

test('an app told while only an undisturbed fault is under way is disturbed; under a kill it is not', () => {
  const c = checker();
  c.faultStarted(fault(1, 'reset', 1000, 1100, true));
  c.told(3, 1500, 'its barrier call rejected with ECONNRESET');
  assert.is(c.byKind.get('reset')!.disturbed, 1);
  c.faultStarted(fault(2, 'kill', 5000, 6000));
  c.told(2, 5500, 'died of SIGBUS');
  assert.is(c.totals().disturbed, 1);
  assert.is(c.totals().told, 2);
  c.told(1, 20_000, 'died of SIGSEGV'); // no fault at all
  assert.is(c.byKind.get('none')!.disturbed, 1);
});

test('an app reading back a reverted own write: synchronized is lost, unsynchronized is lost_unsynced', () => {
  const c = checker();
  for (const r of [1, 2, 3]) c.issued(0, r);
  c.synced(0, 2, 100);
  c.ownMismatch(1, 200, 0, v(0, 3, 0), v(0, 2, 0)); // round 3 not synchronized, round 2 still there
  c.ownMismatch(1, 200, 1, v(0, 3, 1), v(0, 1, 1)); // older than the synchronized round 2
  c.ownMismatch(1, 200, undefined, 900n, 400n); // a scratch counter went back
  assert.is(c.totals().lost_unsynced, 2);
  assert.is(c.totals().lost, 1);
  assert.match(c.findings[0]!.detail, /slot 0 as writer 0's round 2, not its last store \(writer 0's round 3\)/);
});

test('hangs and crashes are blamed on the fault under way', () => {
  const c = checker();
  c.faultStarted(fault(1, 'stop', 1000, 5000));
  c.hang(9000, 2000, 'app 1 waited');
  c.crash(4, 30_000, 'ENOSPC');
  assert.is(c.byKind.get('stop')!.hangs, 1);
  assert.is(c.byKind.get('none')!.crashes, 1);
});

test.run();
