// What the controller and a workload app say to each other: one JSON object per line,
// commands on the app's stdin, events on its stdout. Every event carries the app's own
// timestamps (Date.now(): same clock as the controller's, same machine), so the checker
// judges when something happened, not when the controller got round to reading it.
import type { SyncKind } from './sync-kinds.js';

/** Everything an app needs to know, given on its command line. */
export interface AppConfig {
  socketDir: string;
  position: number;
  nonce: number;
  /** Slot indices and byte offsets this position writes. */
  own: Array<{ index: number; offset: number }>;
  /** Byte offset of every slot of the plan, by slot index: what a verify reads. */
  all: number[];
  /** Byte offsets of this position's scratch counters. */
  counters: number[];
  /** Length of one stretch of plain loads and stores. */
  stretchMs: number;
}

export type Command =
  | { op: 'round'; round: number; kind: SyncKind; name: string; parties: number; stretchMs: number }
  | { op: 'verify' }
  | { op: 'abandon'; round: number }
  | { op: 'exit' };

/** A word that did not hold what this app last stored there. */
export interface Mismatch {
  what: 'slot' | 'counter';
  offset: number;
  /** Slot index (slots only). */
  index?: number;
  expected: string;
  got: string;
}

export type AppEvent =
  | { ev: 'hello'; pid: number; node: number; t: number }
  | { ev: 'attach-failed'; code: string; message: string; t: number }
  /** One stretch of plain loads and stores from `from` to `to`, and what it read back wrong. */
  | { ev: 'tick'; from: number; to: number; ops: number; bad: Mismatch[]; slowest: Slowest }
  | { ev: 'wrote'; round: number; t0: number; t1: number; slowest: Slowest }
  | { ev: 'calling'; round: number; t: number }
  | { ev: 'synced'; round: number; t0: number; t1: number }
  /** The sync call rejected: the app was told, and retires. */
  | { ev: 'sync-failed'; round: number; t0: number; t1: number; code: string; message: string }
  | { ev: 'abandoned'; round: number; t: number }
  /** Every slot's value (decimal), by slot index, read between t0 and t1. */
  | { ev: 'verified'; t0: number; t1: number; values: string[]; slowest: Slowest };

/**
 * The longest single access of a step (a load or store that faulted waits there; a
 * stretch's pass over its words counts as one), and when it began: a hang is judged per
 * access, not per step of many accesses, which several failures in a row may each delay.
 */
export interface Slowest {
  ms: number;
  at: number;
}
