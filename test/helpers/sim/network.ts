// The simulated network: one FIFO queue per direction between two nodes, delivered in
// any interleaving the scheduler picks. Each node sees it through an Endpoint, which is
// the `Links` its real protocol layers (NodeCoherence, SyncNode) register with, exactly
// as they register with the transport in a node.
//
// A queue carries messages, and the events a transport reports: the far end went down
// (`orderly` when its end closed the link) or came up. A link that breaks is *severed*
// until both ends have heard: what is sent on it meanwhile vanishes.
import type { Links } from '../../../src/coherence/protocol.js';
import type { Message } from '../../../src/transport/index.js';

/** `down`: the session is lost; `orderly` when the far end's process is gone (it died). */
export type Item = { kind: 'msg'; message: Message } | { kind: 'down'; orderly: boolean } | { kind: 'up' };

export interface NetworkEvents {
  /** A message that will never arrive. */
  lost(from: number, to: number, message: Message, incident: string): void;
  /** A layer sent to a peer it knows is down (the message is dropped, as the transport would). */
  sentToDown(from: number, to: number, message: Message): void;
  /** A node gave up on a peer that does not answer (Links.drop). */
  dropped(from: number, to: number, reason: string): void;
  say(line: string): void;
}

/** One node's end of the network. */
export class Endpoint implements Links {
  /** Peers this node believes up. */
  readonly up = new Set<number>();
  /** Down events heard, per peer. */
  readonly downs = new Map<number, number>();
  private readonly handlers = new Map<number, (peer: number, message: Message) => void>();
  private readonly downListeners: Array<(peer: number, byPeer: boolean) => void> = [];
  private readonly upListeners: Array<(peer: number) => void> = [];

  constructor(
    readonly self: number,
    private readonly net: SimNetwork,
  ) {}

  isUp(peer: number): boolean {
    return this.up.has(peer);
  }

  send(peer: number, message: Message): void {
    this.net.send(this.self, peer, message);
  }

  handle(type: number, handler: (peer: number, message: Message) => void): void {
    this.handlers.set(type, handler);
  }

  drop(peer: number, reason: string): void {
    this.net.drop(this.self, peer, reason);
  }

  onPeerDown(listener: (peer: number, byPeer: boolean) => void): void {
    this.downListeners.push(listener);
  }

  onPeerUp(listener: (peer: number) => void): void {
    this.upListeners.push(listener);
  }

  receive(from: number, item: Item): void {
    if (item.kind === 'msg') {
      const handler = this.handlers.get(item.message.type);
      if (!handler) throw new Error(`node ${this.self} has no handler for messages of type ${item.message.type}`);
      handler(from, item.message);
    } else if (item.kind === 'down') {
      this.up.delete(from);
      this.downs.set(from, (this.downs.get(from) ?? 0) + 1);
      for (const l of this.downListeners) l(from, item.orderly);
    } else {
      this.up.add(from);
      for (const l of this.upListeners) l(from);
    }
  }
}

/** What the transport does to a message on its way: the receiver gets its own copy. */
function copy(message: Message): Message {
  const out: Message = { type: message.type, body: message.body instanceof Uint8Array ? Buffer.from(message.body) : structuredClone(message.body) };
  if (message.pages) out.pages = message.pages.map((p) => ({ page: p.page, data: Buffer.from(p.data) }));
  return out;
}

export class SimNetwork {
  private readonly queues = new Map<string, Item[]>();
  /** Links broken whose sending end has not heard yet: sends on them vanish. Key "a>b". */
  private readonly severed = new Map<string, string>();
  /**
   * Queues that must be delivered by a time: the far end must hear of a broken link
   * before the near end's quarantine is over (what heartbeat timeouts guarantee).
   */
  readonly deadlines = new Map<string, number>();
  /** The live nodes' endpoints. */
  readonly endpoints = new Map<number, Endpoint>();
  /**
   * Links whose connection was reset and is being redialed, until a time: the transport
   * resumes the session, so nothing is lost and nobody hears of it; only delivery waits.
   */
  private readonly paused = new Map<string, number>();

