// Locks and barriers of one node's apps. FIFO-fair locks held by apps; a holder that
// detaches (exits, crashes) releases its locks, and the next waiter is told with
// EOWNERDEAD (its lock() rejects; the lock passes to the waiter after it). Barriers
// release all parties at once and are reusable; an app that detaches after arriving
// withdraws its arrival.
//
// This serves the apps of a single-node cluster; across nodes the same requests are
// served by each lock's home (src/coherence), which the node will forward to.
import { NaplusError } from '../errors.js';
import type { AppLink } from './region.js';

interface Waiter {
  app: AppLink;
  grant: () => void;
  reject: (err: NaplusError) => void;
}

interface LockState {
  holder: AppLink | undefined;
  queue: Waiter[];
}

interface BarrierState {
  parties: number;
  arrived: Waiter[];
}

export class SyncService {
  private locks = new Map<string, LockState>();
  private barriers = new Map<string, BarrierState>();

  lock(app: AppLink, name: string): Promise<void> {
    const lock = this.locks.get(name) ?? { holder: undefined, queue: [] };
    this.locks.set(name, lock);
    if (lock.holder === app) return Promise.reject(new NaplusError('EDEADLK', `Lock '${name}' is already held by this app`));
    if (!lock.holder) {
      lock.holder = app;
      return Promise.resolve();
    }
    return new Promise((grant, reject) => lock.queue.push({ app, grant, reject }));
  }

  unlock(app: AppLink, name: string): void {
    const lock = this.locks.get(name);
    if (!lock || lock.holder !== app) throw new NaplusError('EPERM', `Lock '${name}' is not held by this app`);
    this.pass(name, lock);
  }

  private pass(name: string, lock: LockState): void {
    const next = lock.queue.shift();
    lock.holder = next?.app;
    if (next) next.grant();
    else this.locks.delete(name);
  }

  barrier(app: AppLink, name: string, parties: number): Promise<void> {
    const b = this.barriers.get(name) ?? { parties, arrived: [] };
    if (b.parties !== parties) {
      return Promise.reject(new NaplusError('EINVAL', `Barrier '${name}' is waiting for ${b.parties} parties, not ${parties}`));
    }
    this.barriers.set(name, b);
    return new Promise<void>((grant, reject) => {
      b.arrived.push({ app, grant, reject });
      if (b.arrived.length < parties) return;
      this.barriers.delete(name); // the next use of the name is a new round
      for (const w of b.arrived) w.grant();
    });
  }

  /** An app detached: its locks pass on (the next waiter told), its waits end. */
  appGone(app: AppLink): void {
    for (const [name, lock] of this.locks) {
      lock.queue = lock.queue.filter((w) => w.app !== app);
      if (lock.holder !== app) continue;
      const told = lock.queue.shift();
      told?.reject(new NaplusError('EOWNERDEAD', `The holder of lock '${name}' (pid ${app.pid}) died; the data it protects may be inconsistent. The lock is free: take it again`));
      this.pass(name, lock);
    }
    for (const [name, b] of this.barriers) {
      b.arrived = b.arrived.filter((w) => w.app !== app);
      if (b.arrived.length === 0) this.barriers.delete(name);
    }
  }
}
