// What the simulation checks in release runs: every read of a word returns the value of
// the last write to it that happens before the read, and every write a synchronization
// made durable is in its master copy at the end.
//
// The apps (release-apps.ts) are free of data races by construction: an app touches a word
// only when, by the vector clocks of the apps over locks and barriers, the word's last
// write (and, to write it, every read since) happens before. So the writes to each word
// are in one order, and the last one before a read is well defined: `expect` is the set of
// values a read may return, normally that one write's.
//
// Writes that may be lost widen it: a write whose synchronization failed (or whose node
// died before one covered it) may or may not have reached its master copy, so a later
// read may return it or what it overwrote; the first read then settles which (anchors
// it). (Writes a lock's lost holder had not synchronized happen before no other app's
// access, so no app ever reads those words again: nothing to check there.)
import { fail } from './invariants.js';

interface Write {
  slot: number;
  value: number;
  node: number;
  durable: boolean;
  /** A synchronization that covered it failed, or its node died first: it may not be home. */
  doubtful: boolean;
}

export class ReleaseLedger {
  /** Per word: the values a read could return before its writes since (anchored by the last read). */
  private readonly anchor: Array<Set<number>>;
  /** Per word: its writes since that read, in order. */
  private readonly chain: Write[][];
  /** Per node: its writes no synchronization has settled yet. */
  private readonly pending = new Map<number, Write[]>();
  private version = 0;

  constructor(
    readonly slots: number,
    private readonly say: (line: string) => void,
  ) {
    this.anchor = Array.from({ length: slots }, () => new Set([0]));
    this.chain = Array.from({ length: slots }, () => []);
  }

  /** What a read of `slot` may return: the last write, and before it every write that may be lost, back to one that is not (or the anchor). */
  private expect(slot: number): Set<number> {
    const chain = this.chain[slot]!;
    const out = new Set<number>();
    for (let i = chain.length - 1; i >= 0; i--) {
      out.add(chain[i]!.value);
      if (!chain[i]!.doubtful) return out;
    }
    for (const v of this.anchor[slot]!) out.add(v);
    return out;
  }

  /** A new value written to `slot` by an app of `node`. */
  write(slot: number, node: number): number {
    const value = ++this.version;
    const w: Write = { slot, value, node, durable: false, doubtful: false };
    this.chain[slot]!.push(w);
    const mine = this.pending.get(node);
    if (mine) mine.push(w);
    else this.pending.set(node, [w]);
    return value;
  }

  /**
   * An app of `node` read `value` from `slot`: it must be what the last write before it
   * wrote. Unless `node` made a write of the chain that is not durable yet (its own copy
   * may show it, whatever its master copy holds), the master copy holds `value`: later
   * reads must agree (the anchor).
   */
  read(slot: number, value: number, node: number | undefined, what: string): void {
    const expect = this.expect(slot);
    if (!expect.has(value)) fail(`${what}: read ${value} from word ${slot}, but the last write before it wrote ${[...expect].join(' or ')}`);
    if (this.chain[slot]!.some((w) => w.node === node && !w.durable)) return;
    if (expect.size > 1) this.say(`  word ${slot} anchored at ${value}`);
    this.anchor[slot] = new Set([value]);
    this.chain[slot] = [];
  }

  /** A synchronization starts at `node`: the returned function records how it ended. */
  synchronizing(node: number): (succeeded: boolean) => void {
    const covered = [...(this.pending.get(node) ?? [])];
    return (succeeded) => {
      const mine = this.pending.get(node) ?? [];
      this.pending.set(node, mine.filter((w) => !covered.includes(w)));
      for (const w of covered) {
        if (succeeded) w.durable = true;
        else if (!w.durable) this.doubt(w);
      }
    };
  }

  /** `node` died: its writes no synchronization settled may or may not be home. */
  nodeDied(node: number): void {
    for (const w of this.pending.get(node) ?? []) this.doubt(w);
    this.pending.delete(node);
  }

  /** `node` lost its copy of `page` (`words` words): its writes there no synchronization settled may not be home. */
  pageLost(node: number, page: number, words: number): void {
    for (const w of this.pending.get(node) ?? []) if (Math.floor(w.slot / words) === page) this.doubt(w);
  }

  private doubt(w: Write): void {
    w.doubtful = true;
    this.say(`  word ${w.slot}: write ${w.value} may be lost`);
  }

  /** At the end, every synchronization settled: the master copy of each word holds what a read would have to return. */
  checkMaster(slot: number, value: number): void {
    this.read(slot, value, undefined, 'at the end, the master copy');
  }

  /** Writes not settled by any synchronization (the end must leave none). */
  unsettled(): number {
    let n = 0;
    for (const list of this.pending.values()) n += list.length;
    return n;
  }
}
