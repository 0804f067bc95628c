// A simulated node process: the real per-node assembly (NodeCoherence over the region's
// protocol, and SyncNode for locks and barriers) over the simulated network, with a
// memory that keeps one number per page (its cache, and its host's segment), on
// virtual time.
import { NodeCoherence, type Placement } from '../../../src/coherence/node-coherence.js';
import { SyncNode } from '../../../src/coherence/sync-node.js';
import type { CacheMemory, Clock, DirectoryStore, MasterStore } from '../../../src/coherence/protocol.js';
import type { SequentialProtocol } from '../../../src/coherence/sequential/index.js';
import type { Endpoint } from './network.js';
import type { AppOp } from './operations.js';

/** Bytes of a simulated page: one float64, the value last written to it. */
export const PAGE_BYTES = 8;

export function encode(v: number): Uint8Array {
  const b = new Uint8Array(PAGE_BYTES);
  new DataView(b.buffer).setFloat64(0, v);
  return b;
}

export const decode = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, PAGE_BYTES).getFloat64(0);

export interface Timer {
  at: number;
  node: number;
  incarnation: number;
  fn: () => void;
  seq: number;
}

/** What a node needs from the simulation around it. */
export interface NodeWorld {
  now(): number;
  addTimer(t: Omit<Timer, 'seq'>): void;
  /** Fails the run: the protocol did something it must never do. */
  fail(why: string): never;
  say(line: string): void;
  /** The page's home as decided (static or by its first-touch manager), if any yet. */
  homeOf(page: number): number | undefined;
  hostOf(node: number): string;
  /** An app op failed: the node could not get its page. */
  opFailed(node: SimNode, op: AppOp, reason: string): void;
  /** The node told its app that a lock it held was lost with the lock's home. */
  lockLost(node: SimNode, app: number, name: string): void;
}

export interface NodeSetup {
  id: number;
  host: string;
  incarnation: number;
  pages: number;
  nodes: readonly number[];
  placement: Placement;
  /** The host's segment: master copies, by page. */
  segment: Float64Array;
  /** The host's record of who owns which page (it survives the node, as the segment does): page → owner, home. */
  owners: Map<number, { owner: number; home: number }>;
  endpoint: Endpoint;
  holdMs: number;
  graceMs: number;
  quarantineMs: number;
}

export class SimNode {
  readonly id: number;
  readonly host: string;
  readonly incarnation: number;
  readonly endpoint: Endpoint;
  /** This node's copy of every page (NaN where it has none). */
  readonly mem: Float64Array;
  readonly coherence: NodeCoherence;
  readonly sync: SyncNode;
  /** App ops waiting for their page, and ops granted and about to retry. */
  readonly waiting = new Map<number, AppOp[]>();
  /** Pages whose writes were lost here: the next access to each takes SIGBUS. */
  readonly lost = new Set<number>();
  readonly runnable: AppOp[] = [];
  /** Work queued for the end of the current turn (Clock.soon). */
  readonly soon: Array<() => void> = [];

  constructor(s: NodeSetup, world: NodeWorld) {
    this.id = s.id;
    this.host = s.host;
    this.incarnation = s.incarnation;
    this.endpoint = s.endpoint;
    this.mem = new Float64Array(s.pages).fill(NaN);
    const id = s.id;
    const { segment, incarnation } = s;
    const homedHere = (page: number) => world.hostOf(world.homeOf(page)!) === s.host;
    const clock: Clock = {
      now: () => world.now(),
      after: (ms, fn) => world.addTimer({ at: world.now() + ms, node: id, incarnation, fn }),
      soon: (fn) => this.soon.push(fn),
    };
    const memory: CacheMemory = {
      fillFromSegment: (page) => {
        if (!homedHere(page)) world.fail(`node ${id} copied page ${page} from its segment, but the page is homed on another host`);
        this.mem[page] = segment[page]!;
      },
      install: (page, data) => (this.mem[page] = decode(data)),
      copyOut: (page) => encode(this.mem[page]!),
      writeBack: (page) => {
        if (!homedHere(page)) world.fail(`node ${id} wrote page ${page} back into its segment, but the page is homed on another host`);
        segment[page] = this.mem[page]!;
      },
      protect: () => undefined,
      drop: (page) => (this.mem[page] = NaN),
      lose: (page) => {
        this.mem[page] = NaN;
        this.lost.add(page);
      },
      granted: (page) => {
        const ops = this.waiting.get(page);
        if (!ops) return;
        this.waiting.delete(page);
        this.runnable.push(...ops);
      },
      failed: (page, reason) => {
        const ops = this.waiting.get(page) ?? [];
        this.waiting.delete(page);
        for (const op of ops) world.opFailed(this, op, reason);
      },
    };
    const master: MasterStore = {
      read: (pages) => pages.map((page) => encode(segment[page]!)),
      write: (page, data) => (segment[page] = decode(data)),
    };
    const directory: DirectoryStore = {
      owned: () => [...s.owners].filter(([, e]) => e.home === id).map(([page, e]) => ({ page, owner: e.owner, slot: 0 })),
      record: (page, _slot, owner) => (owner === undefined ? s.owners.delete(page) : s.owners.set(page, { owner, home: id })),
    };
    const log = (level: string, msg: string) => {
      if (level === 'warn') world.fail(`node ${id} warned: ${msg}`);
      world.say(`  node ${id} ${level}: ${msg}`);
    };
    this.coherence = new NodeCoherence(
      [{ pages: s.pages, pageSize: PAGE_BYTES, slots: s.pages * s.nodes.length, hostOf: world.hostOf, placement: s.placement, protocol: 'sequential', memory, master, directory }],
      { nodes: s.nodes, links: s.endpoint, clock, wirePageSize: PAGE_BYTES, maxDataBytes: 1 << 20, holdMs: s.holdMs, graceMs: s.graceMs, quarantineMs: s.quarantineMs, log },
    );
    // A lock lost with its home is worth a warning to an operator; here it is expected.
    const syncLog = (level: string, msg: string) => world.say(`  node ${id} ${level}: ${msg}`);
    this.sync = new SyncNode(
      s.endpoint, s.nodes, clock, s.graceMs, s.quarantineMs, syncLog,
      (app, _message, data) => world.lockLost(this, app, (data as { lock: string }).lock),
      (done) => this.coherence.release(done),
      this.coherence.losses,
    );
  }

  /** The region's protocol (sequential: MSI). */
  get protocol(): SequentialProtocol {
    return this.coherence.protocols[0] as SequentialProtocol;
  }

  /** Runs what the turn queued for its end, until nothing is left. */
  endTurn(): void {
    while (this.soon.length > 0) this.soon.shift()!();
  }
}
