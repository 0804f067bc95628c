// region.atomics: read-modify-write operations on 32- and 64-bit words of a region that
// are atomic across every node of the cluster, whichever consistency the region runs.
//
//   const n = await region.atomics.u32.add(offset, 1);        // the old value, a number
//   const t = await region.atomics.u64.compareExchange(8, 0n, 5n);
//
// Sequential consistency: done in place, with Atomics on this app's own mapping (the page
// protocol gives one node at a time the page writable, so an atomic instruction is atomic
// cluster-wide). Release consistency: Atomics on the mapping are atomic within a node only,
// so each operation goes to the word's home, which applies it to the master copy (a round
// trip). Either way they order nothing else: plain writes reach other nodes through locks,
// barriers and flush, never through an atomic. A word used through region.atomics must
// only ever be used through it (in release mode a plain read of it sees a stale copy).
import type { AtomicOp } from '../coherence/protocol.js';
import { checkAtomic } from '../coherence/release/atomics.js';
import type { AttachedRegion } from '../client/attach.js';
import { NaplusError } from '../errors.js';

type Consistency = 'sequential' | 'release';

/** The operations on one width of word; values are numbers (u32) or BigInts (u64), unsigned. */
export interface AtomicWords<T extends number | bigint> {
  load(offset: number): Promise<T>;
  /** Returns `value`, as Atomics.store does. */
  store(offset: number, value: T): Promise<T>;
  /** Each of these returns the word's value before the operation. */
  add(offset: number, value: T): Promise<T>;
  sub(offset: number, value: T): Promise<T>;
  and(offset: number, value: T): Promise<T>;
  or(offset: number, value: T): Promise<T>;
  xor(offset: number, value: T): Promise<T>;
  exchange(offset: number, value: T): Promise<T>;
  compareExchange(offset: number, expected: T, replacement: T): Promise<T>;
}

export class RegionAtomics {
  /** 32-bit words (offsets a multiple of 4), as unsigned numbers. */
  readonly u32: AtomicWords<number>;
  /** 64-bit words (offsets a multiple of 8), as unsigned BigInts. */
  readonly u64: AtomicWords<bigint>;
  private mode: Promise<Consistency> | undefined;

  constructor(private readonly region: Pick<AttachedRegion, 'name' | 'info' | 'buffer' | 'call'>) {
    this.u32 = this.words(4, (v) => Number(v));
    this.u64 = this.words(8, (v) => v);
  }

  private words<T extends number | bigint>(width: 4 | 8, out: (v: bigint) => T): AtomicWords<T> {
    const run = (op: AtomicOp, offset: number, value?: T, expected?: T) => this.run(op, width, offset, value, expected).then(out);
    return {
      load: (offset) => run('load', offset),
      store: (offset, value) => run('store', offset, value).then(() => out(BigInt.asUintN(width * 8, BigInt(value)))),
      add: (offset, value) => run('add', offset, value),
      sub: (offset, value) => run('sub', offset, value),
      and: (offset, value) => run('and', offset, value),
      or: (offset, value) => run('or', offset, value),
      xor: (offset, value) => run('xor', offset, value),
      exchange: (offset, value) => run('exchange', offset, value),
      compareExchange: (offset, expected, replacement) => run('compareExchange', offset, replacement, expected),
    };
  }

  /** The word's old value, unsigned. */
  private async run(op: AtomicOp, width: 4 | 8, offset: number, value?: number | bigint, expected?: number | bigint): Promise<bigint> {
    if (width === 8 && ((value !== undefined && typeof value !== 'bigint') || (expected !== undefined && typeof expected !== 'bigint'))) {
      throw new NaplusError('EINVAL', `Expected a BigInt for the values of a 64-bit atomic ${op} but received ${typeof (typeof value !== 'bigint' ? value : expected)}`);
    }
    const request = checkAtomic({ op, width, offset, value, expected }, { name: this.region.name, size: this.region.info.size });
    if ((await this.consistency()) === 'sequential') return inPlace(this.region.buffer, request.op, width, offset, request.value, request.expected);
    const old = await this.region.call<string>('atomic', { op, width, offset, value: request.value.toString(), expected: request.expected.toString() });
    return BigInt(old);
  }

  /** Which consistency the region runs, asked of the node once. */
  private consistency(): Promise<Consistency> {
    this.mode ??= this.region.call<Consistency>('consistency');
    return this.mode;
  }
}

/** The operation with Atomics on this app's mapping; the old value, unsigned. */
function inPlace(buffer: ArrayBuffer, op: AtomicOp, width: 4 | 8, offset: number, value: bigint, expected: bigint): bigint {
  if (width === 4) {
    const words = new Uint32Array(buffer, offset, 1);
    const [v, e] = [Number(value), Number(expected)];
    return BigInt(op === 'load' ? Atomics.load(words, 0) : op === 'compareExchange' ? Atomics.compareExchange(words, 0, e, v) : op === 'store' ? Atomics.exchange(words, 0, v) : Atomics[op](words, 0, v));
  }
  const words = new BigUint64Array(buffer, offset, 1);
  return op === 'load' ? Atomics.load(words, 0) : op === 'compareExchange' ? Atomics.compareExchange(words, 0, expected, value) : op === 'store' ? Atomics.exchange(words, 0, value) : Atomics[op](words, 0, value);
}
