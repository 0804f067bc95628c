// A lock let go by a holder whose writes could not all be made durable (release
// consistency) passes on as if that holder had died: the next waiter is told the data may
// be inconsistent (EOWNERDEAD), and the one after it gets the lock.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SyncService, type Party } from '../src/coherence/sync-service.js';
import type { NaplusError } from '../src/errors.js';

const app = (n: number): Party => ({ node: 1, app: n, pid: 100 + n });

test('an unlock that lost writes: the next waiter gets EOWNERDEAD, the one after the lock', () => {
  const s = new SyncService();
  const outcome: Record<string, string> = {};
  s.lock(app(1), 'L', () => undefined);
  s.lock(app(2), 'L', (err) => (outcome.b = err ? (err as NaplusError).code : 'granted'));
  s.lock(app(3), 'L', (err) => (outcome.c = err ? (err as NaplusError).code : 'granted'));
  let unlocked: string | undefined;
  s.unlock(app(1), 'L', (err) => (unlocked = err?.code ?? 'ok'), true);
  assert.equal(outcome, { b: 'EOWNERDEAD', c: 'granted' });
  assert.is(unlocked, 'ok', 'the unlock itself is done');
  assert.equal(s.describe().locks, { L: { holder: 'pid 103 on node 1', waiting: 0 } });
});

test('a plain unlock still passes the lock to the next waiter', () => {
  const s = new SyncService();
  let b = '';
  s.lock(app(1), 'L', () => undefined);
  s.lock(app(2), 'L', (err) => (b = err ? (err as NaplusError).code : 'granted'));
  s.unlock(app(1), 'L', () => undefined);
  assert.is(b, 'granted');
});

test.run();
