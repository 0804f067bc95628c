// Where the heap puts blocks, without processes: the byte ranges a node tells its apps
// are homed on its host (for layouts of several hosts, which no running cluster can
// have yet), the alignment rule, 'local' blocks on interleaved and block layouts, and
// what the metadata looks like after an operation that never committed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeLocalCluster } from '../src/local-cluster.js';
import { loadConfig, type Placement } from '../src/config.js';
import { RegionLayout } from '../src/node/layout.js';
import { repeatRuns } from '../src/client/attach.js';
import { Heap, type HeapRegion } from '../src/api/heap.js';
import { extentOf, firstFit } from '../src/api/heap-space.js';
import { HeapTable, metadataBytes } from '../src/api/heap-table.js';

const PAGE = 4096;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-placement-'));

async function layout(hosts: number, nodesPerHost: number, placement: Placement, pages: number): Promise<RegionLayout> {
  const files = await writeLocalCluster({ name: `p${hosts}${nodesPerHost}${placement}`, dir: path.join(dir, `${hosts}-${nodesPerHost}-${placement}`), hosts, nodesPerHost, regions: [{ name: 'data', size: pages * PAGE, placement }] });
  const config = loadConfig(files.configPath);
  return new RegionLayout(config, config.regions[0]!);
}

/** The ranges homed on `host`, page by page: what the period-and-runs form must expand to. */
function byPage(l: RegionLayout, host: string): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (let p = 0; p < l.pages; p++) {
    if (l.hostOfNodeId(l.home[p]!) !== host) continue;
    if (ranges.at(-1)?.[1] === p * PAGE) ranges.at(-1)![1] += PAGE;
    else ranges.push([p * PAGE, (p + 1) * PAGE]);
  }
  return ranges;
}

/** A heap over plain memory, as an app of `host` in `l` would have it (the lock is a no-op: one process). */
function heapOn(l: RegionLayout, host: string): Heap {
  const size = l.region.size;
  const memory = new ArrayBuffer(size);
  const region: HeapRegion = {
    name: 'data',
    info: {
      op: 'welcome', region: 'data', size, pageSize: PAGE, nodeId: 1, host, cluster: 'c', placement: l.region.placement,
      local: l.homedOn(host), liveness: { heartbeatMs: 1000, timeoutMs: 5000 },
    },
    buffer: memory,
    localRanges: repeatRuns(l.homedOn(host), size),
    view: (offset, length) => memory.slice(offset, offset + length),
    call: async <T>() => undefined as T,
  };
  return new Heap(region);
}

async function rejects(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.is((err as { code: string }).code, code, (err as Error).message);
    assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`no ${code}`);
}

test('a node describes its host\'s ranges in one period; repeated, they are every page homed there', async () => {
  for (const [hosts, perHost, placement, pages] of [[2, 1, 'interleave', 37], [2, 2, 'interleave', 64], [3, 2, 'block', 50], [1, 3, 'interleave', 10]] as const) {
    const l = await layout(hosts, perHost, placement, pages);
    for (let h = 1; h <= hosts; h++) {
      const host = `h${h}`;
      assert.equal(repeatRuns(l.homedOn(host), pages * PAGE), byPage(l, host), `${hosts}x${perHost} ${placement} ${host}`);
      assert.ok(l.homedOn(host).runs.length <= perHost * hosts, 'the message stays short');
    }
  }
});

test('sizes and alignment: units below a page, whole pages from there; small blocks stay in one page', () => {
  assert.equal([1, 64, 65, 4032, 4033, 4096, 4097].map((b) => extentOf(b, PAGE)), [64, 64, 128, 4032, 4096, 4096, 8192]);
  assert.is(firstFit([[64, 8192]], 128, PAGE), 64);
  assert.is(firstFit([[4032, 8192]], 128, PAGE), 4096, 'a 128-byte block at 4032 would cross into the next page');
  assert.is(firstFit([[64, 12288]], 8192, PAGE), 4096, 'page-aligned');
  assert.is(firstFit([[64, 8192]], 8192, PAGE), undefined);
});

