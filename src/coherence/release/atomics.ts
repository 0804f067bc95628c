// Atomic operations served at a word's home, on its master copy (region.atomics in release
// mode): the home is the one place every node's operations on the word meet, so applying
// them there one at a time makes them atomic across the cluster.
//
// On the wire (Atomic's extra), little-endian:
//   u8 op | u8 width (4 or 8) | u16 0 | u32 byte offset in the page | u64 value | u64 expected
// and the answer (AtomicDone's extra): u64 the word's value before the operation.
import { NaplusError, checkAligned, invalidArgument } from '../../errors.js';
import type { AtomicOp, AtomicRequest } from '../protocol.js';

export const ATOMIC_OPS: readonly AtomicOp[] = ['load', 'store', 'add', 'sub', 'and', 'or', 'xor', 'exchange', 'compareExchange'];
const REQUEST_BYTES = 24;

export function encodeAtomic(request: AtomicRequest, offsetInPage: number): Uint8Array {
  const out = new Uint8Array(REQUEST_BYTES);
  const view = new DataView(out.buffer);
  view.setUint8(0, ATOMIC_OPS.indexOf(request.op));
  view.setUint8(1, request.width);
  view.setUint32(4, offsetInPage, true);
  view.setBigUint64(8, BigInt.asUintN(64, request.value), true);
  view.setBigUint64(16, BigInt.asUintN(64, request.expected), true);
  return out;
}

export function encodeResult(old: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, old, true);
  return out;
}

export function decodeResult(bytes: Uint8Array | undefined): bigint {
  if (!bytes || bytes.length !== 8) throw new NaplusError('EPROTO', 'sent an atomic result that is not 8 bytes');
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
}

/**
 * Applies the atomic operation encoded in `bytes` to `page` (in place) and returns the
 * word's old value, unsigned. Throws EPROTO (changing nothing) on a malformed request.
 */
export function applyAtomic(page: Uint8Array, bytes: Uint8Array | undefined): bigint {
  if (!bytes || bytes.length !== REQUEST_BYTES) throw new NaplusError('EPROTO', `sent an atomic operation of ${bytes?.length ?? 0} bytes, not ${REQUEST_BYTES}`);
  const req = new DataView(bytes.buffer, bytes.byteOffset, REQUEST_BYTES);
  const op = ATOMIC_OPS[req.getUint8(0)];
  const width = req.getUint8(1);
  const offset = req.getUint32(4, true);
  if (op === undefined || (width !== 4 && width !== 8) || offset % width !== 0 || offset + width > page.length) {
    throw new NaplusError('EPROTO', `sent an atomic operation #${req.getUint8(0)} on ${width} bytes at offset ${offset} of a ${page.length}-byte page`);
  }
  const bits = width * 8;
  const value = BigInt.asUintN(bits, req.getBigUint64(8, true));
  const expected = BigInt.asUintN(bits, req.getBigUint64(16, true));
  const word = new DataView(page.buffer, page.byteOffset + offset, width);
  const old = width === 4 ? BigInt(word.getUint32(0, true)) : word.getBigUint64(0, true);
  const next = BigInt.asUintN(bits, combine(op, old, value, expected));
  if (width === 4) word.setUint32(0, Number(next), true);
  else word.setBigUint64(0, next, true);
  return old;
}

function combine(op: AtomicOp, old: bigint, value: bigint, expected: bigint): bigint {
  switch (op) {
    case 'load':
      return old;
    case 'store':
    case 'exchange':
      return value;
    case 'add':
      return old + value;
    case 'sub':
      return old - value;
    case 'and':
      return old & value;
    case 'or':
      return old | value;
    case 'xor':
      return old ^ value;
    case 'compareExchange':
      return old === expected ? value : old;
  }
}

/**
 * Checks an atomic operation on region `region` (of `size` bytes), as an app asks for it
 * (or sends it: `value` and `expected` may come as decimal strings), and returns it typed.
 * Throws EINVAL naming what is wrong.
 */
export function checkAtomic(args: { op: unknown; width: unknown; offset: unknown; value?: unknown; expected?: unknown }, region: { name: string; size: number }): AtomicRequest {
  const op = args.op as AtomicOp;
  if (!ATOMIC_OPS.includes(op)) throw invalidArgument('op', `one of ${ATOMIC_OPS.join(', ')}`, args.op);
  const width = args.width;
  if (width !== 4 && width !== 8) throw invalidArgument('width', '4 or 8', width);
  const offset = checkAligned('offset', args.offset, width);
  if (offset + width > region.size) throw new NaplusError('ERANGE', `Bad offset: ${offset} is past the last ${width}-byte word of region '${region.name}' (${region.size} bytes)`);
  return { op, width, offset, value: toWord('value', args.value ?? 0n, width), expected: toWord('expected', args.expected ?? 0n, width) };
}

/** A number, bigint or decimal string as an unsigned word of `width` bytes (negative numbers wrap, as Atomics do). */
function toWord(name: string, v: unknown, width: 4 | 8): bigint {
  let n: bigint;
  if (typeof v === 'bigint') n = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) n = BigInt(v);
  else if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) n = BigInt(v);
  else throw invalidArgument(name, 'an integer (a number, or a BigInt for 64-bit words)', v);
  return BigInt.asUintN(width * 8, n);
}
