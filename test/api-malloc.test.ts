// malloc/free/lookup through the public API, with real app processes on one node: blocks
// from different apps never overlap, named blocks are found by every app, alignment,
// 'local' memory, every error, and the heap surviving a node restart.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCluster, type TestApp } from './helpers/cluster.js';
import { extentOf } from '../src/api/heap-space.js';

const MiB = 1 << 20;
const PAGE = 4096;

/** Blocks listed by an app, checked pairwise for overlap (extents as the heap rounds them). */
async function checkDisjoint(app: TestApp): Promise<Array<Record<string, any>>> {
  const list = (await app.cmd({ op: 'blocks' })) as unknown as Array<Record<string, any>>;
  for (let i = 1; i < list.length; i++) {
    const prev = list[i - 1]!;
    assert.ok(prev.offset + extentOf(prev.length, PAGE) <= list[i]!.offset, `blocks at ${prev.offset} and ${list[i]!.offset} overlap`);
  }
  return list;
}

test('apps allocate, look up and free blocks; no block overwrites another', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: 2 * MiB }] });
  try {
    const [a, b, d] = await Promise.all([c.app(1, 'data'), c.app(1, 'data'), c.app(1, 'data')]);
    const owned = new Map<TestApp, Array<Record<string, any>>>([[a, []], [b, []], [d, []]]);
    const malloc = async (app: TestApp, bytes: number, name?: string) => {
      const block = await app.cmd({ op: 'malloc', bytes, name });
      assert.is(block.error, undefined, block.error);
      await app.cmd({ op: 'fill', offset: block.offset, length: bytes, seed: block.serial });
      owned.get(app)!.push(block);
      return block;
    };
    const a1 = await malloc(a, 100, 'a1');
    const a2 = await malloc(a, 5000, 'a2');
    await malloc(a, 64);
    await malloc(b, 3 * PAGE + 1, 'b1');
    const b2 = await malloc(b, 1, 'b2');
    await malloc(d, PAGE, 'd1');
    assert.equal(await d.cmd({ op: 'lookup', name: 'a1' }), { offset: a1.offset, length: 100, name: 'a1', home: 'spread', serial: a1.serial });
    assert.is((await b.cmd({ op: 'lookup', name: 'd1' })).length, PAGE);

    assert.equal(await a.cmd({ op: 'free', offset: a2.offset, by: 'block' }), { freed: a2.offset });
    owned.set(a, owned.get(a)!.filter((x) => x !== a2));
    const b3 = await malloc(b, 5000, 'b3');
    assert.is(b3.offset, a2.offset, 'first fit takes the freed pages again');
    assert.equal(await d.cmd({ op: 'free', offset: b2.offset }), { freed: b2.offset }, 'any app may free any block');
    owned.set(b, owned.get(b)!.filter((x) => x !== b2));
    assert.is((await a.cmd({ op: 'lookup', name: 'b2' })).code, 'ENOENT');

    for (const [app, list] of owned) {
      for (const block of list) {
        assert.equal(await app.cmd({ op: 'check', offset: block.offset, length: block.length, seed: block.serial }), { bad: 0, firstBad: -1 }, `block ${block.name ?? block.offset}`);
      }
    }
    const live = await checkDisjoint(d);
    assert.equal(live.map((x) => x.name), ['a1', undefined, 'b3', 'b1', 'd1']);
    const stats = await a.cmd({ op: 'heap-stats' });
    assert.equal(
      { blocks: stats.blocks, used: stats.used, start: stats.start, bytes: stats.bytes },
      { blocks: 5, used: 128 + 64 + PAGE + 2 * PAGE + 4 * PAGE, start: (2 * MiB) / 64, bytes: 2 * MiB - (2 * MiB) / 64 },
    );
  } finally {
    await c.close();
  }
});

test('one app\'s mallocs at once are served one after the other', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  try {
    const a = await c.app(1, 'data');
    const blocks = await Promise.all([1, 2, 3, 4].map((k) => a.cmd({ op: 'malloc', bytes: k * 1000, name: `n${k}` })));
    assert.equal(blocks.map((b) => b.error), [undefined, undefined, undefined, undefined]);
    assert.is(new Set(blocks.map((b) => b.offset)).size, 4);
    await checkDisjoint(a);
  } finally {
    await c.close();
  }
});

