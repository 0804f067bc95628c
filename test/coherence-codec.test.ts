// Coherence messages on the wire: what goes in comes out, in order, cut to the size cap;
// and every field a peer could get wrong is refused with EPROTO before anything uses it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CoherenceCodec, COHERENCE_TYPE } from '../src/coherence/codec.js';
import { Flag, LAST_OP, Op, type Msg } from '../src/coherence/protocol.js';
import type { NaplusError } from '../src/errors.js';

const regions = [{ pages: 100, pageSize: 4096, slots: 60 }, { pages: 10, pageSize: 8192, slots: 10 }];
const codec = new CoherenceCodec(regions, [1, 2, 7], 4096, 2 * 8192);
const page = (size: number, fill: number) => new Uint8Array(size).fill(fill);

test('messages round-trip in order, with their data, slots and homes; a big batch is cut at the cap', () => {
  const msgs: Msg[] = [
    { op: Op.GetS, flags: 0, region: 0, page: 5, slot: 59 },
    { op: Op.GrantM, flags: Flag.Data, region: 1, page: 9, data: page(8192, 7) },
    { op: Op.Ack, flags: Flag.Data | Flag.Kept, region: 0, page: 99, data: page(4096, 1), slot: 3 },
    { op: Op.Here, flags: 0, region: 0, page: 4, home: 7, slot: 0 },
    { op: Op.GrantS, flags: Flag.Data, region: 1, page: 0, data: page(8192, 9) },
    { op: Op.Inv, flags: 0, region: 1, page: 3 },
    { op: Op.Diff, flags: 0, region: 0, page: 7, slot: 2, version: 41, extra: Buffer.from([1, 0, 0, 0, 2, 0, 0, 0, 9, 9, 9, 9, 8, 8, 8, 8]) },
    { op: Op.Diffed, flags: Flag.Current, region: 0, page: 7, version: 42 },
  ];
  const wire = codec.encode(msgs);
  assert.is(wire.length, 2, '20 KiB of page data does not fit one message of at most 16 KiB');
  const back = wire.flatMap((m) => codec.decode(m));
  assert.is(back.length, msgs.length);
  back.forEach((m, i) => {
    const want = msgs[i]!;
    const norm = (x: Msg) => ({ ...x, data: x.data && Buffer.from(x.data), extra: x.extra && Buffer.from(x.extra) });
    assert.equal(norm(m), norm(want));
  });
});

test("each data page is charged its share of the wire bytes its message's pages took", () => {
  const [message] = codec.encode([
    { op: Op.GrantS, flags: Flag.Data, region: 0, page: 1, data: page(4096, 1) },
    { op: Op.Inv, flags: 0, region: 0, page: 2 },
    { op: Op.GrantS, flags: Flag.Data, region: 1, page: 3, data: page(8192, 2) },
  ]);
  const got = codec.decode({ ...message!, pageWireBytes: 300 }); // 3 transport pages
  assert.equal(got.map((m) => m.wireBytes), [100, undefined, 200]);
});

function refused(body: Buffer, pages: Array<{ page: number; data: Uint8Array }> | undefined, pattern: RegExp): void {
  try {
    codec.decode({ type: COHERENCE_TYPE, body, pages });
    assert.unreachable('decoded');
  } catch (err) {
    assert.is((err as NaplusError).code, 'EPROTO');
    assert.match((err as Error).message, pattern);
  }
}

function op(fields: { op?: number; flags?: number; region?: number; page?: number; slot?: number; home?: number; extra?: number }, trailing = 0): Buffer {
  const b = Buffer.alloc(4 + 24 + trailing);
  b.writeUInt32LE(1, 0);
  b[4] = fields.op ?? Op.GetS;
  b[5] = fields.flags ?? 0;
  b.writeUInt16LE(fields.region ?? 0, 6);
  b.writeUInt32LE(fields.page ?? 0, 8);
  b.writeUInt32LE(fields.slot ?? 0xffffffff, 12);
  b.writeUInt16LE(fields.home ?? 0, 16);
  b.writeUInt32LE(fields.extra ?? 0, 24);
  return b;
}

test('every bad field is refused with EPROTO, naming it', () => {
  refused(Buffer.alloc(0), undefined, /not a count and a list of 24-byte ops/);
  refused(Buffer.alloc(4), undefined, /not a count and a list of 24-byte ops/);
  refused(op({}).subarray(0, 27), undefined, /not a count and a list of 24-byte ops/);
  refused(op({ op: 0 }), undefined, /coherence op 0/);
  refused(op({ op: LAST_OP + 1 }), undefined, new RegExp(`coherence op ${LAST_OP + 1}`));
  refused(op({ flags: 32 }), undefined, /coherence flags 32/);
  refused(op({ op: Op.Diff, extra: 9 }, 8), undefined, /an op with 9 extra bytes where 8 are left/);
  refused(op({ op: Op.Diff, extra: 4 }, 8), undefined, /4 body byte\(s\) no op calls for/);
  refused(op({ region: 2 }), undefined, /region #2 \(the cluster file has 2\)/);
  refused(op({ page: 100 }), undefined, /page 100 of region #0, which has 100/);
  refused(op({ slot: 60 }), undefined, /slot 60 for a page of region #0, whose areas have 60 slots/);
  refused(op({ op: Op.Here, home: 3 }), undefined, /home node 3, which is not in the cluster file/);
  refused(op({ op: Op.GrantS, flags: Flag.Data }), undefined, /call for more page data than the 0 pages sent/);
  refused(op({ op: Op.GrantS, flags: Flag.Data, region: 1 }), [{ page: 0, data: page(4096, 1) }], /more page data than the 1 pages/);
  refused(op({}), [{ page: 0, data: page(4096, 1) }], /1 page\(s\) of data no op calls for/);
});

test.run();
