// The synchronizations the workload uses, each a durability point by the promise: what
// an app wrote before one returns survives the loss of any one node and any link fault.
// The controller draws a kind for each round from this table's keys, so a new kind is
// one line here.
import type { Region } from '../../src/index.js';

export interface SyncCall {
  /** Barrier or lock name for this round. */
  name: string;
  /** Apps meeting at the barrier: the round's roster. */
  parties: number;
}

export const SYNC_KINDS = {
  barrier: (region: Region, c: SyncCall) => region.barrier(c.name, c.parties),
  lock: (region: Region, c: SyncCall) => lockAndRelease(region, c.name),
  flush: (region: Region) => region.flush(),
} satisfies Record<string, (region: Region, call: SyncCall) => Promise<void>>;

export type SyncKind = keyof typeof SYNC_KINDS;

/**
 * Takes and releases a lock: the release is the synchronization. EOWNERDEAD (the holder
 * died while we waited) is the documented way a lock passes on: take it again.
 */
async function lockAndRelease(region: Region, name: string): Promise<void> {
  for (;;) {
    try {
      await region.withLock(name, () => undefined);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EOWNERDEAD') throw err;
    }
  }
}
