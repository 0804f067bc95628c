// The home side of one region on one node: the directory entry (owner, sharers) of
// every page homed here, and the serialisation of the transactions on each page.
//
// A page is either owned (one node holds it Exclusive or Modified, and the master copy
// in the segment may be stale) or not (the master copy is current, and any number of
// nodes may hold it Shared). A request that needs other copies changed opens a
// transaction on its page: the home sends Down or Inv to those nodes and grants only
// once every one of them has acknowledged, so at no instant do two nodes hold a page
// writable, or one writable while another reads. Requests that arrive while a page is
// busy wait in FIFO order.
//
// Who owns what is also recorded in the host segment (DirectoryStore), before any grant
// leaves. A home whose process died comes back on the same segment: pages with a
// recorded owner are in doubt until that owner reports (Held: still mine; Reported
// without it: not mine), is known gone, or the grace time is over; requests for them
// wait meanwhile. So a page kept by its owner while its home restarted is never granted
// to someone else from an older master copy.
//
// Races this code is written against (FIFO links make each of them benign):
// - A Put (eviction) crossing an Inv/Down: the Put is applied at once even on a busy
//   page (its data is the newest), and the evicter still acks the Inv/Down, without
//   data; the ack completes the transaction.
// - An Inv crossing an upgrade (GetM from a sharer): the sharer drops its copy and
//   acks before its GetM is served; the grant then carries data, because the
//   directory, not the requester, decides whether the requester still has a copy.
// - A Clean (write-back at a synchronization) crossing an Inv/Down: the Clean arrives
//   first and updates the master copy; the Ack after it carries nothing more.
// - A peer lost mid-transaction: it counts as having acknowledged (its copy is gone
//   with it); what it owned reverts to the master copy, and the loss is logged.
import { Flag, Op, type Clock, type DirectoryStore, type MasterStore, type Msg, type Topology, type Wire } from '../protocol.js';
import type { Logger } from '../../log.js';
import { NodeSetTable } from './node-set.js';

/** A transaction opened by the home itself (recalling pages before it stops). */
const RECALL = -1;

interface Request {
  from: number;
  op: Op.GetS | Op.GetM;
}

interface Transaction {
  /** Node the grant goes to; RECALL for the home's own recall. */
  requester: number;
  op: Op.GetS | Op.GetM;
  /** Nodes whose Ack is still due. */
  waiting: Set<number>;
}

export interface HomeCounters {
  grants: number;
  recalls: number;
  /** Pages whose owner was lost with writes never written back. */
  lostPages: number;
}

export class HomeDirectory {
  private readonly index = new Map<number, number>();
  /** Owner's node index per page, -1 when the master copy is current. */
  private readonly owner: Int16Array;
  private readonly sharers: NodeSetTable;
  private readonly busy = new Map<number, Transaction>();
  private readonly queued = new Map<number, Request[]>();
  readonly counters: HomeCounters = { grants: 0, recalls: 0, lostPages: 0 };
  /** Set by recall(): the home is going away and grants nothing more. */
  private stopping = false;
  /** Unreachable peers whose copies are not forgotten yet, with the token of their incident. */
  private readonly quarantined = new Map<number, object>();
  /** Pages whose recorded owner has not said yet whether it still holds them (after a restart). */
  private readonly inDoubt = new Map<number, number>();
  /** Called whenever the last transaction on a page completes (a stop waits for this). */
  onIdle: (() => void) | undefined;

  constructor(
    private readonly region: number,
    readonly pages: number,
    private readonly topology: Topology,
    private readonly wire: Wire,
    private readonly master: MasterStore,
    private readonly directory: DirectoryStore,
    private readonly clock: Clock,
    /** How long an unreachable peer may go on using its copies before it notices (see peerDown). */
    private readonly quarantineMs: number,
    /** How long a restarted home waits for the recorded owners of its pages to report, and a transaction for an answer. */
    private readonly graceMs: number,
    private readonly log: Logger,
  ) {
    topology.nodes.forEach((id, i) => this.index.set(id, i));
    this.owner = new Int16Array(pages).fill(-1);
    this.sharers = new NodeSetTable(pages, topology.nodes.length);
    this.recover();
  }

  /** Transactions in progress (for stats, and for a stop that waits for recalls). */
  get busyPages(): number {
    return this.busy.size;
  }

