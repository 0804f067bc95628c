// Locks and barriers as served by their home node, for parties (apps) on any node.
// FIFO-fair locks held by one party; a holder that goes away (its app detached or
// crashed, or its whole node was lost) releases its locks, and the next waiter is
// told with EOWNERDEAD (its lock() rejects; the lock passes to the waiter after it).
// So is the next waiter of a holder that let go with writes it could not make durable
// (release consistency: see SyncNode.unlock).
// Barriers release all parties at once and are reusable; a party that goes away after
// arriving withdraws its arrival.
import { NaplusError } from '../errors.js';

/** An app, named cluster-wide by its node and its id there. */
export interface Party {
  node: number;
  app: number;
  pid: number;
}

/** How a call ends: with nothing, or with the error it failed with. */
export type Done = (err?: NaplusError) => void;

interface Waiter {
  party: Party;
  done: Done;
}

interface LockState {
  holder: Party | undefined;
  queue: Waiter[];
}

interface BarrierState {
  parties: number;
  arrived: Waiter[];
}

const same = (a: Party | undefined, b: Party): boolean => a !== undefined && a.node === b.node && a.app === b.app;

export class SyncService {
  private locks = new Map<string, LockState>();
  private barriers = new Map<string, BarrierState>();

  lock(party: Party, name: string, done: Done): void {
    const lock = this.locks.get(name) ?? { holder: undefined, queue: [] };
    this.locks.set(name, lock);
    if (same(lock.holder, party)) return done(new NaplusError('EDEADLK', `Lock '${name}' is already held by this app`));
    if (lock.holder) return void lock.queue.push({ party, done });
    lock.holder = party;
    done();
  }

  /** `lost`: the holder's writes may be lost; the next waiter is told as if the holder had died. */
  unlock(party: Party, name: string, done: Done, lost = false): void {
    const lock = this.locks.get(name);
    if (!lock || !same(lock.holder, party)) return done(new NaplusError('EPERM', `Lock '${name}' is not held by this app`));
    if (lost) this.passLost(name, lock, `The holder of lock '${name}' (pid ${party.pid} on node ${party.node}) could not make all its writes durable`);
    else this.pass(name, lock);
    done();
  }

  private pass(name: string, lock: LockState): void {
    const next = lock.queue.shift();
    lock.holder = next?.party;
    if (next) next.done();
    else this.locks.delete(name);
  }

  barrier(party: Party, name: string, parties: number, done: Done): void {
    const b = this.barriers.get(name) ?? { parties, arrived: [] };
    if (b.parties !== parties) return done(new NaplusError('EINVAL', `Barrier '${name}' is waiting for ${b.parties} parties, not ${parties}`));
    this.barriers.set(name, b);
    b.arrived.push({ party, done });
    if (b.arrived.length < parties) return;
    this.barriers.delete(name); // the next use of the name is a new round
    for (const w of b.arrived) w.done();
  }

  /** What is held and waited for here, for stats. */
  describe(): { locks: Record<string, { holder: string; waiting: number }>; barriers: Record<string, { arrived: number; parties: number }> } {
    const who = (p: Party) => `pid ${p.pid} on node ${p.node}`;
    return {
      locks: Object.fromEntries([...this.locks].map(([name, l]) => [name, { holder: l.holder ? who(l.holder) : '', waiting: l.queue.length }])),
      barriers: Object.fromEntries([...this.barriers].map(([name, b]) => [name, { arrived: b.arrived.length, parties: b.parties }])),
    };
  }

  /** Parties that match `gone` went away: their locks pass on (the next waiter told), their waits end. */
  forget(gone: (p: Party) => boolean, why: (p: Party) => string): void {
    this.withdraw(gone);
    this.release(gone, why);
  }

  /** Parties that match `gone` wait no more: their places in lock queues and their barrier arrivals go. */
  withdraw(gone: (p: Party) => boolean): void {
    for (const lock of this.locks.values()) lock.queue = lock.queue.filter((w) => !gone(w.party));
    for (const [name, b] of this.barriers) {
      b.arrived = b.arrived.filter((w) => !gone(w.party));
      if (b.arrived.length === 0) this.barriers.delete(name);
    }
  }

  /** The locks that parties matching `gone` hold pass on; the next waiter is told with EOWNERDEAD. */
  release(gone: (p: Party) => boolean, why: (p: Party) => string): void {
    for (const [name, lock] of this.locks) {
      if (!lock.holder || !gone(lock.holder)) continue;
      this.passLost(name, lock, `The holder of lock '${name}' (${why(lock.holder)}) died`);
    }
  }

  /** The lock passes on from a holder whose writes may be lost: the next waiter is told (EOWNERDEAD), the one after gets it. */
  private passLost(name: string, lock: LockState, what: string): void {
    const told = lock.queue.shift();
    told?.done(new NaplusError('EOWNERDEAD', `${what}; the data it protects may be inconsistent. The lock is free: take it again`));
    this.pass(name, lock);
  }
}
