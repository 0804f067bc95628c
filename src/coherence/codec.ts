// Coherence messages on the wire. The messages one node has for another in one tick
// travel together, in order, as one transport message:
//
//   body:  u32 n | n × (u8 op | u8 flags | u16 region | u32 page | u32 slot | u16 home | u16 0
//                        | u32 version | u32 extra bytes) | the extras, in op order
//          (integers LE; slot 0xffffffff and home 0 when absent)
//   pages: the data of every op flagged Data, in op order, each region page cut into
//          transport-sized pages (the transport zero-marks and LZ4-compresses them).
//
// Decoding checks every field against the cluster file (op, flags, region index, page
// number, data present exactly where flagged, extras adding up to the body) and throws
// EPROTO on anything amiss.
import { NaplusError } from '../errors.js';
import type { Message, PagePayload } from '../transport/index.js';
import { FIRST_OP, Flag, LAST_OP, type Msg, type Op } from './protocol.js';

export const COHERENCE_TYPE = 1;
const HEAD_BYTES = 4;
const OP_BYTES = 24;
const NO_SLOT = 0xffffffff;
const ALL_FLAGS = Flag.Data | Flag.Segment | Flag.Kept | Flag.Current | Flag.Failed;

export interface RegionShape {
  pages: number;
  pageSize: number;
  /** Page slots in a host's area of the segment (slots are below this). */
  slots: number;
}

export class CoherenceCodec {
  constructor(
    private readonly regions: RegionShape[],
    private readonly nodes: readonly number[],
    /** The transport's page size: every region's page size is a multiple of it. */
    private readonly wirePage: number,
    /** Most data bytes one transport message may carry. */
    private readonly maxDataBytes: number,
  ) {}

  /** Cuts `msgs` (in order) into as few transport messages as the size cap allows. */
  encode(msgs: Msg[]): Message[] {
    const out: Message[] = [];
    let from = 0;
    while (from < msgs.length) {
      let to = from;
      let bytes = 0;
      while (to < msgs.length) {
        const m = msgs[to]!;
        // Extras (diffs, operations) count too: a message must fit the transport's frame.
        const size = (m.flags & Flag.Data ? this.regions[m.region]!.pageSize : 0) + (m.extra?.length ?? 0);
        if (to > from && bytes + size > this.maxDataBytes) break;
        bytes += size;
        to++;
      }
      out.push(this.encodeRun(msgs, from, to));
      from = to;
    }
    return out;
  }

  private encodeRun(msgs: Msg[], from: number, to: number): Message {
    let extras = 0;
    for (let i = from; i < to; i++) extras += msgs[i]!.extra?.length ?? 0;
    const body = Buffer.allocUnsafe(HEAD_BYTES + (to - from) * OP_BYTES + extras);
    body.writeUInt32LE(to - from, 0);
    let extraAt = HEAD_BYTES + (to - from) * OP_BYTES;
    const pages: PagePayload[] = [];
    for (let i = from, off = HEAD_BYTES; i < to; i++, off += OP_BYTES) {
      const m = msgs[i]!;
      body[off] = m.op;
      body[off + 1] = m.flags;
      body.writeUInt16LE(m.region, off + 2);
      body.writeUInt32LE(m.page, off + 4);
      body.writeUInt32LE(m.slot ?? NO_SLOT, off + 8);
      body.writeUInt16LE(m.home ?? 0, off + 12);
      body.writeUInt16LE(0, off + 14);
      body.writeUInt32LE(m.version ?? 0, off + 16);
      body.writeUInt32LE(m.extra?.length ?? 0, off + 20);
      if (m.extra) {
        body.set(m.extra, extraAt);
        extraAt += m.extra.length;
      }
      if (m.flags & Flag.Data) {
        for (let at = 0; at < m.data!.length; at += this.wirePage) {
          pages.push({ page: pages.length, data: m.data!.subarray(at, at + this.wirePage) });
        }
      }
    }
    return pages.length > 0 ? { type: COHERENCE_TYPE, body, pages } : { type: COHERENCE_TYPE, body };
  }

  /** The ops of one received transport message; data is joined back into region pages. */
  decode(msg: Message): Msg[] {
    const body = msg.body;
    const count = body instanceof Uint8Array && body.length >= HEAD_BYTES ? Buffer.from(body.buffer, body.byteOffset, body.length).readUInt32LE(0) : 0;
    const opsEnd = HEAD_BYTES + count * OP_BYTES;
    if (!(body instanceof Uint8Array) || count === 0 || opsEnd > body.length) {
      throw protocolError(`a coherence message whose body is not a count and a list of ${OP_BYTES}-byte ops`);
    }
    const buf = Buffer.from(body.buffer, body.byteOffset, body.length);
    const pages = msg.pages ?? [];
    let nextPage = 0;
    let extraAt = opsEnd;
    const out: Msg[] = [];
    for (let off = HEAD_BYTES; off < opsEnd; off += OP_BYTES) {
      const op = buf[off]! as Op;
      const flags = buf[off + 1]!;
      const region = buf.readUInt16LE(off + 2);
      const page = buf.readUInt32LE(off + 4);
      const slot = buf.readUInt32LE(off + 8);
      const home = buf.readUInt16LE(off + 12);
      if (op < FIRST_OP || op > LAST_OP) throw protocolError(`coherence op ${op}`);
      if ((flags & ~ALL_FLAGS) !== 0) throw protocolError(`coherence flags ${flags}`);
      const shape = this.regions[region];
      if (!shape) throw protocolError(`region #${region} (the cluster file has ${this.regions.length})`);
      if (page >= shape.pages) throw protocolError(`page ${page} of region #${region}, which has ${shape.pages}`);
      if (slot !== NO_SLOT && slot >= shape.slots) throw protocolError(`slot ${slot} for a page of region #${region}, whose areas have ${shape.slots} slots`);
      const m: Msg = { op, flags, region, page };
      if (slot !== NO_SLOT) m.slot = slot;
      if (home !== 0) {
        if (!this.nodes.includes(home)) throw protocolError(`home node ${home}, which is not in the cluster file`);
        m.home = home;
      }
      const version = buf.readUInt32LE(off + 16);
      if (version !== 0) m.version = version;
      const extra = buf.readUInt32LE(off + 20);
      if (extra > buf.length - extraAt) throw protocolError(`an op with ${extra} extra bytes where ${buf.length - extraAt} are left`);
      if (extra > 0) {
        m.extra = buf.subarray(extraAt, extraAt + extra);
        extraAt += extra;
      }
      if (flags & Flag.Data) {
        const parts = shape.pageSize / this.wirePage;
        if (nextPage + parts > pages.length) throw protocolError(`ops that call for more page data than the ${pages.length} pages sent`);
        m.data = parts === 1 ? pages[nextPage]!.data : Buffer.concat(pages.slice(nextPage, nextPage + parts).map((p) => p.data));
        nextPage += parts;
      }
      out.push(m);
    }
    if (nextPage !== pages.length) throw protocolError(`${pages.length - nextPage} page(s) of data no op calls for`);
    if (extraAt !== buf.length) throw protocolError(`${buf.length - extraAt} body byte(s) no op calls for`);
    // Each page's share of what the pages cost on the wire (zero markers and LZ4 included).
    if (msg.pageWireBytes !== undefined && pages.length > 0) {
      const perWirePage = msg.pageWireBytes / pages.length;
      for (const m of out) if (m.data) m.wireBytes = Math.round((perWirePage * m.data.length) / this.wirePage);
    }
    return out;
  }
}

function protocolError(what: string): NaplusError {
  return new NaplusError('EPROTO', `sent ${what}`);
}
