// Recording fault traces live from running nodes: each node's control socket streams
// its fault events (method `trace`) for as long as we stay subscribed.
import path from 'node:path';
import { connectControl, controlSocketPath } from '../control-client.js';
import { NaplusError } from '../errors.js';
import type { UnixChannel } from '../uffd/index.js';
import type { FaultEvent } from './fault-event.js';

export interface RecordedNode {
  /** The control socket. */
  socket: string;
  /** The node's id, from its stats. */
  id: number;
  events: number;
  /** Why the node stopped streaming before the recording ended, if it did. */
  lost?: string;
}

export type EventSink = (events: FaultEvent[], node: RecordedNode) => void;

/** A node that takes longer than this to answer a request is not a usable node. */
const ANSWER_TIMEOUT_MS = 5000;
const STATS = Buffer.from(JSON.stringify({ method: 'stats' }));
const TRACE = Buffer.from(JSON.stringify({ method: 'trace' }));

/** One node's subscription. Answers (objects) and event batches (arrays) share the channel. */
class NodeStream {
  readonly node: RecordedNode;
  readonly closed: Promise<void>;
  private readonly channel: UnixChannel;
  private live = false;
  private stopping = false;
  /** Takes the node's next answer to a request. */
  private onAnswer: (answer: Record<string, unknown>) => void = () => {};
  /** Until the stream is live: settle the subscription. */
  private started: { resolve(): void; reject(err: NaplusError): void } | undefined;
  private onClose!: () => void;

  constructor(target: string, private readonly sink: EventSink, private readonly onLost: (node: RecordedNode) => void) {
    this.node = { socket: controlSocketPath(target), id: 0, events: 0 };
    this.channel = connectControl(target);
    this.closed = new Promise((resolve) => (this.onClose = resolve));
  }

  /** Resolves once the node streams every later fault to us. */
  subscribe(): Promise<void> {
    const { socket } = this.node;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.failStart(new NaplusError('ETIMEDOUT', `${socket} did not answer as a Naplus node's control socket within ${ANSWER_TIMEOUT_MS / 1000} s; pass a node's --socket-dir or its control.sock`)), ANSWER_TIMEOUT_MS);
      const settled = (f: () => void) => {
        clearTimeout(timer);
        this.started = undefined;
        f();
      };
      this.started = { resolve: () => settled(resolve), reject: (err) => settled(() => reject(err)) };
      // Who are you first, and subscribe only once that is answered as a node would: a
      // socket that is something else then gets one request, and its refusal is read.
      this.onAnswer = (answer) => {
        if (typeof answer.node !== 'number') {
          return this.failStart(new NaplusError('EPROTO', `${socket} answered ${JSON.stringify(answer).slice(0, 200)} instead of a node's stats; is it a Naplus node's control socket?`));
        }
        this.node.id = answer.node;
        this.onAnswer = () => {};
        this.send(TRACE);
      };
      this.channel.start({
        message: (data) => this.receive(data),
        close: (reason) => {
          if (!this.live) this.failStart(new NaplusError('ECONNRESET', `${socket} hung up before it streamed any fault; is it the control socket of a running node?`));
          else if (!this.stopping) this.lose(`went away${reason ? ` (${reason.message})` : ''}`);
          this.onClose();
        },
      });
      this.send(STATS);
    });
  }

  private receive(data: Buffer): void {
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      return this.misbehaved(`sent something that is not JSON: ${data.toString().slice(0, 80)}`);
    }
    if (!Array.isArray(msg)) return this.onAnswer(msg as Record<string, unknown>);
    if (!this.live) {
      this.live = true; // the empty array that acknowledges the subscription
      return this.started?.resolve();
    }
    this.node.events += msg.length;
    this.sink(msg as FaultEvent[], this.node);
  }

  /** False if the node is gone; the channel's close then says so. */
  private send(request: Buffer): boolean {
    try {
      this.channel.send(request);
      return true;
    } catch (err) {
      this.channel.close(err as NaplusError);
      return false;
    }
  }

  private failStart(err: NaplusError): void {
    this.started?.reject(err);
    this.abort();
  }

  private lose(why: string): void {
    this.node.lost = why;
    this.onLost(this.node);
  }

  private misbehaved(why: string): void {
    if (!this.live) return this.failStart(new NaplusError('EPROTO', `${this.node.socket} ${why}; is it a Naplus node's control socket?`));
    this.abort();
    this.lose(why);
  }

  /**
   * Ends the subscription once every event the node resolved so far has arrived: the
   * node answers a request on a trace channel only after the events before it.
   */
  stop(): Promise<void> {
    if (!this.channel.isOpen) return this.closed;
    this.stopping = true;
    const timer = setTimeout(() => {
      this.node.lost = `did not answer the request to stop within ${ANSWER_TIMEOUT_MS / 1000} s; the events it had not sent yet are missing`;
      this.channel.close();
    }, ANSWER_TIMEOUT_MS);
    this.onAnswer = () => this.channel.close();
    if (!this.send(STATS)) this.node.lost = 'went away before the recording ended';
    return this.closed.finally(() => clearTimeout(timer));
  }

  /** Closes at once: the recording cannot start, or the node broke the protocol. */
  abort(): void {
    this.stopping = true;
    this.channel.close();
  }
}

export class TraceRecorder {
  private constructor(private readonly streams: NodeStream[]) {}

  get nodes(): RecordedNode[] {
    return this.streams.map((s) => s.node);
  }

  /**
   * Subscribes to every node (a socket directory or a control socket each). Fails, with
   * nothing subscribed, if any node does not answer.
   */
  static async start(targets: string[], sink: EventSink, onLost: (node: RecordedNode) => void): Promise<TraceRecorder> {
    const unique = [...new Set(targets.map((t) => path.resolve(controlSocketPath(t))))];
    const streams: NodeStream[] = [];
    try {
      for (const t of unique) streams.push(new NodeStream(t, sink, onLost));
      await Promise.all(streams.map((s) => s.subscribe()));
    } catch (err) {
      streams.forEach((s) => s.abort());
      throw err;
    }
    return new TraceRecorder(streams);
  }

  /** Stops every subscription once its node has sent all it recorded. */
  async stop(): Promise<void> {
    await Promise.all(this.streams.map((s) => s.stop()));
  }
}
