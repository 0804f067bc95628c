// The guardian of one attached region, in a worker thread of the app: the app's main
// thread may be blocked in a fault, or busy with plain loads and stores, so nothing it
// would have to run can be what notices that its node is gone.
//
// It holds the app's userfaultfd (the node holds the other reference) and a lifeline to
// the node: a connection of its own that it pings every heartbeat. When the lifeline
// closes (the node died or stopped cleanly) or goes unanswered for the node's own
// timeout (the node is stopped or starved), the guardian fences the region: the mapping
// is replaced in place by one that faults with SIGBUS at every access, and the faults
// waiting in the kernel are woken to take it. So an app never goes on with a copy no
// other node will see again, nor reads one others have since overwritten. It fences in
// time: peers forget a silent node only after that timeout plus two heartbeats.
import { parentPort, workerData } from 'node:worker_threads';
import { Mapping, UnixChannel, Userfaultfd } from '../uffd/index.js';
import { ATTACH_PROTOCOL, decode, encode, type NodeToApp } from '../attach-protocol.js';
import { checkNodeOwner } from './node-owner.js';
import type { GuardianSetup, GuardianReport } from './guardian.js';

const setup = workerData as GuardianSetup;
const uffd = Userfaultfd.adopt(setup.uffd, { pageSize: setup.pageSize });
const { heartbeatMs, timeoutMs } = setup.liveness;
let done = false;
let lastHeard = Date.now();
let lastTick = Date.now();
let lifeline: UnixChannel | undefined;

function report(r: GuardianReport): void {
  parentPort!.postMessage(r);
}

/** Every access to the region takes SIGBUS from now on; what waits in a fault is woken to take it. */
function fence(reason: string): void {
  if (done) return;
  done = true;
  clearInterval(timer);
  try {
    Mapping.fence(setup.address, setup.length);
    uffd.wake(setup.address, setup.length);
  } finally {
    uffd.close();
    lifeline?.close();
    report({ fenced: reason });
  }
}

/** The app detached: let go of everything, fence nothing. */
function stop(): void {
  if (done) return;
  done = true;
  clearInterval(timer);
  uffd.close();
  lifeline?.close();
  parentPort!.close();
}

parentPort!.on('message', (m) => m === 'stop' && stop());

const timer = setInterval(() => {
  const now = Date.now();
  // A tick that comes late means this process did not run: the node's answers may be
  // waiting unread. Judge at the next tick, once they have been read.
  const stalled = now - lastTick > 2 * heartbeatMs;
  lastTick = now;
  if (!stalled && now - lastHeard > timeoutMs) return fence(`the node has not answered for ${now - lastHeard} ms`);
  lifeline?.send(encode({ op: 'ping' }));
}, heartbeatMs);

try {
  lifeline = UnixChannel.connect(setup.socketPath);
  checkNodeOwner(lifeline, setup.socketPath, setup.nodeUid);
  lifeline.start({
    message(data) {
      lastHeard = Date.now();
      const msg = decode<NodeToApp>(data);
      if (msg.op === 'refused') fence(`the node refused the lifeline: ${msg.message}`);
      else if (msg.op === 'watched') report({ watched: true });
    },
    close() {
      fence('the node closed its connection');
    },
  });
  lifeline.send(encode({ op: 'hello', version: ATTACH_PROTOCOL, region: setup.region, lifeline: true }));
} catch (err) {
  fence(`no lifeline to the node: ${(err as Error).message}`);
}
