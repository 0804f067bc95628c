// The coherence protocols (the real src/coherence code) under thousands of simulated
// schedules per run: random interleavings of FIFO links, evictions, broken links and
// dying nodes; sequential consistency (calm, evict, faults) and release consistency
// (release, release-faults: data-race-free apps checked read by read against the last
// write that happens before). Each seed replays exactly:
//   NAPLUS_SIM_SEED=<seed> NAPLUS_SIM_FAMILY=<family> node dist/test/coherence-sim.test.js
// prints that run's step-by-step log.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { optionsFor, Simulation, type Family, type SimResult } from './helpers/sim/simulation.js';
import { CacheController } from '../src/coherence/sequential/cache.js';
import { HomeDirectory } from '../src/coherence/sequential/home.js';
import { SyncNode } from '../src/coherence/sync-node.js';
import { SyncService } from '../src/coherence/sync-service.js';
import { LossLog } from '../src/coherence/loss-log.js';
import { NoticeRelay } from '../src/coherence/sync-notices.js';
import { ReleaseCache } from '../src/coherence/release/cache.js';
import { ReleaseProtocol } from '../src/coherence/release/index.js';
import { PROTOCOLS } from '../src/coherence/protocols.js';
import type { ProtocolContext } from '../src/coherence/protocol.js';

const PER_FAMILY = Number(process.env.NAPLUS_SIM_RUNS ?? 1500);
// Half the seeds are the same every run (a fixed regression set), half are new (more
// schedules explored over time); either way a failure names its seed.
const base = Number(process.env.NAPLUS_SIM_BASE ?? Math.floor(Math.random() * 1e9));

function runFamily(family: Family): { results: SimResult[]; failed?: SimResult } {
  const results: SimResult[] = [];
  for (let i = 0; i < PER_FAMILY; i++) {
    const seed = i < PER_FAMILY / 2 ? i + 1 : (base + i) >>> 0;
    const r = new Simulation(seed, optionsFor(seed, family)).run();
    results.push(r);
    if (r.failure) return { results, failed: r };
  }
  return { results };
}

function explain(family: Family, r: SimResult): string {
  return `seed ${r.seed} (${family}) failed after ${r.steps} steps: ${r.failure}\n` +
    `replay: NAPLUS_SIM_SEED=${r.seed} NAPLUS_SIM_FAMILY=${family} node dist/test/coherence-sim.test.js`;
}

const replay = process.env.NAPLUS_SIM_SEED;
if (replay !== undefined) {
  const family = (process.env.NAPLUS_SIM_FAMILY ?? 'faults') as Family;
  const seed = Number(replay);
  const options = optionsFor(seed, family);
  const r = new Simulation(seed, { ...options, trace: true }).run();
  console.log(JSON.stringify(options));
  console.log(r.log.join('\n'));
  console.log(r.failure ? explain(family, r) : `seed ${seed} passed: ${r.steps} steps, ${r.opsDone} ops done, ${r.opsFailed} failed`);
  process.exit(r.failure ? 1 : 0);
}

for (const family of ['calm', 'evict', 'faults'] as Family[]) {
  test(`${family}: ${PER_FAMILY} seeded schedules keep single-writer and latest-value reads, and settle`, () => {
    const { results, failed } = runFamily(family);
    if (failed) assert.unreachable(explain(family, failed));
    const sum = (k: 'steps' | 'opsDone' | 'opsFailed' | 'syncCalls' | 'kills' | 'breaks' | 'resets' | 'drops') => results.reduce((a, r) => a + r[k], 0);
    console.log(`${family}: ${results.length} schedules, ${sum('steps')} steps, ${sum('opsDone')} ops done, ${sum('opsFailed')} failed, ${sum('syncCalls')} lock/barrier calls, ${sum('kills')} kills, ${sum('breaks')} sessions lost, ${sum('resets')} connections reset and resumed, ${sum('drops')} sessions dropped for want of an answer (random seeds from ${base})`);
    // The schedules must exercise what the family is about, or they prove nothing.
    assert.ok(sum('opsDone') > results.length * 10, 'apps got their accesses done');
    assert.ok(sum('syncCalls') > results.length * 5, 'apps took locks (and met at barriers)');
    const firstTouch = results.filter((r) => optionsFor(r.seed, family).firstTouch).length;
    assert.ok(firstTouch > results.length / 5 && firstTouch < results.length, `both placements ran (${firstTouch} first-touch)`);
    if (family === 'faults') {
      assert.ok(sum('kills') > 0 && sum('breaks') > 0 && sum('resets') > 0, 'nodes died, sessions were lost, connections reset');
      assert.ok(sum('opsFailed') > 0, 'some accesses failed because their home was unreachable');
    } else {
      assert.is(sum('opsFailed'), 0, 'no access fails without faults');
    }
  });
}

for (const family of ['release', 'release-faults'] as Family[]) {
  test(`${family}: ${PER_FAMILY} seeded schedules of data-race-free apps read what happens before, lose nothing synchronized, and settle`, () => {
    const { results, failed } = runFamily(family);
    if (failed) assert.unreachable(explain(family, failed));
    const sum = (k: 'steps' | 'opsDone' | 'opsFailed' | 'syncCalls' | 'kills' | 'breaks' | 'handoffs') => results.reduce((a, r) => a + r[k], 0);
    console.log(`${family}: ${results.length} schedules, ${sum('steps')} steps, ${sum('opsDone')} accesses done, ${sum('opsFailed')} failed, ${sum('handoffs')} reads of another node's writes, ${sum('syncCalls')} lock/barrier/flush calls, ${sum('kills')} kills, ${sum('breaks')} broken links (random seeds from ${base})`);
    assert.ok(sum('opsDone') > results.length * 20, 'apps got their accesses done');
    assert.ok(sum('handoffs') > results.length, 'words written on one node were read on others');
    assert.ok(sum('syncCalls') > results.length * 10, 'apps took locks (and met at barriers)');
    if (family === 'release-faults') assert.ok(sum('kills') > 0 && sum('breaks') > 0 && sum('opsFailed') > 0, 'nodes died, links broke, accesses failed');
    else assert.is(sum('opsFailed'), 0, 'no access fails without faults');
  });
}

