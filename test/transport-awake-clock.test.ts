// Liveness time excludes the time this process did not run: a callback that runs later
// than it should reports the lateness, and the clock peers' silence is measured on does
// not advance by it. So a long synchronous task, a stop or a starved CPU here never counts
// as silence of a peer (whose frames were waiting unread).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AwakeClock } from '../src/transport/awake-clock.js';

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

test('time this process did not run is not liveness time; on-time check-ins change nothing', () => {
  // A jitter of a second: even a loaded machine does not preempt this process that long.
  const JITTER = 1000;
  const clock = new AwakeClock();
  assert.is(clock.ran(0, JITTER), 0, 'checked in at once: not late');
  const before = clock.now();
  busy(1500); // as if stopped, or starved, between two check-ins
  const late = clock.ran(0, JITTER);
  assert.ok(late >= 1500, `reported ${late} ms late`);
  assert.ok(clock.now() - before < JITTER, `liveness time advanced ${clock.now() - before} ms over a 1500 ms stall`);
  // A check-in that comes when expected (within the jitter) is not a stall.
  busy(50);
  assert.is(clock.ran(50, JITTER), 0);
  const t = clock.now();
  busy(40);
  assert.ok(clock.now() - t >= 40, 'running time counts in full');
});

test.run();