  /** The directory entry of `page`: owner's node id, sharers' node ids, whether a transaction is open. */
  entry(page: number): { owner: number | undefined; sharers: number[]; busy: boolean } {
    const owner = this.owner[page]!;
    return {
      owner: owner < 0 ? undefined : this.topology.nodes[owner],
      sharers: this.sharers.members(page).map((i) => this.topology.nodes[i]!),
      busy: this.busy.has(page) || this.inDoubt.has(page),
    };
  }

  private setOwner(page: number, i: number): void {
    if (this.owner[page] === i) return;
    this.owner[page] = i;
    this.directory.record(page, this.topology.homes.slotOf(page)!, i < 0 ? undefined : this.topology.nodes[i]);
  }

  /** Handles a message addressed to this page's home. */
  receive(from: number, msg: Msg): void {
    const { page } = msg;
    const homes = this.topology.homes;
    // First-touch: requests carry the slot the page's manager gave it.
    if (msg.slot !== undefined && homes.homeOf(page) === undefined) homes.learn(page, this.wire.self, msg.slot);
    if (!this.index.has(from) || (msg.op !== Op.Reported && msg.op !== Op.Fence && homes.homeOf(page) !== this.wire.self)) {
      this.log('warn', `region #${this.region}: node ${from} sent op ${msg.op} for page ${page}, which node ${this.wire.self} does not home; ignored`);
      return;
    }
    switch (msg.op) {
      case Op.GetS:
      case Op.GetM:
        // A stopping home grants nothing: the requester sees it go down and fails or
        // retries there.
        if (this.stopping) return;
        if (this.busy.has(page) || this.inDoubt.has(page)) this.enqueue(page, { from, op: msg.op });
        else this.start(page, { from, op: msg.op });
        return;
      case Op.PutS:
        this.sharers.remove(page, this.index.get(from)!);
        return;
      case Op.PutM:
        this.putM(from, msg);
        return;
      case Op.Ack:
        this.ack(from, msg);
        return;
      case Op.Clean:
        this.clean(from, msg);
        return;
      case Op.Held:
        this.heldBy(from, page);
        return;
      case Op.Reported:
        this.reported(from);
        return;
      case Op.Fence:
        // FIFO: everything `from` sent before is taken in, its data in the master copies.
        this.wire.send(from, { op: Op.Fenced, flags: 0, region: this.region, page: 0 });
        return;
      default:
        this.log('warn', `region #${this.region}: node ${from} sent op ${msg.op} to page ${page}'s home; ignored`);
    }
  }

  private enqueue(page: number, r: Request): void {
    const q = this.queued.get(page);
    if (q) q.push(r);
    else this.queued.set(page, [r]);
  }

  private start(page: number, r: Request): void {
    const from = this.index.get(r.from)!;
    const owner = this.owner[page]!;
    if (owner === from) {
      // The owner asks again (a request that crossed its own grant): it keeps M. A
      // downgrade here would leave the master copy stale with nobody owning the page.
      this.grant(page, r.from, Op.GetM);
      return;
    }
    const targets: number[] = [];
    if (owner >= 0 && owner !== from) targets.push(owner);
    if (r.op === Op.GetM) for (const s of this.sharers.members(page)) if (s !== from) targets.push(s);
    if (targets.length === 0) {
      this.grant(page, r.from, r.op);
      return;
    }
    const waiting = new Set(targets.map((i) => this.topology.nodes[i]!));
    const t: Transaction = { requester: r.from, op: r.op, waiting };
    this.busy.set(page, t);
    // A reader only needs the owner to stop writing; a writer needs every copy gone.
    const op = r.op === Op.GetS ? Op.Down : Op.Inv;
    for (const node of waiting) this.wire.send(node, { op, flags: 0, region: this.region, page });
    this.clock.after(this.graceMs, () => this.overdue(page, t, op));
  }

  /**
   * Every transaction has a bound: a node that keeps its link alive but has not answered
   * within the grace time is given up on (its session dropped), and so counts as having
   * answered once its copies are forgotten (see peerDown).
   */
  private overdue(page: number, t: Transaction, op: Op): void {
    if (this.busy.get(page) !== t) return;
    for (const node of [...t.waiting]) {
      if (!this.wire.isUp(node)) continue; // lost already: peerDown completes it
      this.wire.drop(node, `it has not answered ${op === Op.Inv ? 'an invalidation' : 'a downgrade'} of page ${page} of region #${this.region} for ${this.graceMs} ms`);
    }
  }

