// One page, three guests: written in guest 1 (node 1, its home), then read in guest 2,
// which shares guest 1's host, and in guest 3 on the other host. The nodes' own fault
// counters (their control sockets' `stats`) show where each read was served from: guest
// 2 from the segment, guest 3 over TCP; and the host's file behind the ivshmem device
// holds the page where the layout puts it, so the data really crossed the device.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { loadConfig } from '../../src/config.js';
import { RegionLayout, planSegment } from '../../src/node/layout.js';
import { guestNodeStats } from '../../src/vm/guest-nodes.js';
import { makeGuestCluster, type GuestTestCluster } from './helpers/guest-cluster.js';

const MiB = 1 << 20;
const PAGE = 100;
const MARK = 0x5eed1234;

type Counters = { servedFromCache: number; servedFromSegment: number; servedFromRemote: number };
const counters = async (c: GuestTestCluster, id: number) =>
  (await guestNodeStats<{ regions: Record<string, Counters> }>(c.state, c.guestOf(id), c.cluster.socketDir)).regions.data!;
const delta = (a: Counters, b: Counters) => ({ segment: b.servedFromSegment - a.servedFromSegment, remote: b.servedFromRemote - a.servedFromRemote });

/** The u32 at the start of `page`'s slot in the file behind its home host's ivshmem device. */
function inSegmentFile(c: GuestTestCluster, page: number): number {
  const config = loadConfig(c.cluster.configPath);
  const layouts = config.regions.map((r) => new RegionLayout(config, r));
  const home = config.nodes.find((n) => n.id === layouts[0]!.home[page])!;
  const area = planSegment(layouts, home.host).areas.find((a) => a.name === 'data')!;
  const file = c.state.hosts.find((h) => h.name === home.host)!.segmentFile;
  const buf = Buffer.alloc(4);
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, buf, 0, 4, area.offset + layouts[0]!.slot[page]! * 4096);
  fs.closeSync(fd);
  return buf.readUInt32LE(0);
}

test('a page written in guest 1 is read by guest 2 through the segment and by guest 3 over TCP', async () => {
  const c = await makeGuestCluster({ hosts: 2, nodesPerHost: 2, regions: [{ name: 'data', size: 4 * MiB }] });
  try {
    const layout = new RegionLayout(loadConfig(c.cluster.configPath), loadConfig(c.cluster.configPath).regions[0]!);
    assert.is(layout.home[PAGE], 1, 'node 1 (guest g1) is the page\'s home');
    assert.equal([c.guestOf(1), c.guestOf(2), c.guestOf(3)].map((g) => c.state.guests.find((x) => x.name === g)!.host), ['h1', 'h1', 'h2']);
    const [a1, a2, a3] = await Promise.all([1, 2, 3].map((id) => c.app(id, 'data')));
    assert.equal(await a1!.cmd({ op: 'write-u32', index: (PAGE * 4096) / 4, value: MARK }), { ok: true });

    const before2 = await counters(c, 2);
    assert.equal(await a2!.cmd({ op: 'read-u32', index: (PAGE * 4096) / 4 }), { value: MARK }, 'guest 2 reads what guest 1 wrote');
    const by2 = delta(before2, await counters(c, 2));
    assert.ok(by2.segment >= 1 && by2.remote === 0, `node 2 served the read from its host's segment, nothing over TCP (${JSON.stringify(by2)})`);
    assert.is(inSegmentFile(c, PAGE), MARK, 'the page is in the file behind host h1\'s ivshmem device');

    const before3 = await counters(c, 3);
    assert.equal(await a3!.cmd({ op: 'read-u32', index: (PAGE * 4096) / 4 }), { value: MARK }, 'guest 3 reads what guest 1 wrote');
    const by3 = delta(before3, await counters(c, 3));
    assert.ok(by3.remote >= 1 && by3.segment === 0, `node 3 fetched the page over TCP, not from its own host's segment (${JSON.stringify(by3)})`);
  } finally {
    await c.close();
  }
});

test.run();
