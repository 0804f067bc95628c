// Diffs on their way to homes on other hosts, and the releases waiting for them: a release
// is done once every diff its node sent before it is in its master copy (Diffed).
//
// - Diffs and their answers are matched in order, per home (links are FIFO). A diff
//   without an answer when its home went down is kept and sent again when the home is
//   back: the home may take it in twice, which changes nothing, because no write of
//   another node to those words can come between (that writer would have had to acquire
//   after this node's release, which has not completed).
// - Once a release that covers a diff has failed (its home unreachable past the grace
//   time), the lock it was for passes on anyway, so that diff is never sent again:
//   unsent, or unanswered when its link goes, it is dropped, and the page it came from is
//   lost (the cache tells its apps). Sending it later could put old words over a newer
//   holder's.
// - A dropped diff that was sent may have got in all the same, making the master copy a
//   version nobody was told of: the next release asks the home that version (Stat) before
//   it completes, so that its notices carry it and no acquirer keeps a copy that misses
//   it while others see it.
import { Flag, Op, type Clock, type Completion, type Homes, type Msg, type Wire } from '../protocol.js';
import type { Logger } from '../../log.js';

/** A diff on its way to its home, kept until the home confirms it. */
interface Outgoing {
  page: number;
  /** Its number among the diffs sent to that home. */
  seq: number;
  msg: Msg;
  /** Which copy of the page it was made from (the cache's count of arrivals). */
  copy: number;
  /** Sent in the current session of the link to its home. */
  sent: boolean;
  /** A release that covers it failed: it may be sent once, never again. */
  final: boolean;
  /** It was sent at least once (it may have got in). */
  tried: boolean;
}

/** A synchronization waiting for the diffs it covers to be in their master copies. */
interface Release {
  /** Per home: the last diff sent there that this release waits for. */
  need: Map<number, number>;
  /** Pages whose version it waits to learn (see `unsure`). */
  unsure: Set<number>;
  done: Completion;
}

/** What the outbox tells the cache. */
export interface OutboxEvents {
  /** A diff of `page` (made from copy `copy`) is in its master copy, now at `version`; `current`: the copy was the master copy before. */
  confirmed(page: number, version: number, current: boolean, copy: number): void;
  /** `page`'s master copy is at `version` (asked after a diff of ours that may have got in). */
  learnt(page: number, version: number): void;
  /** A diff of `page` (from copy `copy`) will never reach home: its writes are lost. */
  lost(page: number, copy: number, why: string): void;
  /** Writes were lost: the node's next synchronization must fail, saying why. */
  loss(why: string): void;
}

export class DiffOutbox {
  private readonly queues = new Map<number, Outgoing[]>();
  private readonly sentSeq = new Map<number, number>();
  private readonly confirmedSeq = new Map<number, number>();
  /** Diffs of each page on their way. */
  private readonly pending: Uint32Array;
  private releases: Release[] = [];
  /** Homes a release waits for while they are down, with the token of the grace timer. */
  private readonly graceTimers = new Map<number, object>();
  /** Pages (→ their home) a dropped diff may have changed: their version is asked before a release completes. */
  private readonly unsure = new Map<number, number>();
  private readonly stating = new Set<number>();
  /** Called when the last diff on its way is confirmed (a stop waits for this). */
  onIdle: (() => void) | undefined;

  constructor(
    private readonly region: number,
    pages: number,
    private readonly homes: Homes,
    private readonly wire: Wire,
    private readonly clock: Clock,
    private readonly graceMs: number,
    private readonly log: Logger,
    private readonly events: OutboxEvents,
  ) {
    this.pending = new Uint32Array(pages);
  }

