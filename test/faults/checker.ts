// The judge of a fault-injection run: pure bookkeeping, no processes, so that it can be
// fed a made-up history in a unit test and must flag it.
//
// - The ledger: the rounds issued to each writer position and, for each position, the
//   latest round whose synchronization returned (a write is *synchronized* once the
//   writer's sync call has returned). Every position writes every slot it owns each
//   round, so one round number per position says what each of its slots must hold.
// - Lost: a read of a slot, by an app whose node has not failed, that is neither the
//   slot's latest synchronized value nor a later value the same position was issued:
//   an older value, zero, another writer's, garbage. Each lost synchronized write counts
//   once however many readers see it. An app's own stretch that reads back something
//   other than its own last store (synchronized or not) while its node lives is
//   `lostUnsynced`: such writes may be lost only with the node that made them.
// - Silent: an app whose node failed must be told (its process dies, or an API call
//   rejects) by the failure's deadline; any progress it makes after the deadline without
//   having been told (a stretch of loads and stores begun, a read, a sync that returned)
//   counts it as silent, once.
// - Hangs and crashes are found by the controller's watchdog and node monitor and
//   counted here.
// - Disturbed: an app told although no fault that allows it was active (a reset TCP
//   connection promises latency only).
// Each finding is blamed on a fault kind: the latest-started fault whose window (its
// start to its end plus a settle time) overlaps the span in which the finding arose, or
// `none` when no fault does.

export interface FaultWindow {
  id: number;
  kind: string;
  target: string;
  start: number;
  /** When the fault was healed and the cluster whole again (undefined while active). */
  end?: number;
  /** A fault that allows no app to be told: apps feel it as latency only. */
  undisturbed: boolean;
}

export interface Counts {
  injected: number;
  lost: number;
  silent: number;
  hangs: number;
  /** Apps told (died, or an API call rejected) while no fault allowed it. */
  disturbed: number;
  /** An app read back something other than its own last store, its node alive. */
  lost_unsynced: number;
  /** Nodes that exited on their own. */
  crashes: number;
  /** Apps told (died, or an API call rejected): expected under most faults, for information. */
  told: number;
}

const ZERO: Counts = { injected: 0, lost: 0, silent: 0, hangs: 0, disturbed: 0, lost_unsynced: 0, crashes: 0, told: 0 };

/** What the ledger says a slot must hold at a verify: its position's latest synchronized round. */
export interface Expectation {
  position: number;
  round: number;
  syncedAt: number;
}

interface AppRecord {
  position: number;
  node: number;
  /** Set when its node failed: by when the app must have been told, and which fault. */
  orphan?: { at: number; deadline: number; fault: string };
  toldAt?: number;
  silent?: boolean;
}

export interface Finding {
  t: number;
  kind: string;
  what: keyof Counts;
  detail: string;
}

export class Checker {
  private readonly faults: FaultWindow[] = [];
  private readonly issuedRounds = new Map<number, Set<number>>();
  private readonly syncedRound = new Map<number, { round: number; at: number }>();
  private readonly apps = new Map<number, AppRecord>();
  private readonly lostWrites = new Set<string>();
  private readonly checkedWrites = new Set<string>();
  readonly byKind = new Map<string, Counts>();
  readonly findings: Finding[] = [];
  readsChecked = 0;

  constructor(
    /** How long a fault's effects may linger after it is healed. */
    private readonly settleMs: number,
    readonly slotOwner: (slot: number) => number,
    private readonly decode: (slot: number, value: bigint) => { position: number; round: number } | 'zero' | 'garbage',
  ) {}

  get syncWritesChecked(): number {
    return this.checkedWrites.size;
  }

  private count(kind: string, what: keyof Counts, t: number, detail?: string): void {
    const c = this.byKind.get(kind) ?? { ...ZERO };
    c[what]++;
    this.byKind.set(kind, c);
    if (detail !== undefined) this.findings.push({ t, kind, what, detail });
  }

