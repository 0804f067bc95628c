// An attached region's guardian, seen from the app's main thread: it starts the worker
// (guardian-worker.ts, which says what it does and why), hands it the app's userfaultfd,
// and hears when it fenced the region (the node is gone): from then on every access
// takes SIGBUS and every call rejects with the reason.
import { Worker } from 'node:worker_threads';
import { NaplusError } from '../errors.js';
import type { Liveness } from '../attach-protocol.js';

export interface GuardianSetup {
  socketPath: string;
  region: string;
  nodeUid?: number;
  /** The app's userfaultfd: the guardian owns it from now on. */
  uffd: number;
  pageSize: number;
  /** Where the region is mapped in this process. */
  address: number;
  length: number;
  liveness: Liveness;
}

export type GuardianReport = { watched: true } | { fenced: string };

export class Guardian {
  private readonly worker: Worker;

  private constructor(worker: Worker) {
    this.worker = worker;
  }

  /** Starts the guardian; resolves once its lifeline is up. `onFenced` hears why it fenced the region. */
  static start(setup: GuardianSetup, onFenced: (reason: string) => void): Promise<Guardian> {
    const worker = new Worker(new URL('./guardian-worker.js', import.meta.url), { workerData: setup });
    worker.unref(); // it watches; it does not keep the app alive
    return new Promise((resolve, reject) => {
      let up = false;
      worker.on('message', (r: GuardianReport) => {
        if ('watched' in r) {
          up = true;
          resolve(new Guardian(worker));
        } else if (up) {
          onFenced(r.fenced);
        } else {
          reject(new NaplusError('ECONNRESET', `The region's guardian could not watch the node: ${r.fenced}`));
        }
      });
      worker.on('error', (err) => {
        if (up) onFenced(`its guardian failed: ${err.message}`);
        else reject(new NaplusError('EIO', `The region's guardian did not start: ${err.message}`));
      });
    });
  }

  /** The app detaches: the guardian lets go without fencing. */
  stop(): void {
    this.worker.postMessage('stop');
  }
}
