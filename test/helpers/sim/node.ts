// A simulated node process: the real per-node assembly (NodeCoherence over the region's
// protocol, and SyncNode for locks and barriers) over the simulated network, with a
// memory that keeps a few numbers per page (one for sequential runs; several for release
// runs, whose writers share pages), its cache and its host's segment, on virtual time.
import { NodeCoherence, type Placement } from '../../../src/coherence/node-coherence.js';
import { SyncNode, type Call } from '../../../src/coherence/sync-node.js';
import type { Done, Party } from '../../../src/coherence/sync-service.js';
import type { CacheMemory, Clock, DirectoryStore, MasterStore } from '../../../src/coherence/protocol.js';
import type { SequentialProtocol } from '../../../src/coherence/sequential/index.js';
import type { ReleaseProtocol } from '../../../src/coherence/release/index.js';
import type { ProtocolName } from '../../../src/coherence/protocols.js';
import type { Endpoint } from './network.js';
import type { AppOp } from './operations.js';

/** Bytes of a simulated word: one float64, the value last written to it. */
export const PAGE_BYTES = 8;

/** The bytes of a page of `words` float64 words (little-endian, as the segment holds them: see MasterStore.view). */
export function encode(...words: number[]): Uint8Array {
  const b = new Uint8Array(PAGE_BYTES * words.length);
  words.forEach((v, i) => new DataView(b.buffer).setFloat64(i * PAGE_BYTES, v, true));
  return b;
}

/** The first word of a page. */
export const decode = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, PAGE_BYTES).getFloat64(0, true);

const decodeWords = (b: Uint8Array): number[] => Array.from({ length: b.length / PAGE_BYTES }, (_, i) => new DataView(b.buffer, b.byteOffset + i * PAGE_BYTES, PAGE_BYTES).getFloat64(0, true));

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
  /** The node lost its copy of `page` with writes in it (its apps take SIGBUS at their next access). */
  pageLost(node: SimNode, page: number): void;
  /** The node, as the home of a lock or barrier, takes a call in (with what came with it: `ended` false), or ends it (true). */
  served(node: SimNode, party: Party, call: Call, ended: boolean, err?: Error): void;
}

/** A SyncNode whose home side the simulation watches. */
class WatchedSyncNode extends SyncNode {
  watch: ((party: Party, call: Call, ended: boolean, err?: Error) => void) | undefined;

  protected override serve(party: Party, call: Call, done: Done): void {
    this.watch?.(party, call, false);
    super.serve(party, call, (err) => {
      this.watch?.(party, call, true, err);
      done(err);
    });
  }
}

export interface NodeSetup {
  id: number;
  host: string;
  incarnation: number;
  pages: number;
  /** Words per page (1 for sequential runs). */
  words: number;
  protocol: ProtocolName;
  nodes: readonly number[];
  placement: Placement;
  /** The host's segment: master copies, by page (`words` numbers each). */
  segment: Float64Array;
  /** Release runs: the host's page versions, and this node's notices as a sync home (both outlive it, as the segment does). */
  versions: Uint32Array;
  board: Uint32Array;
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
  /** This node's copy of every page, `words` numbers each (NaN where it has none). */
  readonly mem: Float64Array;
  readonly words: number;
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
    const w = (this.words = s.words);
    this.mem = new Float64Array(s.pages * w).fill(NaN);
    const id = s.id;
    const { segment, incarnation } = s;
    const words = (from: Float64Array, page: number) => [...from.subarray(page * w, (page + 1) * w)];
    const set = (into: Float64Array, page: number, values: number[] | number) => into.fill(NaN, page * w, (page + 1) * w).set(typeof values === 'number' ? [values] : values, page * w);
    const homedHere = (page: number) => world.hostOf(world.homeOf(page)!) === s.host;
    const clock: Clock = {
      now: () => world.now(),
      after: (ms, fn) => world.addTimer({ at: world.now() + ms, node: id, incarnation, fn }),
      soon: (fn) => this.soon.push(fn),
    };
    const memory: CacheMemory = {
      fillFromSegment: (page) => {
        if (!homedHere(page)) world.fail(`node ${id} copied page ${page} from its segment, but the page is homed on another host`);
        set(this.mem, page, words(segment, page));
      },
      install: (page, data) => set(this.mem, page, decodeWords(data)),
      copyOut: (page) => encode(...words(this.mem, page)),
      copyInto: (page, into) => into.set(encode(...words(this.mem, page))),
      writeBack: (page) => {
        if (!homedHere(page)) world.fail(`node ${id} wrote page ${page} back into its segment, but the page is homed on another host`);
        set(segment, page, words(this.mem, page));
      },
      protect: () => undefined,
      drop: (page) => set(this.mem, page, NaN),
      lose: (page) => {
        set(this.mem, page, NaN);
        this.lost.add(page);
        world.pageLost(this, page);
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
      read: (pages) => pages.map((page) => encode(...words(segment, page))),
      write: (page, data) => set(segment, page, decodeWords(data)),
      view: (page) => {
        if (!homedHere(page)) world.fail(`node ${id} changed page ${page} in its segment, but the page is homed on another host`);
        return new Uint8Array(segment.buffer, segment.byteOffset + page * w * PAGE_BYTES, w * PAGE_BYTES);
      },
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
      [{
        pages: s.pages, pageSize: PAGE_BYTES * w, slots: s.pages * s.nodes.length, hostOf: world.hostOf, placement: s.placement, protocol: s.protocol, memory, master, directory,
        versions: { read: (page) => s.versions[page]!, write: (page, v) => (s.versions[page] = v), bump: (page) => ++s.versions[page]! },
        notices: { read: (page) => s.board[page]!, write: (page, v) => (s.board[page] = v) },
      }],
      { nodes: s.nodes, links: s.endpoint, clock, wirePageSize: PAGE_BYTES, maxDataBytes: 1 << 20, holdMs: s.holdMs, graceMs: s.graceMs, quarantineMs: s.quarantineMs, log },
    );
    // A lock lost with its home is worth a warning to an operator; here it is expected.
    const syncLog = (level: string, msg: string) => world.say(`  node ${id} ${level}: ${msg}`);
    const sync = new WatchedSyncNode(
      s.endpoint, s.nodes, clock, s.graceMs, s.quarantineMs, syncLog,
      (app, _message, data) => world.lockLost(this, app, (data as { lock: string }).lock),
      (done) => this.coherence.release(done),
      this.coherence.losses,
      this.coherence.notices,
    );
    sync.watch = (party, call, ended, err) => world.served(this, party, call, ended, err);
    this.sync = sync;
  }

  /** The region's protocol (sequential: MSI). */
  get protocol(): SequentialProtocol {
    return this.coherence.protocols[0] as SequentialProtocol;
  }

  /** The region's protocol in a release run. */
  get release(): ReleaseProtocol {
    return this.coherence.protocols[0] as ReleaseProtocol;
  }

  /** Runs what the turn queued for its end, until nothing is left. */
  endTurn(): void {
    while (this.soon.length > 0) this.soon.shift()!();
  }
}
