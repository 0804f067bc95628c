// Clusters for the tests in real guests: the nodes are naplus-mount processes in the
// guests of the virtual cluster test/vm/run.ts booted (one node per guest, each on its
// guest's ivshmem BAR), and the apps run in the guests too, each behind a
// `naplus vm exec` process on the host, exactly as a user runs one. Every cluster
// starts on zeroed segments (the host writes zeros into the files behind the ivshmem
// devices while no node runs), so no test sees what an earlier one left.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { agentRun, type CommandResult } from '../../../src/vm/agent-client.js';
import { startGuestNode, stopGuestNode, waitForGuestLinks, writeGuestCluster, type BarMapping, type GuestCluster } from '../../../src/vm/guest-nodes.js';
import { agentAddress, readVmState, type VmState } from '../../../src/vm/state.js';
import { startApp, type ClusterOptions, type TestApp } from '../../helpers/cluster.js';
import type { SuiteCluster } from '../../helpers/cross-host-suite.js';

const NAPLUS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../cli/naplus.js');
let clusters = 0;

/** The virtual cluster test/vm/run.ts booted for this run. */
export function vm(): VmState {
  const name = process.env.NAPLUS_VM_NAME;
  if (!name) throw new Error('The tests in real guests run through `npm run test:vm`, which boots the guests first');
  return readVmState(name);
}

/** The command line that runs `argv` in `guest` the way a user does: `naplus vm exec`. */
export const inGuest = (state: VmState, guest: string) => (argv: string[]) => [process.execPath, NAPLUS, 'vm', 'exec', '--name', state.name, guest, '--', ...argv];

export interface GuestTestCluster extends SuiteCluster {
  state: VmState;
  cluster: GuestCluster;
  /** The guest node `id` runs in. */
  guestOf(id: number): string;
}

function zeroSegments(state: VmState): void {
  const zeros = Buffer.alloc(1 << 20);
  for (const h of state.hosts) {
    const fd = fs.openSync(h.segmentFile, 'r+');
    try {
      for (let at = 0; at < h.segmentBytes; at += zeros.length) fs.writeSync(fd, zeros, 0, Math.min(zeros.length, h.segmentBytes - at), at);
    } finally {
      fs.closeSync(fd);
    }
  }
}

export async function makeGuestCluster(opts: ClusterOptions & { mapping?: BarMapping }): Promise<GuestTestCluster> {
  const state = vm();
  const want = (opts.hosts ?? 1) * (opts.nodesPerHost ?? 1);
  if (opts.hosts !== state.hosts.length || want !== state.guests.length) {
    throw new Error(`This test wants ${opts.hosts} x ${opts.nodesPerHost} nodes; the virtual cluster has ${state.hosts.length} hosts and ${state.guests.length} guests`);
  }
  zeroSegments(state);
  const cluster = writeGuestCluster(state, { name: `t${process.pid}x${clusters++}`, regions: opts.regions, transport: opts.transport, mapping: opts.mapping });
  const guestOf = (id: number) => state.guests.find((g) => g.nodeId === id)!.name;
  const pids = new Map<number, number>();
  const apps: TestApp[] = [];
  const c: GuestTestCluster = {
    state,
    cluster,
    guestOf,
    async start(id) {
      pids.set(id, await startGuestNode(state, guestOf(id), cluster, opts.nodeArgs ?? []));
    },
    async stopNode(id, signal = 'SIGTERM') {
      const pid = pids.get(id)!;
      pids.delete(id);
      return stopGuestNode(state, guestOf(id), pid, signal);
    },
    async app(id, region) {
      const app = await startApp(cluster.socketDir, region, inGuest(state, guestOf(id)));
      apps.push(app);
      return app;
    },
    linked() {
      return waitForGuestLinks(state, [...pids.keys()].map(guestOf), cluster.socketDir);
    },
    nodeLog(id) {
      const file = cluster.logPath(guestOf(id));
      return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    },
    async close() {
      for (const a of apps) a.child.kill('SIGKILL');
      await Promise.all(apps.map((a) => a.exited));
      await Promise.all([...pids.keys()].map((id) => c.stopNode(id)));
    },
  };
  if (opts.start !== false) {
    try {
      // Settled, not all: a node still starting when another fails would format the
      // segments after the next cluster zeroed them.
      const started = await Promise.allSettled(state.guests.map((g) => c.start(g.nodeId)));
      const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
      await c.linked();
    } catch (err) {
      await c.close();
      throw err;
    }
  }
  return c;
}

/** Runs `argv` in `guest` (through its agent, no `naplus vm exec` process) and collects its output. */
export function runInGuest(state: VmState, guest: string, argv: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  return agentRun(agentAddress(state, guest), argv, env);
}
