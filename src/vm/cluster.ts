// A local virtual cluster of real QEMU guests: `naplus vm up|status|down`. Per simulated
// host one /dev/shm file behind an ivshmem-plain device in each of its guests; guests
// on a bridge in a network namespace of the cluster's own; in each guest an agent, and
// (unless told otherwise) naplus-mount with the guest's BAR2 as its segment.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NaplusError } from '../errors.js';
import { inNamespace } from '../netns.js';
import type { RegionSpec } from '../local-cluster.js';
import { agentRequest } from './agent-client.js';
import { INIT_DONE } from './guest-init.js';
import { startGuestNode, segmentBytesNeeded, waitForGuestLinks, writeGuestCluster } from './guest-nodes.js';
import { checkHost, type Accel } from './host.js';
import { ensureImage } from './image.js';
import { createNetwork, destroyNetwork, guestAddress, namespaceExists, tapName } from './network.js';
import { qemuArgs } from './qemu.js';
import { agentAddress, checkClusterName, logTail, nameFlag, ours, readVmState, segmentFileOf, stateExists, vmDir, vmNetns, writeVmState, type VmGuest, type VmState } from './state.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const AGENT = path.join(here, 'guest-agent.js');
const GATEWAY = path.join(here, 'gateway.js');

export interface VmUpOptions {
  name: string;
  hosts: number;
  guestsPerHost: number;
  memoryMiB: number;
  /** Size of the region "data" of the nodes `vm up` starts; it sizes the segments. */
  regionBytes: number;
  accel: Accel | 'auto';
  bootTimeoutMs: number;
  /** Start naplus-mount in every guest (false: the caller starts its own nodes). */
  startNodes: boolean;
  /** On failure, leave what was made running, to look at it. */
  keep: boolean;
  say(line: string): void;
}

/** The cluster file of the nodes `vm up` starts: region "data", block placement. */
export const DEFAULT_GUEST_CLUSTER = 'naplus';
/** Where those nodes' sockets are in each guest: the default an app attaches to. */
export const DEFAULT_GUEST_SOCKETS = '/run/naplus';

const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(n));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function plan(opts: VmUpOptions, dir: string): VmState {
  const share = path.join(dir, 'share');
  const hosts = Array.from({ length: opts.hosts }, (_, h) => ({ name: `h${h + 1}`, segmentFile: segmentFileOf(opts.name, h + 1), segmentBytes: 0 }));
  const guests: VmGuest[] = [];
  for (let i = 1; i <= opts.hosts * opts.guestsPerHost; i++) {
    guests.push({ name: `g${i}`, host: hosts[Math.floor((i - 1) / opts.guestsPerHost)]!.name, nodeId: i, address: guestAddress(i), consoleLog: path.join(dir, `g${i}.console.log`) });
  }
  return { name: opts.name, dir, share, netns: vmNetns(opts.name), accel: 'tcg', image: { kernel: '', initrd: '', kernelPackage: '' }, memoryMiB: opts.memoryMiB, hosts, guests };
}