test('alignment: 64-byte units within one page below a page, whole aligned pages from a page up', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  try {
    const a = await c.app(1, 'data');
    const sizes = [1, 63, 64, 65, 100, 4000, 4032, 4033, 4095, 4096, 4097, 3 * PAGE + 1, 7, 2000];
    const offsets: number[] = [];
    for (const bytes of sizes) {
      const { offset } = await a.cmd({ op: 'malloc', bytes });
      offsets.push(offset);
      assert.is(offset % 64, 0, `${bytes} bytes at ${offset}`);
      if (bytes >= 4033) assert.is(offset % PAGE, 0, `${bytes} bytes at ${offset}: page-aligned`);
      else assert.is(Math.floor(offset / PAGE), Math.floor((offset + bytes - 1) / PAGE), `${bytes} bytes at ${offset}: within one page`);
    }
    const start = MiB / 64;
    assert.equal(offsets.slice(0, 5), [start, start + 64, start + 128, start + 192, start + 320], 'small blocks pack into 64-byte units');
    await checkDisjoint(a);
  } finally {
    await c.close();
  }
});

test("'local' blocks lie in the ranges the node says are homed on its host; first-touch has none", async () => {
  const c = await makeCluster({
    regions: [{ name: 'data', size: MiB }, { name: 'spread', size: MiB, placement: 'interleave' }, { name: 'touch', size: MiB, placement: 'first-touch' }],
  });
  try {
    for (const region of ['data', 'spread']) {
      const a = await c.app(1, region);
      assert.equal(a.hello.localRanges, [[0, MiB]], 'one node: every page is homed on its host');
      for (const bytes of [10, PAGE, 5 * PAGE]) {
        const { offset, home } = await a.cmd({ op: 'malloc', bytes, home: 'local' });
        assert.is(home, 'local');
        assert.ok(a.hello.localRanges.some(([from, to]: number[]) => from! <= offset && offset + bytes <= to!), `${region}: ${bytes} bytes at ${offset}`);
      }
      assert.is((await a.cmd({ op: 'malloc', bytes: MiB, home: 'local' })).code, 'EINVAL', 'larger than the heap homed here');
    }
    const t = await c.app(1, 'touch');
    assert.equal(t.hello.localRanges, []);
    const r = await t.cmd({ op: 'malloc', bytes: 10, home: 'local' });
    assert.is(r.code, 'EINVAL');
    assert.match(r.error, /Region 'touch' has placement 'first-touch': a page gets its home when a node first touches it, so no memory is homed on host 'h1' in advance\. Use home: 'spread'/);
    assert.is((await t.cmd({ op: 'malloc', bytes: 10 })).error, undefined);
  } finally {
    await c.close();
  }
});