test("'local' blocks: within the host's pages, EINVAL when no run of them is long enough, ENOMEM when they are used up", async () => {
  const l = await layout(2, 1, 'interleave', 64);
  const heap = heapOn(l, 'h2');
  const ranges = repeatRuns(l.homedOn('h2'), 64 * PAGE);
  const inside = (offset: number, length: number) => ranges.some(([a, b]) => a <= offset && offset + length <= b);
  const small = await heap.malloc(100, { home: 'local' });
  assert.ok(inside(small.offset, 100), `offset ${small.offset} is homed on h2`);
  const page = await heap.malloc(PAGE, { home: 'local' });
  assert.ok(inside(page.offset, PAGE));
  await rejects(heap.malloc(PAGE + 1, { home: 'local' }), 'EINVAL',
    /A 'local' block of 4097 bytes cannot exist in region 'data': it needs 8192 bytes of consecutive pages homed on host 'h2', but the longest run of heap pages homed there is 4096 bytes \(placement 'interleave' puts consecutive pages on different nodes\)\. Use home: 'spread', or 'local' blocks of at most 4096 bytes/);
  const spread = await heap.malloc(3 * PAGE);
  assert.is(spread.offset, 4 * PAGE, "'spread' blocks take any pages (pages 4-6, homed on h1, h2, h1)");
  // h2 has the 32 odd pages; three hold the blocks above, and 3968 bytes of page 1 are free.
  for (let i = 0; i < 29; i++) assert.ok(inside((await heap.malloc(PAGE, { home: 'local' })).offset, PAGE));
  await rejects(heap.malloc(PAGE, { home: 'local' }), 'ENOMEM',
    /^Out of memory homed on host 'h2' in region 'data': malloc\(4096, \{ home: 'local' \}\) needs 4096 bytes of whole pages, but the largest free extent homed on host 'h2' is 3968 bytes \(3968 bytes free homed on host 'h2'\)\. Free blocks homed there, or use home: 'spread' to take memory anywhere$/);
  const stats = await heap.stats();
  assert.ok(stats.free > 20 * PAGE, "h1's pages are still free");

  const blockLayout = await layout(2, 1, 'block', 64);
  const second = await heapOn(blockLayout, 'h2').malloc(2 * PAGE, { home: 'local' });
  assert.is(second.offset, 32 * PAGE, "with 'block' placement h2's pages are the second half");
});

test('a malloc that never committed leaves no block, no name and no memory taken', async () => {
  const l = await layout(1, 1, 'block', 64);
  const heap = heapOn(l, 'h1');
  const kept = await heap.malloc(1000, { name: 'kept' });
  const ghost = heap.prepare(heap.scan(), 5000, 'spread', 'ghost');
  await rejects(heap.lookup('ghost'), 'ENOENT', /No block named 'ghost' in region 'data' \(its named blocks are 'kept'\)/);
  const next = await heap.malloc(5000, { name: 'ghost' });
  assert.is(next.offset, ghost.offset, 'the memory it was writing is free');
  assert.equal((await heap.blocks()).map((b) => b.name), ['kept', 'ghost']);
  await heap.free(kept);
  await heap.free(next);
  const stats = await heap.stats();
  assert.equal({ used: stats.used, freeExtents: stats.freeExtents, largestFree: stats.largestFree }, { used: 0, freeExtents: 1, largestFree: 64 * PAGE - metadataBytes(64 * PAGE, PAGE) });
});

test('a heap header with its magic but the wrong shape or version is reported, never formatted over', () => {
  const memory = new ArrayBuffer(64 * PAGE);
  const table = new HeapTable(memory, 64 * PAGE, PAGE);
  table.open('data'); // formats
  const words = new Uint32Array(memory);
  assert.is(words[0], 0x5048504e, 'the magic is the last word a format writes');
  new Float64Array(memory, 8, 1)[0] = 32 * PAGE;
  assert.throws(() => table.open('data'), (e: Error & { code: string }) => e.code === 'EBADMSG' && /damaged or belongs to another region shape \(size, page size, capacity, start: 131072, 4096, 63, 4096\); was it overwritten through view\(\)\?/.test(e.message));
  words[1] = 9;
  assert.throws(() => table.open('data'), (e: Error & { code: string }) => e.code === 'ENOTSUP' && /metadata version 9; this Naplus reads version 1/.test(e.message));
  assert.is(words[0], 0x5048504e);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
