// A page poisoned in an app (its writes were lost, or its home is gone) stays poisoned
// for that app: no readahead and no later grant maps it again, since mapping it would
// replace the poison and let the app read older bytes without a word. (Unit test of the
// fault intake and mapper, with a userfaultfd that records what is asked of it.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FaultIntake } from '../src/node/fault-intake.js';
import { Mapper, type AppLink } from '../src/node/mapper.js';
import { Readahead } from '../src/node/readahead.js';
import { TraceLog } from '../src/node/trace.js';
import type { PageProtocol } from '../src/coherence/protocol.js';
import type { UffdEvent, Userfaultfd } from '../src/uffd/index.js';

const PAGE = 4096;
const PAGES = 64;

function setup() {
  const mapped = new Set<number>();
  const poisoned: number[] = [];
  const uffd = {
    continue: (start: number, length: number) => {
      for (let p = start / PAGE; p < (start + length) / PAGE; p++) mapped.add(p);
    },
    writeProtect: () => undefined,
    poison: (start: number) => poisoned.push(start / PAGE),
  } as unknown as Userfaultfd;
  const app: AppLink = { id: 1, pid: 1, uffd, base: 0, readahead: new Readahead(16), kill: () => undefined, poisoned: new Set() };
  const held = new Set<number>();
  const protocol: PageProtocol = {
    permits: (page) => held.has(page),
    request: () => undefined,
    evict: () => true,
  };
  const mapper = new Mapper(PAGE, () => undefined, () => undefined);
  mapper.add(app);
  const intake = new FaultIntake({ name: 'data', pages: PAGES, pageSize: PAGE, consistency: 'sequential' }, 1, protocol, { homeOf: () => 2, slotOf: () => 0, resolve: (_p, then) => then(), learn: () => undefined }, mapper, new TraceLog(16), () => undefined);
  const fault = (page: number): UffdEvent => ({ kind: 'fault', address: page * PAGE, write: false, wp: false, minor: false } as UffdEvent);
  /** The protocol grants `pages`; the intake resolves what waits on them. */
  const grant = (pages: number[]) => {
    for (const p of pages) {
      held.add(p);
      intake.granted(p, { source: 'remote', wireBytes: 0, arrived: true, upgrade: false });
    }
    mapper.flush();
  };
  return { app, intake, mapper, mapped, poisoned, fault, grant };
}

test('readahead passes over a page poisoned in the app, and a grant of it maps nothing there', () => {
  const { app, intake, mapper, mapped, poisoned, fault, grant } = setup();
  mapper.poison(5, 'its writes were lost');
  assert.equal(poisoned, [5]);
  // A sequential stream of misses from page 0: windows grow over pages 1..4, then stop before 5.
  for (const p of [0, 1, 3]) intake.onEvents(app, [fault(p)]);
  grant([...Array(PAGES).keys()]);
  assert.ok(mapped.has(0) && mapped.has(4), 'the stream was read ahead');
  assert.not.ok(mapped.has(5), 'page 5 stays poisoned');
});

test('a fault that failed (its home unreachable) leaves its page poisoned for the app', () => {
  const { app, intake, mapped, poisoned, fault, grant } = setup();
  intake.onEvents(app, [fault(5)]);
  intake.failed(5, 'its home is unreachable');
  assert.equal(poisoned, [5]);
  for (const p of [0, 1, 3]) intake.onEvents(app, [fault(p)]); // a window over 3..6 would take 5
  grant([...Array(PAGES).keys()]);
  assert.ok(mapped.has(4));
  assert.not.ok(mapped.has(5), 'page 5 is never mapped for the app again');
});

test.run();
