// The home side of a release-consistent region on one node: the master copies of the
// pages homed here and their versions. A home keeps no directory: it does not know who
// holds copies, and needs not, because write notices (carried by locks and barriers)
// tell acquirers which copies are stale. So it has nothing to recall, nothing to recover
// after a restart and no transaction ever waits on another node: each message is
// answered as it comes.
//
// - Fetch: the master copy and its version (copied from the segment when the requester
//   shares this host, in the message otherwise). Read as the message leaves, so the
//   bytes may be newer than the version says, never older: a copy is only ever judged
//   too old, never too new.
// - Diff: the writer's changed words go into the master copy (in place: a node of this
//   host puts its own diffs there the same way, without a message), then its version
//   rises by one, in that order in the segment, so a version never claims more than the
//   bytes hold, even if this process dies between the two writes. The answer says whether
//   the writer's copy was the master copy before (Current): every diff in between was its
//   own. Then its copy is the new version, and its own notice will not make it stale.
// - Atomic: applied to the master copy, one at a time, without a new version: words
//   used through region.atomics belong to the home, not to the page protocol.
// - Stat: the page's version (asked by a writer that does not know whether its diff got in).
// A request that cannot be carried out (malformed, or the segment refused the write) is
// answered Failed, having changed nothing.
import { Flag, Op, type MasterStore, type Msg, type ProtocolContext, type Topology, type VersionStore, type Wire } from '../protocol.js';
import type { Logger } from '../../log.js';
import { applyDiff } from './diff.js';
import { applyAtomic, encodeResult } from './atomics.js';

export interface HomeCounters {
  /** Diffs put into master copies here. */
  merged: number;
  atomics: number;
}

export class ReleaseHome {
  private readonly index = new Map<number, number>();
  /** Per page: the node (index) whose diffs the master copy took in last here, the version before the first of them, and after the last. */
  private readonly writer: Int16Array;
  private readonly runFrom: Uint32Array;
  private readonly runTo: Uint32Array;
  readonly counters: HomeCounters = { merged: 0, atomics: 0 };

  private readonly region: number;
  readonly pages: number;
  private readonly topology: Topology;
  private readonly wire: Wire;
  private readonly master: MasterStore;
  private readonly log: Logger;

  constructor(c: ProtocolContext, private readonly versions: VersionStore) {
    ({ region: this.region, pages: this.pages, topology: this.topology, wire: this.wire, master: this.master, log: this.log } = c);
    const { pages, topology } = c;
    topology.nodes.forEach((id, i) => this.index.set(id, i));
    this.writer = new Int16Array(pages).fill(-1);
    this.runFrom = new Uint32Array(pages);
    this.runTo = new Uint32Array(pages);
  }

  receive(from: number, msg: Msg): void {
    const { page } = msg;
    const homes = this.topology.homes;
    // First-touch: requests carry the slot the page's manager gave it.
    if (msg.slot !== undefined && homes.homeOf(page) === undefined) homes.learn(page, this.wire.self, msg.slot);
    if (!this.index.has(from) || homes.homeOf(page) !== this.wire.self) {
      this.log('warn', `region #${this.region}: node ${from} sent op ${msg.op} for page ${page}, which node ${this.wire.self} does not home; ignored`);
      return;
    }
    try {
      switch (msg.op) {
        case Op.Fetch:
          return this.fetch(from, page);
        case Op.Diff:
          return this.diff(from, msg);
        case Op.Atomic:
          return this.atomic(from, msg);
        case Op.Stat:
          return this.wire.send(from, { op: Op.Stated, flags: 0, region: this.region, page, version: this.versions.read(page) });
        default:
          this.log('warn', `region #${this.region}: node ${from} sent op ${msg.op} to page ${page}'s home; ignored`);
      }
    } catch (err) {
      // A malformed request, or the segment refused a write: nothing changed, and the
      // sender hears so (a diff or an operation must never wait for an answer that will not come).
      this.log('error', `region #${this.region}: op ${msg.op} of page ${page} from node ${from} failed: ${(err as Error).message}`);
      if (msg.op === Op.Atomic) this.wire.send(from, { op: Op.AtomicDone, flags: Flag.Failed, region: this.region, page, version: msg.version });
      if (msg.op === Op.Diff) this.wire.send(from, { op: Op.Diffed, flags: Flag.Failed, region: this.region, page });
    }
  }

  private fetch(to: number, page: number): void {
    const version = this.versions.read(page);
    const shared = this.topology.hostOf(to) === this.topology.hostOf(this.wire.self);
    this.wire.send(to, { op: Op.Page, flags: shared ? Flag.Segment : Flag.Data, region: this.region, page, version, fromMaster: !shared });
  }

  private diff(from: number, msg: Msg): void {
    const { page } = msg;
    if (msg.flags & Flag.Data) {
      this.master.view(page).set(msg.data!);
    } else {
      if (!msg.extra) throw new Error('a diff with no words');
      applyDiff(this.master.view(page), msg.extra);
    }
    const version = this.versions.bump(page);
    const before = version - 1;
    const i = this.index.get(from)!;
    const had = msg.version ?? 0;
    // Its own diffs since `had`, and nobody else's (a node of this host may have put one in directly).
    const ownRun = this.writer[page] === i && this.runFrom[page]! <= had && this.runTo[page] === before;
    const current = had === before || ownRun;
    if (!ownRun) {
      this.writer[page] = i;
      this.runFrom[page] = before;
    }
    this.runTo[page] = version;
    this.counters.merged++;
    this.wire.send(from, { op: Op.Diffed, flags: current ? Flag.Current : 0, region: this.region, page, version });
  }

  private atomic(from: number, msg: Msg): void {
    const old = applyAtomic(this.master.view(msg.page), msg.extra);
    this.counters.atomics++;
    this.wire.send(from, { op: Op.AtomicDone, flags: 0, region: this.region, page: msg.page, version: msg.version, extra: encodeResult(old) });
  }

  /** A node went away: whose diffs came last is forgotten (a Current answer is only ever an optimization). */
  peerDown(node: number): void {
    const i = this.index.get(node);
    if (i === undefined) return;
    for (let page = 0; page < this.pages; page++) if (this.writer[page] === i) this.writer[page] = -1;
  }
}
