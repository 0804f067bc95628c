// A node's control socket, `<socketDir>/control.sock`: `stats` once, or `trace` to
// stream fault events (JSON arrays) until the peer closes; the first, empty array says
// the subscription is live. On a trace channel every answer follows the events recorded
// before its request, so a recorder that asks for `stats` and gets the answer knows it
// holds every event up to then.
//
// Its peers are treated as hostile, as on the region sockets: descriptors they send are
// closed, answers to a peer that has gone are dropped, a connection must ask something
// within the gate's deadline, and a subscriber that stops reading is dropped rather
// than queued for without bound.
import { MAX_MESSAGE, UnixServer, type UnixChannel } from '../uffd/index.js';
import type { Logger } from '../log.js';
import { ConnectionGate, type GateLimits } from './connection-gate.js';
import type { TraceLog } from './trace.js';
import type { FaultEvent } from '../trace/fault-event.js';
import fs from 'node:fs';

export const CONTROL_LIMITS: GateLimits = { maxPending: 16, maxConnections: 64, handshakeMs: 5000 };
/** Trace batches a subscriber may leave unread before it is dropped. */
const MAX_UNREAD_BATCHES = 64;

export class ControlServer {
  private readonly server: UnixServer;
  private readonly gate: ConnectionGate;
  private readonly channels = new Set<UnixChannel>();

  constructor(
    socketPath: string,
    private readonly stats: () => Record<string, unknown>,
    private readonly trace: TraceLog,
    private readonly log: Logger,
  ) {
    const warn = (m: string) => log('warn', m);
    this.gate = new ConnectionGate('control.sock', CONTROL_LIMITS, warn);
    this.server = UnixServer.listen(socketPath, (ch) => this.serve(ch), { log: warn });
  }

  private serve(channel: UnixChannel): void {
    const ticket = this.gate.admit(channel);
    if (!ticket) return;
    this.channels.add(channel);
    let unsubscribe: (() => void) | undefined;
    let flushTrace: (() => void) | undefined;
    const reply = (answer: unknown) => {
      const data = Buffer.from(JSON.stringify(answer));
      if (data.length <= MAX_MESSAGE) channel.send(data);
      else channel.send(Buffer.from(JSON.stringify({ error: `the answer (${data.length} bytes) is larger than a message may be (${MAX_MESSAGE})` })));
    };
    channel.start({
      message: (data, fds) => {
        for (const fd of fds) fs.closeSync(fd);
        ticket.established();
        const method = methodOf(data);
        flushTrace?.();
        if (!channel.isOpen) return; // the flush found the subscriber too slow
        if (method === 'stats') {
          reply(this.stats());
        } else if (method === 'trace' && !unsubscribe) {
          ({ flush: flushTrace, stop: unsubscribe } = this.subscribe(channel));
          channel.send(Buffer.from('[]')); // subscribed: every later fault will be streamed
        } else {
          const shown = method.length > 40 ? `${method.slice(0, 40)}…` : method;
          reply({ error: `unknown control method '${shown}'; use stats or trace${method === 'trace' ? ' (this connection is subscribed already)' : ''}` });
        }
      },
      close: () => {
        unsubscribe?.();
        ticket.release();
        this.channels.delete(channel);
      },
    });
  }

  /** Streams fault events to `channel` in batches, at least every 100 ms. */
  private subscribe(channel: UnixChannel): { flush(): void; stop(): void } {
    let batch: FaultEvent[] = [];
    const flush = () => {
      if (batch.length === 0 || !channel.isOpen) return;
      if (channel.queued >= MAX_UNREAD_BATCHES) {
        this.log('warn', `a fault-trace subscriber left ${MAX_UNREAD_BATCHES} batches unread; dropped it`);
        channel.close();
        return;
      }
      channel.send(Buffer.from(JSON.stringify(batch)));
      batch = [];
    };
    const timer = setInterval(flush, 100);
    const off = this.trace.subscribe((e) => {
      batch.push(e);
      if (batch.length >= 200) flush();
    });
    return {
      flush,
      stop: () => {
        clearInterval(timer);
        off();
      },
    };
  }

  close(): void {
    this.server.close();
    for (const channel of [...this.channels]) channel.close();
  }
}

/** The `method` of a request, or '' when it has none that is a string. */
function methodOf(data: Buffer): string {
  try {
    const method = (JSON.parse(data.toString()) as { method?: unknown } | null)?.method;
    return typeof method === 'string' ? method : '';
  } catch {
    return '';
  }
}
