// An app killed (SIGKILL) while it holds the heap lock, in the middle of an operation:
// the app waiting for the lock is told EOWNERDEAD, takes the lock again, and finds the
// heap consistent, with nothing of the unfinished operation in it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCluster, type TestApp } from './helpers/cluster.js';

const MiB = 1 << 20;
const PAGE = 4096;

/**
 * Sends `cmd` to `waiter` while `holder` has the heap lock, makes sure the waiter is
 * queued for the lock, kills the holder and resolves with the waiter's reply. A heap
 * operation asks for the lock one microtask after its command is read, so a command
 * read in the same chunk of stdin may overtake it; a command sent after that one's
 * answer cannot, and the node serves an app's requests in order.
 */
async function afterHolderKilled(holder: TestApp, waiter: TestApp, cmd: Record<string, unknown>): Promise<Record<string, any>> {
  let answered = false;
  const reply = waiter.cmd(cmd).then((r) => {
    answered = true;
    return r;
  });
  await waiter.cmd({ op: 'stats' });
  await waiter.cmd({ op: 'stats' });
  assert.is(answered, false, 'the waiter waits for the heap lock');
  holder.child.kill('SIGKILL');
  assert.is(await holder.exited, null);
  return reply;
}

test('killed between writing a block record and committing it: no block, no name, the memory free', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  try {
    const [holder, waiter, other] = await Promise.all([c.app(1, 'data'), c.app(1, 'data'), c.app(1, 'data')]);
    const kept = await other.cmd({ op: 'malloc', bytes: 1000, name: 'kept' });
    await other.cmd({ op: 'fill', offset: kept.offset, length: 1000, seed: 11 });
    const freed = await other.cmd({ op: 'malloc', bytes: 200 });
    await other.cmd({ op: 'free', offset: freed.offset }); // its record is the one the holder reuses
    assert.equal(await holder.cmd({ op: 'heap-lock' }), { locked: true });
    const ghost = await holder.cmd({ op: 'heap-prepare', bytes: 3 * PAGE, name: 'ghost' });
    assert.is(ghost.error, undefined, ghost.error);

    const next = await afterHolderKilled(holder, waiter, { op: 'malloc', bytes: 3 * PAGE, name: 'next' });
    assert.is(next.error, undefined, next.error);
    assert.is(next.offset, ghost.offset, 'the memory the killed app was taking is free');
    assert.is((await other.cmd({ op: 'lookup', name: 'ghost' })).code, 'ENOENT');
    assert.equal((await other.cmd({ op: 'blocks' })).map((b: { name?: string }) => b.name), ['kept', 'next']);
    assert.equal(await other.cmd({ op: 'check', offset: kept.offset, length: 1000, seed: 11 }), { bad: 0, firstBad: -1 });
    // The name the dead app was writing can be taken, and everything freed leaves one extent.
    const again = await other.cmd({ op: 'malloc', bytes: 10, name: 'ghost' });
    for (const b of [kept, next, again]) assert.equal(await other.cmd({ op: 'free', offset: b.offset }), { freed: b.offset });
    const stats = await other.cmd({ op: 'heap-stats' });
    assert.equal({ blocks: stats.blocks, freeExtents: stats.freeExtents, largestFree: stats.largestFree }, { blocks: 0, freeExtents: 1, largestFree: stats.bytes });
  } finally {
    await c.close();
  }
});

test('killed while formatting the heap: the next app formats it again', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  try {
    const [holder, waiter] = await Promise.all([c.app(1, 'data'), c.app(1, 'data')]);
    assert.equal(await holder.cmd({ op: 'heap-lock' }), { locked: true });
    // Every header and record byte written but the magic word, the format's commit.
    await holder.cmd({ op: 'fill', offset: 4, length: 2 * PAGE, seed: 3 });
    const first = await afterHolderKilled(holder, waiter, { op: 'malloc', bytes: 100, name: 'first' });
    assert.is(first.error, undefined, first.error);
    assert.is(first.offset, MiB / 64, 'the first block after the metadata');
    const stats = await waiter.cmd({ op: 'heap-stats' });
    assert.equal({ blocks: stats.blocks, used: stats.used, maxBlocks: stats.maxBlocks }, { blocks: 1, used: 128, maxBlocks: MiB / 64 / 64 - 1 });
  } finally {
    await c.close();
  }
});

test.run();