  /** The kind to blame for something that arose within [from, to]. */
  blame(from: number, to: number): string {
    let best: FaultWindow | undefined;
    for (const f of this.faults) {
      const until = (f.end ?? Infinity) + this.settleMs;
      if (f.start <= to && until >= from && (!best || f.start > best.start)) best = f;
    }
    return best?.kind ?? 'none';
  }

  /**
   * When the last fault that began within [from, to] began (else `from`): a wait that a
   * second failure interrupted is judged from that failure on, since each failure may
   * legitimately hold an access up for the bound.
   */
  lastFaultStart(from: number, to: number): number {
    let last = from;
    for (const f of this.faults) if (f.start > last && f.start <= to) last = f.start;
    return last;
  }

  /** Faults whose windows overlap `t`. */
  private activeAt(t: number): FaultWindow[] {
    return this.faults.filter((f) => f.start <= t && (f.end ?? Infinity) + this.settleMs >= t);
  }

  faultStarted(fault: FaultWindow): void {
    this.faults.push(fault);
    this.count(fault.kind, 'injected', fault.start);
  }

  /** Makes sure a kind has a row even if nothing was injected or found. */
  row(kind: string): void {
    if (!this.byKind.has(kind)) this.byKind.set(kind, { ...ZERO });
  }

  appStarted(app: number, position: number, node: number): void {
    this.apps.set(app, { position, node });
  }

  /** The node of `apps` failed at `at` (fault kind `fault`): they must be told by `deadline`. */
  nodeFailed(apps: number[], at: number, deadline: number, fault: string): void {
    for (const id of apps) {
      const a = this.apps.get(id);
      if (a && !a.orphan && a.toldAt === undefined) a.orphan = { at, deadline, fault };
    }
  }

  /** Brings the deadline of orphaned apps forward (their killed node is gone, their stopped node resumed). */
  tellBy(apps: number[], deadline: number): void {
    for (const id of apps) {
      const o = this.apps.get(id)?.orphan;
      if (o) o.deadline = Math.min(o.deadline, deadline);
    }
  }

  isOrphan(app: number, at = Infinity): boolean {
    const o = this.apps.get(app)?.orphan;
    return o !== undefined && o.at <= at;
  }

  issued(position: number, round: number): void {
    const s = this.issuedRounds.get(position) ?? new Set<number>();
    s.add(round);
    this.issuedRounds.set(position, s);
  }

  synced(position: number, round: number, at: number): void {
    const prev = this.syncedRound.get(position);
    if (!prev || round > prev.round) this.syncedRound.set(position, { round, at });
  }

  /** What each slot must hold now, by slot index (undefined: nothing synchronized yet). */
  expectations(slots: number): Array<Expectation | undefined> {
    return Array.from({ length: slots }, (_, slot) => {
      const position = this.slotOwner(slot);
      const s = this.syncedRound.get(position);
      return s && { position, round: s.round, syncedAt: s.at };
    });
  }

  /**
   * Evidence that `app` made progress that began at `t` (a stretch, a read, a sync call).
   * Returns true when that makes it silent (the first time).
   */
  progress(app: number, t: number, what: string): boolean {
    const a = this.apps.get(app);
    if (!a?.orphan || a.silent || (a.toldAt !== undefined && a.toldAt <= t) || t <= a.orphan.deadline) return false;
    a.silent = true;
    this.count(a.orphan.fault, 'silent', t,
      `app ${app} (writer ${a.position}) on node ${a.node}: ${what} ${t - a.orphan.at} ms after its node failed, not told (deadline ${a.orphan.deadline - a.orphan.at} ms)`);
    return true;
  }

  /** `app` was told (it died, or an API call rejected) at `t`. */
  told(app: number, t: number, how: string): void {
    const a = this.apps.get(app);
    if (!a || a.toldAt !== undefined) return;
    a.toldAt = t;
    if (a.orphan) {
      this.count(a.orphan.fault, 'told', t);
      return;
    }
    const active = this.activeAt(t);
    const kind = this.blame(t, t);
    this.count(kind, 'told', t);
    if (active.length === 0 || active.every((f) => f.undisturbed)) {
      this.count(kind, 'disturbed', t, `app ${app} (writer ${a.position}) on node ${a.node} was told (${how}) though ${active.length ? active.map((f) => `${f.kind} ${f.target}`).join(', ') : 'no fault'} allows no such thing`);
    }
  }

