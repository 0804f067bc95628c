// Time as the protocols see it in a node: the monotonic clock, timers that do not keep
// the process alive, and the end of the current turn.
import { performance } from 'node:perf_hooks';
import type { Clock } from '../coherence/protocol.js';

export const realClock: Clock = {
  now: () => performance.now(),
  after: (ms, fn) => {
    if (ms >= 1) return void setTimeout(fn, ms).unref();
    // Timers are whole milliseconds; a hold of a fraction of one is polled for, each
    // turn of the event loop (I/O is served in between).
    const due = performance.now() + ms;
    const check = () => (performance.now() >= due ? fn() : setImmediate(check));
    setImmediate(check);
  },
  soon: (fn) => queueMicrotask(fn),
};
