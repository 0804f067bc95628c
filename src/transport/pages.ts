// Page payloads. The pages of one message travel as one section (integers LE):
//
//   u32 count | u8 encoding | count × (u48 page | u8 flags) | data
//
// flags 1 marks an all-zero page: it has no bytes in `data` at all. The other pages'
// bytes, back to back, form `data`: raw (encoding 0, exactly n × pageSize bytes) or one
// LZ4 block (encoding 1, lz4-napi's block format: u32 uncompressed size, which must be
// n × pageSize, then the block). A batch that LZ4 does not shrink travels raw.
//
// One lz4 call per message, never one per page: crossing N-API costs 2-7 µs, more than
// compressing 4 KiB of typical data.
import { compressSync, uncompressSync } from 'lz4-napi';
import { invalidArgument } from '../errors.js';
import { protocolError } from './frame.js';
import type { PagePayload } from './types.js';

export const Encoding = { Raw: 0, Lz4: 1 } as const;
const SECTION_HEAD = 5;
const ENTRY = 7;
const ZERO_FLAG = 1;
const MAX_PAGE_NUMBER = 2 ** 48;

export interface EncodedPages {
  pages: PagePayload[];
  /** Per page, 1 when it travels as a zero marker. */
  zero: Uint8Array;
  zeroCount: number;
  encoding: number;
  /** What `data` holds: the non-zero pages (raw) or one LZ4 block; copied into the frame by `write`. */
  parts: Uint8Array[];
  dataBytes: number;
  /** The whole section: head, page table and data. */
  bytes: number;
  /** Whether LZ4 was tried (it was used only if `encoding` says so). */
  attempted: boolean;
}

export class PageCodec {
  private readonly zeroPage: Buffer;

  constructor(
    readonly pageSize: number,
    /** Most page bytes (pages × pageSize) an incoming message may carry. */
    readonly maxPageBytes: number,
  ) {
    this.zeroPage = Buffer.alloc(pageSize);
  }

  /** Checks and snapshots the pages of an outgoing message, compressed if `lz4` and that shrinks them. */
  encode(pages: PagePayload[], lz4: boolean): EncodedPages {
    const n = pages.length;
    const zero = new Uint8Array(n);
    const data: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const p = pages[i]!;
      if (!Number.isSafeInteger(p.page) || p.page < 0 || p.page >= MAX_PAGE_NUMBER) {
        throw invalidArgument(`pages[${i}].page`, 'an integer from 0 to 2^48-1', p.page);
      }
      if (!(p.data instanceof Uint8Array) || p.data.length !== this.pageSize) {
        throw invalidArgument(`pages[${i}].data`, `a Uint8Array of ${this.pageSize} bytes`, p.data instanceof Uint8Array ? `${p.data.length} bytes` : p.data);
      }
      // Most pages that are not zero say so in their first byte: no 4 KiB compare then.
      if (p.data[0] === 0 && this.zeroPage.equals(p.data)) zero[i] = 1;
      else data.push(p.data);
    }
    const table = SECTION_HEAD + ENTRY * n;
    const attempted = lz4 && data.length > 0;
    const raw = data.length * this.pageSize;
    if (attempted) {
      // One page is compressed straight from the caller's memory; several are joined first.
      const input = data.length === 1 ? Buffer.from(data[0]!.buffer, data[0]!.byteOffset, this.pageSize) : Buffer.concat(data);
      const packed = compressSync(input);
      if (packed.length < raw) {
        return { pages, zero, zeroCount: n - data.length, encoding: Encoding.Lz4, parts: [packed], dataBytes: packed.length, bytes: table + packed.length, attempted };
      }
    }
    return { pages, zero, zeroCount: n - data.length, encoding: Encoding.Raw, parts: data, dataBytes: raw, bytes: table + raw, attempted };
  }

  /**
   * Writes the section into the frame being built. This copy, made inside send(), is
   * the snapshot that frees the caller's page memory at once.
   */
  write(out: Buffer, offset: number, e: EncodedPages): void {
    let off = out.writeUInt32LE(e.pages.length, offset);
    out[off++] = e.encoding;
    for (let i = 0; i < e.pages.length; i++) {
      off = out.writeUIntLE(e.pages[i]!.page, off, 6);
      out[off++] = e.zero[i]!;
    }
    for (const part of e.parts) {
      out.set(part, off);
      off += part.length;
    }
  }

  /** Decodes the section that runs from `offset` to the end of `frame`; throws EPROTO. */
  decode(frame: Buffer, offset: number): PagePayload[] {
    if (frame.length - offset < SECTION_HEAD) throw protocolError(`a page section cut short (${frame.length - offset} bytes)`);
    const count = frame.readUInt32LE(offset);
    const encoding = frame[offset + 4]!;
    if (count === 0 || count * this.pageSize > this.maxPageBytes) {
      throw protocolError(`a page section of ${count} pages (at most ${Math.floor(this.maxPageBytes / this.pageSize)})`);
    }
    const tableEnd = offset + SECTION_HEAD + ENTRY * count;
    if (tableEnd > frame.length) throw protocolError(`a page table of ${count} pages cut short by the frame's end`);
    let zeroCount = 0;
    for (let off = offset + SECTION_HEAD + 6; off < tableEnd; off += ENTRY) {
      const flags = frame[off]!;
      if (flags > ZERO_FLAG) throw protocolError(`page flags ${flags}`);
      zeroCount += flags;
    }
    const expected = (count - zeroCount) * this.pageSize;
    const bytes = this.payload(frame.subarray(tableEnd), encoding, expected);
    const zeroes = zeroCount > 0 ? Buffer.alloc(zeroCount * this.pageSize) : undefined;
    const pages: PagePayload[] = new Array(count);
    let nextData = 0;
    let nextZero = 0;
    for (let i = 0, off = offset + SECTION_HEAD; i < count; i++, off += ENTRY) {
      const page = frame.readUIntLE(off, 6);
      if (frame[off + 6] === ZERO_FLAG) {
        pages[i] = { page, data: zeroes!.subarray(nextZero, nextZero + this.pageSize), zero: true };
        nextZero += this.pageSize;
      } else {
        pages[i] = { page, data: bytes.subarray(nextData, nextData + this.pageSize) };
        nextData += this.pageSize;
      }
    }
    return pages;
  }

  private payload(data: Buffer, encoding: number, expected: number): Buffer {
    if (encoding === Encoding.Raw) {
      if (data.length !== expected) throw protocolError(`raw page data of ${data.length} bytes where ${expected} were due`);
      return data;
    }
    if (encoding !== Encoding.Lz4) throw protocolError(`page encoding ${encoding}`);
    // The size prefix is checked before lz4 sees it: it decides how much lz4 allocates.
    if (expected === 0 || data.length < 4 || data.readUInt32LE(0) !== expected) {
      throw protocolError(`LZ4 page data whose size prefix is not the ${expected} bytes its page table calls for`);
    }
    let out: Buffer;
    try {
      out = uncompressSync(data);
    } catch (err) {
      throw protocolError(`LZ4 page data that does not decompress (${(err as Error).message})`);
    }
    if (out.length !== expected) throw protocolError(`LZ4 page data of ${out.length} bytes where ${expected} were due`);
    return out;
  }
}