  /** Judges the values `app` read from every slot between t0 and t1 against `expected`. */
  verify(app: number, t0: number, t1: number, values: bigint[], expected: Array<Expectation | undefined>): void {
    if (this.progress(app, t0, 'read the region') || this.isOrphan(app, t1)) return; // a failed node's reads prove nothing about what survived
    const a = this.apps.get(app)!;
    values.forEach((value, slot) => {
      const e = expected[slot];
      if (!e) return;
      this.readsChecked++;
      const key = `${slot}@${e.round}`;
      this.checkedWrites.add(key);
      const why = this.misread(slot, value, e);
      if (!why || this.lostWrites.has(key)) return;
      this.lostWrites.add(key);
      this.count(this.blame(e.syncedAt, t1), 'lost', t1,
        `slot ${slot} (writer ${e.position}) read from node ${a.node}: ${why}; round ${e.round} was synchronized ${t1 - e.syncedAt} ms before`);
    });
  }

  /** Why `value` cannot be what `slot` holds given `e`, or undefined when it can. */
  private misread(slot: number, value: bigint, e: Expectation): string | undefined {
    const d = this.decode(slot, value);
    if (d === 'zero') return 'zero';
    if (d === 'garbage') return `garbage (${value})`;
    if (d.position !== e.position) return this.describe(slot, value);
    if (d.round < e.round) return `older round ${d.round}`;
    if (!this.issuedRounds.get(e.position)?.has(d.round)) return `round ${d.round}, never issued to this writer`;
    return undefined;
  }

  /** A value as a reader would describe it. */
  private describe(slot: number, value: bigint): string {
    const d = this.decode(slot, value);
    return typeof d === 'object' ? `writer ${d.position}'s round ${d.round}` : d === 'zero' ? 'zero' : `garbage (${value})`;
  }

  /**
   * An app's own stretch read back, at `t`, something else than its last store: a slot
   * (by index) or a scratch counter (`slot` undefined, values are counts).
   */
  ownMismatch(app: number, t: number, slot: number | undefined, expected: bigint, got: bigint): void {
    const a = this.apps.get(app);
    if (!a || this.isOrphan(app, t)) return;
    const s = this.syncedRound.get(a.position);
    if (slot !== undefined && s) {
      const why = this.misread(slot, got, { position: a.position, round: s.round, syncedAt: s.at });
      if (why) {
        const key = `${slot}@${s.round}`;
        if (this.lostWrites.has(key)) return;
        this.lostWrites.add(key);
        this.count(this.blame(s.at, t), 'lost', t, `slot ${slot} (writer ${a.position}) read back by its writer on node ${a.node}: ${why}; round ${s.round} was synchronized ${t - s.at} ms before`);
        return;
      }
    }
    const what = slot === undefined ? `a scratch counter at ${got}, not its last store ${expected}` : `slot ${slot} as ${this.describe(slot, got)}, not its last store (${this.describe(slot, expected)})`;
    this.count(this.blame(t - this.settleMs, t), 'lost_unsynced', t, `app ${app} (writer ${a.position}) on node ${a.node} read back ${what}`);
  }

  hang(t: number, since: number, detail: string): void {
    this.count(this.blame(since, t), 'hangs', t, detail);
  }

  crash(node: number, t: number, detail: string): void {
    this.count(this.blame(t, t), 'crashes', t, `node ${node} exited on its own: ${detail}`);
  }

  /** Totals over every kind. */
  totals(): Counts {
    const sum = { ...ZERO };
    for (const c of this.byKind.values()) for (const k of Object.keys(sum) as Array<keyof Counts>) sum[k] += c[k];
    return sum;
  }
}