// The checker must be able to fail: with the protocol broken on purpose, it says so.
function failsWhenBroken(target: object, method: string, broken: (...args: any[]) => unknown, expected: RegExp, family: Family = 'evict', seeds = 200): void {
  const proto = target as Record<string, unknown>;
  const original = proto[method];
  proto[method] = broken;
  try {
    let failure: string | undefined;
    for (let seed = 1; seed <= seeds && failure === undefined; seed++) failure = new Simulation(seed, optionsFor(seed, family)).run().failure;
    assert.ok(failure !== undefined, `no schedule noticed the broken ${method}`);
    assert.match(failure!, expected);
  } finally {
    proto[method] = original;
  }
}

test('the checker catches a cache that forgets to write dirty pages back', () => {
  failsWhenBroken(CacheController.prototype, 'saveDirty', () => ({ flags: 0 }), /the latest write was/);
});

test('the checker catches a home that grants M without invalidating readers', () => {
  failsWhenBroken(HomeDirectory.prototype, 'start', function (this: any, page: number, r: { from: number; op: number }) {
    this.grant(page, r.from, r.op);
  }, /is Modified at node \d+ and Shared at|Modified at nodes/);
});

const SYNC_LOST = /a synchronized write is lost/;

test('the checker catches a synchronization that returns before the writes are home', () => {
  failsWhenBroken(CacheController.prototype, 'release', (done: () => void) => done(), SYNC_LOST, 'faults', 1500);
});

test('the checker catches a synchronization that does not fence the homes it handed data to', () => {
  const release = CacheController.prototype.release;
  failsWhenBroken(CacheController.prototype, 'release', function (this: any, done: () => void) {
    this.handedOff.clear();
    release.call(this, done);
  }, SYNC_LOST, 'faults', 3000);
});

test('the checker catches a synchronization that succeeds after writes were lost', () => {
  failsWhenBroken(LossLog.prototype, 'note', () => undefined, SYNC_LOST, 'faults', 1500);
});

test('the checker catches a restarted home that serves pages before their owners report', () => {
  failsWhenBroken(HomeDirectory.prototype, 'recover', () => undefined, /the latest write was|is Modified at node \d+ and Shared at/, 'faults', 1500);
});

test('the checker catches a lock home that passes on the locks of a node cut off before that node can know', () => {
  const peerDown = (SyncNode.prototype as any).peerDown;
  failsWhenBroken(SyncNode.prototype, 'peerDown', function (this: any, peer: number) {
    peerDown.call(this, peer, true); // as if every lost peer's process were known to be gone
  }, /lock L\d granted to app \S+ while app \S+ holds it/, 'faults', 3000); // a rare race: a break while a lock is held and waited for
});

test('the checker catches a barrier that releases before every party arrived', () => {
  failsWhenBroken(SyncService.prototype, 'barrier', function (this: any, _party: unknown, _name: string, _parties: number, done: () => void) {
    done();
  }, /barrier round \d+ released app \S+ before app \S+ arrived/);
});

// Release consistency: each mechanism that makes a stale copy go, or keeps a write, taken away.
const STALE = /read \S+ from word \d+, but the last write before it wrote/;

test('the checker catches lock grants and barrier releases that carry no write notices', () => {
  failsWhenBroken(NoticeRelay.prototype, 'incoming', () => undefined, STALE, 'release', 200);
});

test('the checker catches notices that an acquirer does not pass on (A unlocks L1, B locks L1 and unlocks L2, C locks L2: C must see A\'s writes)', () => {
  failsWhenBroken(ReleaseCache.prototype, 'acquire', function (this: any, notices: Array<[number, number]>) {
    for (const [page, version] of notices) if (this.state[page] !== 0 && this.have[page] < version) this.invalidate(page); // what it heard is not kept, so not told on
  }, STALE, 'release', 1000);
});

test('the checker catches diffs that carry unchanged words (two writers of one page undo each other)', () => {
  const sendDiff = (ReleaseCache.prototype as any).sendDiff;
  failsWhenBroken(ReleaseCache.prototype, 'sendDiff', function (this: any, page: number, _diff: unknown, snap: Uint8Array) {
    sendDiff.call(this, page, 'whole', snap);
  }, STALE, 'release', 200);
});

test('the checker catches a release that returns before its diffs are in their master copies', () => {
  const release = ReleaseCache.prototype.release;
  failsWhenBroken(ReleaseCache.prototype, 'release', function (this: ReleaseCache, done: () => void) {
    release.call(this, () => undefined);
    done();
  }, STALE, 'release-faults', 200);
});

test('the checker catches a lock home whose notices do not outlive its process', () => {
  failsWhenBroken(PROTOCOLS, 'release', (c: ProtocolContext) => {
    const kept = new Uint32Array(c.pages);
    return new ReleaseProtocol({ ...c, notices: { read: (page) => kept[page]!, write: (page, v) => (kept[page] = v) } });
  }, STALE, 'release-faults', 1500);
});

test.run();
