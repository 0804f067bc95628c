// What a release run must come to once the network is healed and drained and every node
// has synchronized a last time: nothing waits (no access, no diff on its way home), every
// node hears every other, and each word's master copy holds what a read would have to
// return (so no write a synchronization made durable was lost, nor overwritten by an
// older one).
import { fail } from './invariants.js';
import type { SimNode } from './node.js';
import type { ReleaseLedger } from './release-ledger.js';

export function checkReleaseEnd(
  nodes: Map<number, SimNode>,
  ledger: ReleaseLedger,
  words: number,
  homeOf: (page: number) => number | undefined,
  /** The segment holding the page's master copy (undefined: the page was never placed). */
  segmentOf: (page: number) => Float64Array | undefined,
): void {
  for (const node of nodes.values()) {
    for (const [page, ops] of node.waiting) fail(`node ${node.id}: ${ops.length} access(es) to page ${page} still wait at the end (e.g. op ${ops[0]!.id})`);
    const open = node.release.openTransactions;
    if (open > 0) fail(`node ${node.id}: ${open} diff(s) still on their way home at the end`);
    for (const other of nodes.keys()) if (other !== node.id && !node.endpoint.up.has(other)) fail(`node ${node.id} never heard node ${other} is back`);
  }
  for (let slot = 0; slot < ledger.slots; slot++) {
    const page = Math.floor(slot / words);
    const segment = segmentOf(page);
    if (segment === undefined && homeOf(page) !== undefined) fail(`page ${page} has a home but no segment`);
    ledger.checkMaster(slot, segment ? segment[slot]! : 0);
  }
}
