// region.atomics as this node asks them of the words' homes (release consistency): each
// operation a message with a token, its answer matched by the token. One that waits for
// its home waits at most the grace time; one sent to a home that is then lost fails,
// since whether it was applied is unknown and it must not be applied twice.
import { Flag, Op, type AtomicDoneFn, type AtomicRequest, type Clock, type Homes, type Msg, type Wire } from '../protocol.js';
import type { Logger } from '../../log.js';
import { decodeResult, encodeAtomic } from './atomics.js';

interface PendingAtomic {
  home: number;
  msg: Msg;
  sent: boolean;
  done: AtomicDoneFn;
}

export class AtomicCalls {
  private readonly pending = new Map<number, PendingAtomic>();
  private nextToken = 1;

  constructor(
    private readonly region: number,
    private readonly pageSize: number,
    private readonly homes: Homes,
    private readonly wire: Wire,
    private readonly clock: Clock,
    private readonly graceMs: number,
    private readonly log: Logger,
  ) {}

  call(request: AtomicRequest, done: AtomicDoneFn): void {
    const page = Math.floor(request.offset / this.pageSize);
    const home = this.homes.homeOf(page);
    if (home === undefined) {
      this.homes.resolve(page, () => this.call(request, done), (reason) => done(reason));
      return;
    }
    const token = this.nextToken;
    this.nextToken = (this.nextToken % 0xffffffff) + 1; // never 0: the codec's "absent"
    const msg: Msg = { op: Op.Atomic, flags: 0, region: this.region, page, slot: this.homes.slotOf(page), version: token, extra: encodeAtomic(request, request.offset % this.pageSize) };
    const pending: PendingAtomic = { home, msg, sent: false, done };
    this.pending.set(token, pending);
    if (this.wire.isUp(home)) {
      pending.sent = true;
      this.wire.send(home, msg);
      return;
    }
    this.clock.after(this.graceMs, () => {
      if (this.pending.get(token) !== pending || pending.sent) return;
      this.pending.delete(token);
      done(`its home, node ${home}, has been unreachable for ${this.graceMs} ms`);
    });
  }

  answered(msg: Msg): void {
    const pending = this.pending.get(msg.version ?? 0);
    if (!pending) {
      this.log('warn', `region #${this.region}: an atomic result for no operation of this node; ignored`);
      return;
    }
    this.pending.delete(msg.version!);
    if (msg.flags & Flag.Failed) return pending.done(`its home, node ${pending.home}, refused it`);
    try {
      pending.done(undefined, decodeResult(msg.extra));
    } catch (err) {
      pending.done((err as Error).message);
    }
  }

  peerDown(home: number): void {
    for (const [token, a] of [...this.pending]) {
      if (a.home !== home || !a.sent) continue;
      this.pending.delete(token);
      a.done(`its home, node ${home}, was lost before it answered (the operation may or may not have been applied)`);
    }
  }

  peerUp(home: number): void {
    for (const a of this.pending.values()) {
      if (a.home !== home || a.sent) continue;
      a.sent = true;
      this.wire.send(home, a.msg);
    }
  }
}
