// Where a virtual cluster keeps what later commands need (`vm status`, `exec`, `down`),
// and how they reach its guests. Two folders under the temp dir:
//   naplus-vm-<name>/        host only: state.json, the gateway's sockets, consoles, QEMU logs
//   naplus-vm-<name>/share/  also mounted in every guest, at the same path: the agent
//                            secret, cluster files and their secrets, node logs
// The guests can write the share, so nothing the host acts on (pids to kill) lives there.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NaplusError } from '../errors.js';
import type { AgentAddress } from './agent-client.js';
import type { Accel } from './host.js';
import type { GuestImage } from './image.js';

export const DEFAULT_VM_CLUSTER = 'vm';
const NAME = /^[a-z0-9][a-z0-9-]{0,23}$/;

export interface VmGuest {
  name: string;
  host: string;
  /** The Naplus node id of the guest's naplus-mount. */
  nodeId: number;
  address: string;
  /** QEMU's pid, once started. */
  pid?: number;
  consoleLog: string;
  /** naplus-mount's pid in the guest, when `vm up` started one. */
  nodePid?: number;
}

export interface VmHost {
  name: string;
  /** The /dev/shm file behind the host's ivshmem device. */
  segmentFile: string;
  segmentBytes: number;
}

export interface VmState {
  name: string;
  dir: string;
  share: string;
  netns: string;
  accel: Accel;
  image: GuestImage;
  memoryMiB: number;
  hosts: VmHost[];
  guests: VmGuest[];
  gatewayPid?: number;
  /** The cluster file of the nodes `vm up` started, if it started them. */
  configPath?: string;
}

/** `--name x` for commands shown to the user, nothing for the default cluster. */
export const nameFlag = (name: string) => (name === DEFAULT_VM_CLUSTER ? '' : ` --name ${name}`);

/** The last lines of a log file, indented, for error messages. */
export function logTail(file: string, lines = 15): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return `    (${file} is missing)`;
  }
  const last = text.replace(/\r/g, '').trimEnd().split('\n').slice(-lines);
  return last.length && last[0] ? last.map((l) => `    ${l}`).join('\n') : `    (${file} is empty)`;
}

export function checkClusterName(name: string): string {
  if (!NAME.test(name)) throw new NaplusError('EINVAL', `--name must be 1 to 24 characters of a-z, 0-9 and '-', got '${name}'`);
  return name;
}

export const vmDir = (name: string) => path.join(os.tmpdir(), `naplus-vm-${name}`);
export const vmNetns = (name: string) => `naplus-vm-${name}`;
/** The /dev/shm file behind the ivshmem device of host number `h` (1-based). */
export const segmentFileOf = (name: string, h: number) => `/dev/shm/naplus-vm-${name}-h${h}`;
const stateFile = (name: string) => path.join(vmDir(name), 'state.json');

export function stateExists(name: string): boolean {
  return fs.existsSync(stateFile(name));
}

export function readVmState(name: string): VmState {
  checkClusterName(name);
  try {
    return JSON.parse(fs.readFileSync(stateFile(name), 'utf8')) as VmState;
  } catch {
    throw new NaplusError('ENOENT', `No virtual cluster '${name}' is up; start one with \`naplus vm up${nameFlag(name)}\``);
  }
}

export function writeVmState(state: VmState): void {
  const file = stateFile(state.name);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2));
  fs.renameSync(`${file}.tmp`, file);
}

export function findGuest(state: VmState, guest: string): VmGuest {
  const g = state.guests.find((x) => x.name === guest);
  if (!g) throw new NaplusError('ENOENT', `Virtual cluster '${state.name}' has no guest '${guest}'; its guests are ${state.guests.map((x) => x.name).join(', ')}`);
  return g;
}

export function agentAddress(state: VmState, guest: string): AgentAddress {
  findGuest(state, guest);
  const secret = Buffer.from(fs.readFileSync(path.join(state.share, 'agent.secret'), 'utf8').trim());
  return { guest, socket: path.join(state.dir, 'agents', `${guest}.sock`), secret };
}

/** True when `pid` runs and its command line mentions `dir` (so it is one of ours, not a reused pid). */
export function ours(pid: number | undefined, dir: string): boolean {
  if (!pid) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${dir}/`);
  } catch {
    return false;
  }
}