test('every error is a code and a sentence to act on', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }, { name: 'tiny', size: 64 * 1024 }] });
  try {
    const [a, b] = await Promise.all([c.app(1, 'data'), c.app(1, 'data')]);
    const fails = async (app: TestApp, cmd: Record<string, unknown>, code: string, message: RegExp) => {
      const r = await app.cmd(cmd);
      assert.is(r.code, code, `${JSON.stringify(cmd)}: ${JSON.stringify(r)}`);
      assert.match(r.error, message);
    };
    // EINVAL: bad arguments.
    await fails(a, { op: 'malloc', bytes: 0 }, 'EINVAL', /Expected a positive integer for bytes but received 0 of type number/);
    await fails(a, { op: 'malloc', bytes: 1.5 }, 'EINVAL', /positive integer for bytes/);
    await fails(a, { op: 'malloc', bytes: 8, name: '' }, 'EINVAL', /Expected a non-empty string of at most 32 UTF-8 bytes for name/);
    await fails(a, { op: 'malloc', bytes: 8, name: 'x'.repeat(33) }, 'EINVAL', /at most 32 UTF-8 bytes for name/);
    await fails(a, { op: 'malloc', bytes: 8, home: 'far' }, 'EINVAL', /Expected 'local' or 'spread' for home but received 'far'/);
    await fails(a, { op: 'free', offset: -4 }, 'EINVAL', /non-negative integer for offset/);
    await fails(a, { op: 'lock', name: 'naplus.heap:data' }, 'EINVAL', /Lock name 'naplus.heap:data' is reserved/);
    // EEXIST, ENOENT: names.
    const m = await a.cmd({ op: 'malloc', bytes: 100, name: 'matrix' });
    await fails(b, { op: 'malloc', bytes: 8, name: 'matrix' }, 'EEXIST', new RegExp(`A block 'matrix' at offset ${m.offset} \\(100 bytes\\) exists already in region 'data': look it up with lookup\\('matrix'\\), or free it first`));
    await fails(b, { op: 'lookup', name: 'matrx' }, 'ENOENT', /No block named 'matrx' in region 'data' \(its named blocks are 'matrix'\); name a block with malloc\(bytes, \{ name \}\)/);
    // EDOUBLEFREE: by the Block, by its offset, from another app.
    await a.cmd({ op: 'free', offset: m.offset, by: 'block' });
    const again = new RegExp(`The block 'matrix' at offset ${m.offset} \\(100 bytes\\) in region 'data' was freed already \\(double free\\)`);
    await fails(a, { op: 'free', offset: m.offset, by: 'block' }, 'EDOUBLEFREE', again);
    await fails(a, { op: 'free', offset: m.offset }, 'EDOUBLEFREE', again);
    await fails(b, { op: 'free', offset: m.offset }, 'EDOUBLEFREE', again);
    await fails(a, { op: 'lookup', name: 'matrix' }, 'ENOENT', /it has no named blocks/);
    // ERANGE: offsets that are not the start of a live block.
    const p = await a.cmd({ op: 'malloc', bytes: 2 * PAGE });
    await fails(a, { op: 'free', offset: MiB }, 'ERANGE', /Bad offset: 1048576 is outside region 'data' of 1048576 bytes/);
    await fails(a, { op: 'free', offset: 0 }, 'ERANGE', /Bad offset: 0 is in the heap's metadata area \[0, 16384\) of region 'data', not a block/);
    await fails(a, { op: 'free', offset: p.offset + 64 }, 'ERANGE', new RegExp(`is inside the block at offset ${p.offset} \\(8192 bytes\\), not at its start; free\\(${p.offset}\\) frees that block`));
    await fails(a, { op: 'free', offset: p.offset + 4 * PAGE }, 'ERANGE', /no live block starts at offset/);
    // ENOMEM: asked for more than there is, then for more than is left.
    await fails(a, { op: 'malloc', bytes: MiB }, 'ENOMEM', /malloc\(1048576\) needs 1048576 bytes, more than the whole heap \(1032192 bytes after the metadata\); use a larger region/);
    const stats = await a.cmd({ op: 'heap-stats' });
    assert.is(stats.largestFree, stats.free, 'one free extent after the block');
    await a.cmd({ op: 'malloc', bytes: stats.largestFree - 2 * PAGE });
    await fails(b, { op: 'malloc', bytes: 3 * PAGE }, 'ENOMEM', /^Out of memory in region 'data': malloc\(12288\) needs 12288 bytes of whole pages, but the largest free extent is 8192 bytes \(8192 bytes free\)\. Free some blocks, or use a larger region$/);
    // ENOMEM: the table of block records is full (64 KiB region: one page of metadata, 63 records).
    const t = await c.app(1, 'tiny');
    for (let i = 0; i < 63; i++) assert.is((await t.cmd({ op: 'malloc', bytes: 1 })).error, undefined);
    await fails(t, { op: 'malloc', bytes: 1 }, 'ENOMEM', /The heap of region 'tiny' has no free block record: all 63 hold live blocks\. Free some blocks, or allocate fewer, larger ones/);
  } finally {
    await c.close();
  }
});

test('the heap survives a node restart', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  try {
    const a = await c.app(1, 'data');
    const kept = await a.cmd({ op: 'malloc', bytes: 3 * PAGE, name: 'kept' });
    await a.cmd({ op: 'fill', offset: kept.offset, length: 3 * PAGE, seed: 5 });
    const gone = await a.cmd({ op: 'malloc', bytes: 100, name: 'gone' });
    await a.cmd({ op: 'free', offset: gone.offset });
    assert.is(await c.stopNode(1), 0);
    await c.start(1);
    const b = await c.app(1, 'data');
    assert.equal(await b.cmd({ op: 'lookup', name: 'kept' }), kept);
    assert.equal(await b.cmd({ op: 'check', offset: kept.offset, length: 3 * PAGE, seed: 5 }), { bad: 0, firstBad: -1 });
    assert.is((await b.cmd({ op: 'lookup', name: 'gone' })).code, 'ENOENT');
    assert.is((await b.cmd({ op: 'heap-stats' })).blocks, 1);
  } finally {
    await c.close();
  }
});

test.run();
