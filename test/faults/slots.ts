// Where the workload's values live and what they say. Every writer position owns a
// block of pages on every home node (every writer x every home), a few 64-bit slots in
// each page, and one 32-bit scratch counter per page for the plain loads and stores
// between synchronizations. A slot's value names its writer position and round and
// carries a check over (run, position, round, slot), so a reader can tell the latest
// value, an older one, another writer's, zero and garbage apart. Values are stored and
// loaded with Atomics on 8-byte words, so a read never sees half a value.
import type { RegionLayout } from '../../src/node/layout.js';

/** Pages of one (writer, home) block. */
export const PAGES_PER_BLOCK = 2;
/** Slots per page, spread over the page. */
export const SLOTS_PER_PAGE = 4;
const SLOT_STRIDE = 1024;
/** Byte offset of a page's scratch counter (no slot is there). */
const COUNTER_OFFSET = 4000;
/**
 * Blocks start this many pages into each home's run, past the heap's metadata (the
 * first 1/64 of the region), which the workload leaves alone.
 */
const FIRST_PAGE = 32;

export interface Slot {
  /** Index in the plan's slot list (what the value's check binds). */
  index: number;
  position: number;
  home: number;
  page: number;
  /** Byte offset in the region. */
  offset: number;
}

export interface SlotPlan {
  slots: Slot[];
  /** Byte offsets of each position's scratch counters. */
  counters: number[][];
}

/**
 * The plan for `positions` writers over the homes of `layout` (static placement): for
 * each home node, the pages it homes, taken in order from FIRST_PAGE on.
 */
export function planSlots(layout: RegionLayout, positions: number): SlotPlan {
  const ps = layout.region.pageSize;
  const pagesOf = new Map<number, number[]>();
  for (let p = 0; p < layout.pages; p++) {
    const home = layout.home[p]!;
    const list = pagesOf.get(home) ?? [];
    list.push(p);
    pagesOf.set(home, list);
  }
  const slots: Slot[] = [];
  const counters: number[][] = Array.from({ length: positions }, () => []);
  for (const [home, pages] of [...pagesOf].sort((a, b) => a[0] - b[0])) {
    if (pages.length < FIRST_PAGE + positions * PAGES_PER_BLOCK) {
      throw new Error(`node ${home} homes ${pages.length} pages: too few for ${positions} writers; make the region larger`);
    }
    for (let position = 0; position < positions; position++) {
      for (let k = 0; k < PAGES_PER_BLOCK; k++) {
        const page = pages[FIRST_PAGE + position * PAGES_PER_BLOCK + k]!;
        counters[position]!.push(page * ps + COUNTER_OFFSET);
        for (let s = 0; s < SLOTS_PER_PAGE; s++) {
          slots.push({ index: slots.length, position, home, page, offset: page * ps + s * SLOT_STRIDE });
        }
      }
    }
  }
  return { slots, counters };
}

/** 32-bit mix of the run's nonce, the writer position, the round and the slot. */
function check(nonce: number, position: number, round: number, slot: number): number {
  let h = Math.imul(nonce ^ 0x9e3779b9, 0x85ebca6b);
  for (const v of [position, round, slot]) h = Math.imul(h ^ v ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0 || 1;
}

/** The value `position` writes into `slot` in `round` (never zero). */
export function encodeValue(nonce: number, position: number, round: number, slot: number): bigint {
  if (position > 0xff || round > 0xffffff || round < 1) throw new Error(`position ${position} or round ${round} out of range`);
  return (BigInt(((position << 24) | round) >>> 0) << 32n) | BigInt(check(nonce, position, round, slot));
}

export type Decoded = { position: number; round: number } | 'zero' | 'garbage';

/** What a value read from `slot` says. */
export function decodeValue(nonce: number, slot: number, value: bigint): Decoded {
  if (value === 0n) return 'zero';
  const hi = Number(value >> 32n);
  const position = hi >>> 24;
  const round = hi & 0xffffff;
  if (round === 0 || Number(value & 0xffffffffn) !== check(nonce, position, round, slot)) return 'garbage';
  return { position, round };
}