  constructor(
    private readonly random: () => number,
    private readonly events: NetworkEvents,
  ) {}

  /** A node (re)starts: a fresh endpoint, knowing no peer up yet. */
  attach(id: number): Endpoint {
    const e = new Endpoint(id, this);
    this.endpoints.set(id, e);
    return e;
  }

  detach(id: number): void {
    this.endpoints.delete(id);
  }

  queue(a: number, b: number): Item[] {
    const key = `${a}>${b}`;
    let q = this.queues.get(key);
    if (!q) this.queues.set(key, (q = []));
    return q;
  }

  /** The connection between a and b is reset; the session resumes at `until`. */
  reset(a: number, b: number, until: number): void {
    this.paused.set(`${a}>${b}`, until);
    this.paused.set(`${b}>${a}`, until);
  }

  /** When the next reset queue with something in it resumes (Infinity: none waits). */
  nextResume(now: number): number {
    let next = Infinity;
    for (const [key, until] of this.paused) if (until > now && (this.queues.get(key)?.length ?? 0) > 0) next = Math.min(next, until);
    return next;
  }

  /** Every queue with something to deliver to a live node now, as [from, to]. */
  deliverable(now: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const [key, q] of this.queues) {
      if (q.length === 0 || (this.paused.get(key) ?? 0) > now) continue;
      const [a, b] = key.split('>').map(Number) as [number, number];
      if (this.endpoints.has(b)) out.push([a, b]);
    }
    return out;
  }

  /** Every queue, as [from, to, items]. */
  *all(): Generator<[number, number, Item[]]> {
    for (const [key, q] of this.queues) {
      const [a, b] = key.split('>').map(Number) as [number, number];
      yield [a, b, q];
    }
  }

  send(from: number, to: number, message: Message): void {
    const sender = this.endpoints.get(from)!;
    if (!sender.up.has(to)) {
      this.events.sentToDown(from, to, message);
      return;
    }
    const incident = this.severed.get(`${from}>${to}`);
    if (incident !== undefined) {
      this.events.say(`  ${from}→${to} message lost (link broken)`);
      this.events.lost(from, to, message, incident);
      return;
    }
    this.queue(from, to).push({ kind: 'msg', message: copy(message) });
  }

  drop(from: number, to: number, reason: string): void {
    this.events.dropped(from, to, reason);
  }

  /** Delivers the next item from a to b. */
  deliver(from: number, to: number): Item {
    const item = this.queue(from, to).shift()!;
    if (this.queue(from, to).length === 0) this.deadlines.delete(`${from}>${to}`);
    if (item.kind === 'down') this.severed.delete(`${to}>${from}`);
    this.endpoints.get(to)!.receive(from, item);
    return item;
  }

  severedBy(a: number, b: number): string | undefined {
    return this.severed.get(`${a}>${b}`);
  }

  sever(a: number, b: number, incident: string): void {
    this.severed.set(`${a}>${b}`, incident);
  }

  unsever(a: number, b: number): void {
    this.severed.delete(`${a}>${b}`);
  }

  /** Forgets what a dead node believed of its links. */
  forgetSeveredFrom(id: number): void {
    for (const key of [...this.severed.keys()]) if (key.startsWith(`${id}>`)) this.severed.delete(key);
  }

  /** Cuts the queue a→b at a random point: a prefix arrives, the rest is lost. */
  cut(a: number, b: number, incident: string): void {
    const q = this.queue(a, b);
    const keep = Math.floor(this.random() * (q.length + 1));
    this.lose(a, b, q.splice(keep), incident);
  }

  /** Everything queued a→b is lost. */
  drain(a: number, b: number, incident: string): void {
    this.lose(a, b, this.queue(a, b).splice(0), incident);
  }

  private lose(a: number, b: number, items: Item[], incident: string): void {
    for (const item of items) if (item.kind === 'msg') this.events.lost(a, b, item.message, incident);
  }
}
