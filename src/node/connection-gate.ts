// What local connections may hold before they have proved anything: a node's unix
// sockets accept any process allowed to connect, and each connection costs descriptors
// and memory. At most `maxPending` connections may be in their handshake at once, each
// for at most `handshakeMs`; at most `maxConnections` in all. A connection over a limit
// is closed at once, and the log says so at a bounded rate.
import { NaplusError } from '../errors.js';
import type { UnixChannel } from '../uffd/index.js';
import { LogBudget } from './log-budget.js';

export interface GateLimits {
  maxPending: number;
  maxConnections: number;
  handshakeMs: number;
}

/** One admitted connection's place: give it up exactly when the connection closes. */
export interface Ticket {
  /** The handshake is done: no more deadline, and the pending place is free. */
  established(): void;
  release(): void;
}

export class ConnectionGate {
  private pending = 0;
  private total = 0;
  private readonly refusals: LogBudget;
  private readonly timeouts: LogBudget;

  constructor(
    /** The socket, as log lines name it. */
    private readonly what: string,
    private readonly limits: GateLimits,
    log: (message: string) => void,
  ) {
    this.refusals = new LogBudget(log, `connections to ${what} refused`);
    this.timeouts = new LogBudget(log, `connections to ${what} timed out`);
  }

  /** A ticket for a new connection, or undefined: it was over a limit, and is closed. */
  admit(channel: UnixChannel): Ticket | undefined {
    const { maxPending, maxConnections, handshakeMs } = this.limits;
    if (this.pending >= maxPending || this.total >= maxConnections) {
      this.refusals.say(`${this.what}: a new connection was closed at once (${this.pending} connections in their handshake, ${this.total} in all; limits ${maxPending} and ${maxConnections})`);
      channel.close();
      return undefined;
    }
    this.pending++;
    this.total++;
    let state: 'pending' | 'established' | 'released' = 'pending';
    const deadline = setTimeout(() => {
      this.timeouts.say(`${this.what}: a connection that had not finished its handshake after ${handshakeMs} ms was closed`);
      channel.close(new NaplusError('ETIMEDOUT', `The handshake took longer than ${handshakeMs} ms`));
    }, handshakeMs);
    return {
      established: () => {
        if (state !== 'pending') return;
        state = 'established';
        this.pending--;
        clearTimeout(deadline);
      },
      release: () => {
        if (state === 'released') return;
        if (state === 'pending') {
          this.pending--;
          clearTimeout(deadline);
        }
        this.total--;
        state = 'released';
      },
    };
  }
}