  private grant(page: number, to: number, op: Op.GetS | Op.GetM): void {
    const i = this.index.get(to)!;
    let flags = 0;
    // A sharer asking for M already has the current bytes: an upgrade carries none.
    const hasCopy = this.owner[page] === i || (op === Op.GetM && this.sharers.has(page, i));
    if (!hasCopy) {
      if (this.topology.hostOf(to) === this.topology.hostOf(this.wire.self)) {
        flags = Flag.Segment; // the requester copies it from the segment we share
      } else {
        flags = Flag.Data; // read from the master copy as the message leaves
      }
    }
    if (op === Op.GetS) {
      this.setOwner(page, -1);
      this.sharers.add(page, i);
    } else {
      this.sharers.clear(page);
      this.setOwner(page, i); // recorded before the grant leaves: a restart must ask `to`
    }
    this.counters.grants++;
    this.wire.send(to, { op: op === Op.GetS ? Op.GrantS : Op.GrantM, flags, region: this.region, page, fromMaster: flags === Flag.Data });
  }

  private putM(from: number, msg: Msg): void {
    const i = this.index.get(from)!;
    if (this.owner[msg.page] !== i) {
      this.log('debug', `region #${this.region}: stale PutM of page ${msg.page} from node ${from}; ignored`);
      return;
    }
    if (msg.data) this.master.write(msg.page, msg.data);
    this.setOwner(msg.page, -1);
  }

  /** An owner writes its dirty copy into the master copy at a synchronization, and keeps the page. */
  private clean(from: number, msg: Msg): void {
    if (this.owner[msg.page] !== this.index.get(from) || !msg.data) {
      // A restarted home that gave up waiting for the owner's report: the Disown it sent
      // before reading this tells the owner the page is lost.
      this.log('debug', `region #${this.region}: node ${from} wrote back page ${msg.page}, which it does not own; ignored`);
      return;
    }
    this.master.write(msg.page, msg.data);
    this.wire.send(from, { op: Op.Cleaned, flags: 0, region: this.region, page: msg.page });
  }

  private ack(from: number, msg: Msg): void {
    const { page } = msg;
    const t = this.busy.get(page);
    if (!t || !t.waiting.has(from)) {
      this.log('debug', `region #${this.region}: unexpected Ack of page ${page} from node ${from}; ignored`);
      return;
    }
    const i = this.index.get(from)!;
    if (msg.data) this.master.write(page, msg.data);
    if (this.owner[page] === i) this.setOwner(page, -1);
    if (msg.flags & Flag.Kept) this.sharers.add(page, i);
    else this.sharers.remove(page, i);
    t.waiting.delete(from);
    if (t.waiting.size === 0) this.complete(page, t);
  }

  private complete(page: number, t: Transaction): void {
    this.busy.delete(page);
    if (this.stopping) {
      this.queued.delete(page);
    } else if (t.requester !== RECALL && this.wire.isUp(t.requester)) {
      this.grant(page, t.requester, t.op);
    }
    this.serveQueue(page);
    if (this.busy.size === 0) this.onIdle?.();
  }

  /** Starts what waited for `page` to be free, in FIFO order. */
  private serveQueue(page: number): void {
    const q = this.queued.get(page);
    while (q && q.length > 0 && !this.busy.has(page) && !this.inDoubt.has(page)) this.start(page, q.shift()!);
    if (q && q.length === 0) this.queued.delete(page);
  }

  // ---- a restarted home ----------------------------------------------------------------

  /** Takes the owners the segment recorded as in doubt, for at most the grace time. */
  private recover(): void {
    const graceMs = this.graceMs;
    const homes = this.topology.homes;
    for (const { page, owner, slot } of this.directory.owned()) {
      if (homes.homeOf(page) === undefined) homes.learn(page, this.wire.self, slot); // first-touch
      const i = this.index.get(owner);
      // Our own cache died with our last process: what it held went with it.
      if (i === undefined || owner === this.wire.self) {
        this.directory.record(page, slot, undefined);
        continue;
      }
      this.owner[page] = i;
      this.inDoubt.set(page, owner);
    }
    if (this.inDoubt.size === 0) return;
    this.log('info', `region #${this.region}: ${this.inDoubt.size} page(s) homed here had owners when this node last ran; they are served once those owners say what they hold`);
    this.clock.after(graceMs, () => {
      for (const [page, owner] of [...this.inDoubt]) this.revert(page, `node ${owner}, which held it when this node last ran, did not report within ${graceMs} ms`);
    });
  }