  /** Diffs on their way home. */
  get unconfirmed(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** Diffs of `page` on their way home (a fetch of it must then follow them to its home). */
  inflight(page: number): number {
    return this.pending[page]!;
  }

  /** Sends a diff of `page` (made from copy `copy`) to `home`, or keeps it until `home` is up. */
  send(home: number, page: number, copy: number, msg: Msg): void {
    const seq = (this.sentSeq.get(home) ?? 0) + 1;
    this.sentSeq.set(home, seq);
    const entry: Outgoing = { page, seq, msg, copy, sent: false, final: false, tried: false };
    const q = this.queues.get(home);
    if (q) q.push(entry);
    else this.queues.set(home, [entry]);
    this.pending[page]!++;
    if (this.wire.isUp(home)) {
      entry.sent = entry.tried = true;
      this.wire.send(home, msg);
    }
  }

  /** A release: `done` once every diff sent so far is in its master copy, and every unsure page's version is known. */
  waitFor(done: Completion): void {
    const need = new Map<number, number>();
    for (const [home, seq] of this.sentSeq) if (seq > (this.confirmedSeq.get(home) ?? 0)) need.set(home, seq);
    if (need.size === 0 && this.unsure.size === 0) return done();
    const r: Release = { need, unsure: new Set(this.unsure.keys()), done };
    this.releases.push(r);
    for (const page of r.unsure) this.stat(page);
    for (const home of this.homesOf(r)) if (!this.wire.isUp(home)) this.graceFor(home);
  }

  /** The homes a release waits for. */
  private homesOf(r: Release): Set<number> {
    const homes = new Set(r.need.keys());
    for (const page of r.unsure) if (this.unsure.has(page)) homes.add(this.unsure.get(page)!);
    return homes;
  }

  /** Asks the home of an unsure page its version (once at a time). */
  private stat(page: number): void {
    const home = this.unsure.get(page);
    if (home === undefined || this.stating.has(page) || !this.wire.isUp(home)) return;
    this.stating.add(page);
    this.wire.send(home, { op: Op.Stat, flags: 0, region: this.region, page, slot: this.homes.slotOf(page) });
  }

  stated(msg: Msg): void {
    if (!this.stating.delete(msg.page)) return;
    this.unsure.delete(msg.page);
    this.events.learnt(msg.page, msg.version ?? 0);
    this.settle();
  }

  diffed(home: number, msg: Msg): void {
    const q = this.queues.get(home);
    const entry = q?.[0];
    if (!entry || !entry.sent || entry.page !== msg.page) {
      this.log('warn', `region #${this.region}: node ${home} confirmed a diff of page ${msg.page} that was not the next one sent to it; ignored`);
      return;
    }
    q!.shift();
    if (q!.length === 0) this.queues.delete(home);
    this.confirmedSeq.set(home, entry.seq);
    const { page } = entry;
    this.pending[page]!--;
    if (msg.flags & Flag.Failed) {
      const why = `node ${home} could not put a diff of page ${page} of region #${this.region} into its master copy`;
      this.events.lost(page, entry.copy, why);
      this.failReleases((r) => (r.need.get(home) ?? 0) >= entry.seq, why);
      this.events.loss(why);
    } else {
      this.events.confirmed(page, msg.version ?? 0, (msg.flags & Flag.Current) !== 0, entry.copy);
    }
    this.settle();
  }

  private settle(): void {
    for (const r of [...this.releases]) {
      let ready = true;
      for (const [home, seq] of r.need) if ((this.confirmedSeq.get(home) ?? 0) < seq) ready = false;
      for (const page of r.unsure) if (this.unsure.has(page)) ready = false;
      if (ready) this.finish(r);
    }
    if (this.queues.size === 0) this.onIdle?.();
  }

  private finish(r: Release, error?: string): void {
    const i = this.releases.indexOf(r);
    if (i < 0) return;
    this.releases.splice(i, 1);
    r.done(error);
  }

  /** Fails the releases `which` picks; the diffs they cover become final (see the header). */
  private failReleases(which: (r: Release) => boolean, why: string): void {
    for (const r of [...this.releases]) {
      if (!which(r)) continue;
      this.finish(r, why);
      for (const [home, seq] of r.need) {
        for (const entry of this.queues.get(home) ?? []) if (entry.seq <= seq) entry.final = true;
        this.dropUnsentFinal(home, why);
      }
    }
  }

  /** Final diffs bound for `home` that are not on their way (its link is down) are dropped: their writes are lost. */
  private dropUnsentFinal(home: number, why: string): void {
    const q = this.queues.get(home);
    if (!q) return;
    const gone = q.filter((e) => e.final && !e.sent);
    if (gone.length === 0) return;
    const rest = q.filter((e) => !(e.final && !e.sent));
    if (rest.length > 0) this.queues.set(home, rest);
    else this.queues.delete(home);
    for (const entry of gone) {
      this.pending[entry.page]!--;
      this.events.lost(entry.page, entry.copy, why);
      if (entry.tried) this.unsure.set(entry.page, home);
    }
    // Nothing will confirm them: every release that covers one fails, then none waits for
    // them; and the next one fails too (another app of this node may have written them).
    this.failReleases((r) => (r.need.get(home) ?? 0) >= gone[0]!.seq, why);
    this.events.loss(`${gone.length} diff(s) of this node's writes never reached their home: ${why}`);
    this.confirmedSeq.set(home, Math.max(this.confirmedSeq.get(home) ?? 0, gone[gone.length - 1]!.seq));
    this.log('error', `region #${this.region}: ${gone.length} diff(s) of this node's writes will never reach their home: ${why}; those writes are lost (apps get SIGBUS at their next access to the pages)`);
  }

  /** A release waits at most the grace time for a home that is down; then it fails. */
  private graceFor(home: number): void {
    if (this.graceTimers.has(home)) return;
    const token = {};
    this.graceTimers.set(home, token);
    this.clock.after(this.graceMs, () => {
      if (this.graceTimers.get(home) !== token) return;
      this.graceTimers.delete(home);
      const waiting = (r: Release) => (r.need.get(home) ?? 0) > (this.confirmedSeq.get(home) ?? 0) || [...r.unsure].some((page) => this.unsure.get(page) === home);
      this.failReleases(waiting, `node ${home}, the home of pages this node wrote, has been unreachable for ${this.graceMs} ms`);
      this.settle();
    });
  }

  /** `home` is unreachable: its unanswered diffs wait to be sent again (final ones are dropped); releases waiting for it get the grace time. */
  peerDown(home: number): void {
    for (const entry of this.queues.get(home) ?? []) entry.sent = false;
    this.dropUnsentFinal(home, `node ${home}, the home of pages this node wrote, was lost before it confirmed a diff that a failed synchronization covered`);
    for (const [page, h] of this.unsure) if (h === home) this.stating.delete(page);
    if (this.releases.some((r) => this.homesOf(r).has(home))) this.graceFor(home);
    this.settle();
  }

  /** `home` is reachable: the diffs it did not confirm go (again), then the versions asked of it. */
  peerUp(home: number): void {
    this.graceTimers.delete(home);
    for (const entry of this.queues.get(home) ?? []) {
      if (entry.sent) continue;
      entry.sent = entry.tried = true;
      this.wire.send(home, entry.msg);
    }
    for (const [page, h] of this.unsure) if (h === home) this.stat(page);
  }
}
