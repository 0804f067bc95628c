// Readahead over interleaved sequential streams: each stream's window grows on its own,
// whatever other streams' misses come between; anything else is one page.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Readahead } from '../src/node/readahead.js';

/** Simulates an app that touches `order` (page numbers) and faults only on pages not yet fetched. */
function faults(r: Readahead, order: number[]): number {
  const fetched = new Set<number>();
  let n = 0;
  for (const p of order) {
    if (fetched.has(p)) continue;
    n++;
    const count = r.miss(p);
    for (let q = p; q < p + count; q++) fetched.add(q);
  }
  return n;
}

test('one sequential stream: the window doubles to the cap', () => {
  const r = new Readahead(64);
  assert.equal([0, 1, 3, 7, 15, 31, 63, 127].map((p) => r.miss(p)), [1, 2, 4, 8, 16, 32, 64, 64]);
});

test('three streams walked together (A, B read; C written) each get their own window', () => {
  const order: number[] = [];
  for (let i = 0; i < 4096; i++) order.push(i, 100_000 + i, 200_000 + i);
  const r = new Readahead(64);
  const n = faults(r, order);
  // Per stream: 7 faults to grow the window to 64, then one per 64 pages.
  assert.ok(n <= 3 * (7 + 4096 / 64), `${n} faults for 3 x 4096 pages`);
  // A single detector would reset on every interleaved miss: one fault per page.
  assert.ok(n < (3 * 4096) / 20);
});

test('random misses fetch one page each, and readahead can be off', () => {
  const r = new Readahead(64);
  assert.equal([500, 20, 9000, 7, 42].map((p) => r.miss(p)), [1, 1, 1, 1, 1]);
  const off = new Readahead(0);
  assert.equal([0, 1, 2, 3].map((p) => off.miss(p)), [1, 1, 1, 1]);
});

test('more streams than slots: the least recently used gives way', () => {
  const r = new Readahead(64);
  for (let s = 0; s < 9; s++) r.miss(s * 10_000); // nine streams, eight slots: stream 0 is evicted
  assert.is(r.miss(1), 1, 'stream 0 was forgotten');
  assert.is(r.miss(80_001), 2, 'stream 8 goes on');
});

test.run();