  private heldBy(from: number, page: number): void {
    const i = this.index.get(from)!;
    if (this.inDoubt.get(page) === from) {
      this.inDoubt.delete(page);
      this.serveQueue(page);
    } else if (this.owner[page] !== i) {
      this.wire.send(from, { op: Op.Disown, flags: 0, region: this.region, page });
    }
  }

  /** `from` reported every page it holds: what it did not report is not its any more. */
  private reported(from: number): void {
    for (const [page, owner] of [...this.inDoubt]) if (owner === from) this.revert(page, `node ${from}, which held it when this node last ran, holds it no longer`);
  }

  /** A page in doubt goes back to its master copy. */
  private revert(page: number, why: string): void {
    if (!this.inDoubt.delete(page)) return;
    this.setOwner(page, -1);
    this.log('info', `region #${this.region}: page ${page} goes back to its master copy: ${why}`);
    this.serveQueue(page);
  }

  // ---- peers lost and back -------------------------------------------------------------

  /**
   * A peer is unreachable. Its requests are forgotten at once (no grant could reach it).
   * Its copies are forgotten once it must have dropped them itself: at once when its
   * process is gone, else after `quarantineMs`, by which time its own heartbeat timeout
   * has told it to. Granting its pages away any sooner would let it read stale data.
   */
  peerDown(node: number, processGone: boolean): void {
    if (!this.index.has(node)) return;
    for (const [page, q] of this.queued) {
      const rest = q.filter((r) => r.from !== node);
      if (rest.length > 0) this.queued.set(page, rest);
      else this.queued.delete(page);
    }
    for (const t of this.busy.values()) if (t.requester === node) t.requester = RECALL;
    if (processGone) {
      for (const [page, owner] of [...this.inDoubt]) if (owner === node) this.revert(page, `node ${node}, which held it, is gone`);
      this.forget(node);
      return;
    }
    const token = {};
    this.quarantined.set(node, token);
    this.clock.after(this.quarantineMs, () => {
      if (this.quarantined.get(node) !== token) return;
      this.quarantined.delete(node);
      this.forget(node);
    });
  }

  /** A peer is reachable again; it dropped our pages before its link came back. */
  peerUp(node: number): void {
    if (this.quarantined.delete(node)) this.forget(node);
  }

  /** `node` holds nothing any more: acks due from it count as given, its writes since the last write-back are lost. */
  private forget(node: number): void {
    const i = this.index.get(node)!;
    let lost = 0;
    for (let page = 0; page < this.pages; page++) {
      if (this.owner[page] === i && !this.inDoubt.has(page)) {
        this.setOwner(page, -1);
        lost++;
      }
      this.sharers.remove(page, i);
    }
    for (const [page, t] of [...this.busy]) {
      if (t.waiting.delete(node) && t.waiting.size === 0) this.complete(page, t);
    }
    if (lost > 0) {
      this.counters.lostPages += lost;
      this.log('error', `region #${this.region}: node ${node} was lost while it held ${lost} page(s) homed here; their writes since the last synchronization are lost (they revert to the master copy)`);
    }
  }

  /**
   * The home is stopping: it grants nothing more, and calls every owned page home, so
   * that nothing stays dirty on other nodes once it is gone. Pages in a transaction
   * come home as it completes (its Inv or Down writes them back). Returns the number
   * of transactions still open; `onIdle` fires when none is.
   */
  recall(): number {
    this.stopping = true;
    this.queued.clear();
    let n = 0;
    for (let page = 0; page < this.pages; page++) {
      const owner = this.owner[page]!;
      if (owner < 0 || this.busy.has(page)) continue;
      const node = this.topology.nodes[owner]!;
      if (node === this.wire.self) continue; // our own cache writes back on its flush
      this.busy.set(page, { requester: RECALL, op: Op.GetM, waiting: new Set([node]) });
      this.wire.send(node, { op: Op.Inv, flags: 0, region: this.region, page });
      n++;
    }
    this.counters.recalls += n;
    return this.busy.size;
  }
}