/** Starts `argv` in the cluster's namespace, in the background, its output in `log`; returns its pid. */
function launch(state: VmState, argv: string[], log: string): number {
  const out = fs.openSync(log, 'a');
  const [cmd, ...args] = inNamespace(state.netns, argv);
  const child = spawn(cmd!, args, { stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  child.unref();
  return child.pid!;
}

/** Waits for every guest's agent; says when each is up, fails with the console of those that are not. */
async function waitForGuests(state: VmState, timeoutMs: number, say: (line: string) => void): Promise<void> {
  const started = Date.now();
  const pending = new Set(state.guests.map((g) => g.name));
  while (pending.size > 0) {
    const dead = state.guests.find((g) => pending.has(g.name) && !ours(g.pid, state.dir));
    if (dead) {
      throw new NaplusError('ECHILD', `QEMU of guest ${dead.name} exited during boot. Its QEMU log:\n${logTail(path.join(state.dir, `${dead.name}.qemu.log`))}\nIts console:\n${logTail(dead.consoleLog)}`);
    }
    // All at once: a guest whose network is not up yet takes seconds to refuse.
    await Promise.all([...pending].map(async (name) => {
      try {
        await agentRequest(agentAddress(state, name), { op: 'ping' }, 5000);
        pending.delete(name);
        say(`  ${name} up after ${seconds(Date.now() - started)}`);
      } catch {
        // not yet
      }
    }));
    if (pending.size === 0) break;
    if (Date.now() - started > timeoutMs) {
      const late = state.guests.filter((g) => pending.has(g.name));
      const booted = late.some((g) => fs.existsSync(g.consoleLog) && fs.readFileSync(g.consoleLog, 'utf8').includes(INIT_DONE));
      throw new NaplusError(
        'ETIMEDOUT',
        `Guest(s) ${late.map((g) => g.name).join(', ')} did not come up within ${seconds(timeoutMs)}` +
          ` (${state.accel === 'tcg' ? 'TCG emulation on a busy machine is slow: try a larger --boot-timeout' : 'KVM'}${booted ? '; the kernel booted but the agent does not answer' : ''}).\n` +
          late.map((g) => `Console of ${g.name} (${g.consoleLog}), last lines:\n${logTail(g.consoleLog)}`).join('\n'),
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

export async function vmUp(opts: VmUpOptions): Promise<VmState> {
  checkClusterName(opts.name);
  const host = checkHost(opts.accel);
  if (stateExists(opts.name)) {
    const old = readVmState(opts.name);
    if (old.guests.some((g) => ours(g.pid, old.dir))) {
      throw new NaplusError('EEXIST', `Virtual cluster '${opts.name}' is already up; stop it with \`naplus vm down${nameFlag(opts.name)}\``);
    }
    await vmDown({ name: opts.name, say: () => undefined });
  }
  const say = opts.say;
  if (host.notice) say(host.notice);
  const dir = vmDir(opts.name);
  const state = plan(opts, dir);
  state.accel = host.accel;
  // Leftovers of a cluster whose state file was lost.
  if (namespaceExists(state.netns)) destroyNetwork(state.netns);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(state.share, { recursive: true, mode: 0o700 });
  writeVmState(state);
  try {
    let t0 = Date.now();
    say('Guest image (kernel and initramfs, built once from Debian packages):');
    state.image = ensureImage(say);
    say(`  ${state.image.kernelPackage}${Date.now() - t0 < 1000 ? ' (cached)' : `, built in ${seconds(Date.now() - t0)}`}, in ${path.dirname(state.image.initrd)}`);
    fs.writeFileSync(path.join(state.share, 'agent.secret'), crypto.randomBytes(32).toString('hex'), { mode: 0o600 });
    const regions: RegionSpec[] = [{ name: 'data', size: opts.regionBytes, placement: 'block' }];
    const segmentBytes = pow2(Math.max(1 << 20, segmentBytesNeeded(state, regions)));
    for (const h of state.hosts) {
      h.segmentBytes = segmentBytes;
      fs.rmSync(h.segmentFile, { force: true });
      fs.writeFileSync(h.segmentFile, '', { mode: 0o600 });
      fs.truncateSync(h.segmentFile, segmentBytes);
    }
    createNetwork(state.netns, state.guests.map((g) => g.name));
    state.gatewayPid = launch(state, [process.execPath, GATEWAY, path.join(dir, 'agents'), ...state.guests.map((g) => `${g.name}=${g.address}`)], path.join(dir, 'gateway.log'));
    writeVmState(state);
    t0 = Date.now();
    say(`Booting ${state.guests.length} guest(s) under ${state.accel.toUpperCase()} (${opts.hosts} host(s) x ${opts.guestsPerHost}, ${opts.memoryMiB} MiB each):`);
    for (const g of state.guests) {
      const h = state.hosts.find((x) => x.name === g.host)!;
      const argv = [host.qemu, ...qemuArgs({
        name: g.name, address: `${g.address}/24`, share: state.share, node: process.execPath, agent: AGENT,
        accel: state.accel, kernel: state.image.kernel, initrd: state.image.initrd, memoryMiB: opts.memoryMiB,
        segmentFile: h.segmentFile, segmentBytes: h.segmentBytes, tap: tapName(g.name),
        mac: `52:54:00:4e:00:${g.nodeId.toString(16).padStart(2, '0')}`, consoleLog: g.consoleLog,
      })];
      g.pid = launch(state, argv, path.join(dir, `${g.name}.qemu.log`));
    }
    writeVmState(state);
    await waitForGuests(state, opts.bootTimeoutMs, say);
    say(`  all ${state.guests.length} guest(s) up after ${seconds(Date.now() - t0)}`);
    if (opts.startNodes) await startDefaultNodes(state, regions, say);
    writeVmState(state);
    return state;
  } catch (err) {
    if (opts.keep) say(`Leaving what was made so far (--keep); remove it with \`naplus vm down${nameFlag(opts.name)}\``);
    else await vmDown({ name: opts.name, say: () => undefined });
    throw err;
  }
}

async function startDefaultNodes(state: VmState, regions: RegionSpec[], say: (line: string) => void): Promise<void> {
  const t0 = Date.now();
  say('Starting naplus-mount in every guest (segment: the ivshmem BAR2, write-combining):');
  const cluster = writeGuestCluster(state, { name: DEFAULT_GUEST_CLUSTER, regions });
  state.configPath = cluster.configPath;
  await Promise.all(state.guests.map(async (g) => {
    g.nodePid = await startGuestNode(state, g.name, cluster, [], DEFAULT_GUEST_SOCKETS);
    say(`  node ${g.nodeId} up in ${g.name}`);
  }));
  writeVmState(state);
  if (state.guests.length > 1) await waitForGuestLinks(state, state.guests.map((g) => g.name), DEFAULT_GUEST_SOCKETS);
  say(`  all ${state.guests.length} node(s) linked after ${seconds(Date.now() - t0)}`);
}

async function stopProcess(pid: number | undefined, dir: string): Promise<boolean> {
  if (!ours(pid, dir)) return false;
  process.kill(pid!, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (ours(pid, dir) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (ours(pid, dir)) process.kill(pid!, 'SIGKILL');
  while (ours(pid, dir)) await new Promise((r) => setTimeout(r, 20));
  return true;
}

/** Removes the network, the segment files and the folder (the processes must be gone). */
function removeLeftovers(state: VmState): void {
  destroyNetwork(state.netns);
  for (const h of state.hosts) fs.rmSync(h.segmentFile, { force: true });
  fs.rmSync(state.dir, { recursive: true, force: true });
}

/** Stops every guest and the gateway, removes the network, the segment files and the folder. */
export async function vmDown(opts: { name: string; say(line: string): void }): Promise<void> {
  const state = readVmState(checkClusterName(opts.name));
  await Promise.all(state.guests.map(async (g) => {
    if (await stopProcess(g.pid, state.dir)) opts.say(`  ${g.name} stopped`);
  }));
  await stopProcess(state.gatewayPid, state.dir);
  removeLeftovers(state);
  opts.say(`Virtual cluster '${state.name}' is down: no guest, network or segment file left.`);
}

/** vmDown at once (SIGKILL), for a run being aborted: it cannot wait. */
export function vmDestroy(name: string): void {
  if (!stateExists(name)) return;
  const state = readVmState(name);
  for (const pid of [...state.guests.map((g) => g.pid), state.gatewayPid]) if (ours(pid, state.dir)) process.kill(pid!, 'SIGKILL');
  removeLeftovers(state);
}

/** What is left of cluster `name` on this machine: processes, network, files (empty when nothing). */
export function vmLeftovers(name: string, dir = vmDir(name)): string[] {
  const left: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number)) if (ours(pid, dir)) left.push(`process ${pid}`);
  if (namespaceExists(vmNetns(name))) left.push(`network namespace ${vmNetns(name)}`);
  for (let h = 1; h <= 64; h++) if (fs.existsSync(segmentFileOf(name, h))) left.push(segmentFileOf(name, h));
  if (fs.existsSync(dir)) left.push(dir);
  return left;
}
