// Naplus nodes inside the guests: a cluster file naming each guest's address and its
// ivshmem BAR as the segment (the same path in every guest, see config.ts), and
// naplus-mount started, watched and stopped through the guests' agents.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateConfig, type TransportConfig } from '../config.js';
import { NaplusError } from '../errors.js';
import { RegionLayout, planSegment } from '../node/layout.js';
import { waitForLinks, type LinkStats, type RegionSpec } from '../local-cluster.js';
import { agentRequest } from './agent-client.js';
import { GUEST_BAR } from './qemu.js';
import { agentAddress, logTail, type VmState } from './state.js';

const MOUNT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../cli/naplus-mount.js');
/** The guest's node listens here on the guest's address. */
export const NODE_PORT = 7100;

/** How a guest maps its BAR: write-combining (the default, faster where it matters) or uncached. */
export type BarMapping = 'resource2_wc' | 'resource2';

export interface GuestClusterSpec {
  /** Cluster name; its files go to `<share>/<name>/`. */
  name: string;
  regions: RegionSpec[];
  transport?: Partial<Omit<TransportConfig, 'tls'>>;
  mapping?: BarMapping;
}

export interface GuestCluster {
  name: string;
  configPath: string;
  /** Where the node's sockets go in every guest. */
  socketDir: string;
  /** Node log of each guest, on the share (read it on the host). */
  logPath(guest: string): string;
}

/** Bytes the largest host segment needs for `regions` over the guests of `state`. */
export function segmentBytesNeeded(state: Pick<VmState, 'hosts' | 'guests' | 'share'>, regions: RegionSpec[]): number {
  // Validation reads a secret: the agent's, which is there by now, serves.
  const raw = { ...rawCluster(state, 'probe', regions, 'resource2_wc', 2 ** 40), secretFile: 'agent.secret' };
  const probe = validateConfig(raw, path.join(state.share, 'probe.json'));
  const layouts = probe.regions.map((r) => new RegionLayout(probe, r));
  return Math.max(...probe.hosts.map((h) => planSegment(layouts, h.name).needed));
}

function rawCluster(state: Pick<VmState, 'hosts' | 'guests'>, name: string, regions: RegionSpec[], mapping: BarMapping, segmentBytes?: number) {
  return {
    cluster: name,
    secretFile: `${name}.secret`,
    hosts: state.hosts.map((h) => ({
      name: h.name,
      segment: { path: GUEST_BAR.replace(/resource2$/, mapping), size: segmentBytes ?? h.segmentBytes },
      nodes: state.guests.filter((g) => g.host === h.name).map((g) => ({ id: g.nodeId, listen: `${g.address}:${NODE_PORT}` })),
    })),
    regions,
  };
}

/** Writes a cluster file (and its secret) for nodes in the guests; checks that the segments hold it. */
export function writeGuestCluster(state: VmState, spec: GuestClusterSpec): GuestCluster {
  const dir = path.join(state.share, spec.name);
  fs.mkdirSync(dir, { recursive: true });
  const secret = path.join(dir, `${spec.name}.secret`);
  if (!fs.existsSync(secret)) fs.writeFileSync(secret, crypto.randomBytes(32).toString('base64'), { mode: 0o600 });
  const configPath = path.join(dir, 'cluster.json');
  const raw = { ...rawCluster(state, spec.name, spec.regions, spec.mapping ?? 'resource2_wc'), ...(spec.transport ? { transport: spec.transport } : {}) };
  const config = validateConfig(raw, configPath);
  const layouts = config.regions.map((r) => new RegionLayout(config, r));
  for (const h of state.hosts) {
    const needed = planSegment(layouts, h.name).needed;
    if (needed > h.segmentBytes) {
      throw new NaplusError('ENOSPC', `Cluster ${spec.name} needs ${needed} bytes of segment on host ${h.name}, but the guests' ivshmem devices have ${h.segmentBytes}; start the virtual cluster with a larger --size`);
    }
  }
  fs.writeFileSync(configPath, `${JSON.stringify(raw, null, 2)}\n`);
  return { name: spec.name, configPath, socketDir: `/run/naplus-${spec.name}`, logPath: (guest) => path.join(dir, `${guest}.log`) };
}

/**
 * Starts naplus-mount in `guest` for `cluster` and resolves with its pid (in the guest)
 * once its control socket answers; rejects with its last log lines if it exits first.
 */
export async function startGuestNode(state: VmState, guest: string, cluster: GuestCluster, extraArgs: string[] = [], socketDir = cluster.socketDir): Promise<number> {
  const addr = agentAddress(state, guest);
  const g = state.guests.find((x) => x.name === guest)!;
  const log = cluster.logPath(guest);
  const argv = [process.execPath, MOUNT, '--cluster', cluster.configPath, '--node', String(g.nodeId), '--socket-dir', socketDir, ...extraArgs];
  const { pid } = await agentRequest<{ pid: number }>(addr, { op: 'spawn', argv, log });
  const deadline = Date.now() + 120_000;
  try {
    for (;;) {
      try {
        await agentRequest(addr, { op: 'control', socketDir, method: 'stats' });
        return pid;
      } catch {
        const { exited } = await agentRequest<{ exited?: { code: number | null; signal: string | null } }>(addr, { op: 'kill', pid, signal: 0 });
        if (exited) throw new NaplusError('ENODEV', `naplus-mount in guest ${guest} exited with ${exited.code ?? exited.signal}:\n${logTail(log, 8)}`);
        if (Date.now() > deadline) throw new NaplusError('ETIMEDOUT', `naplus-mount in guest ${guest} did not answer within 120 s:\n${logTail(log, 8)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } catch (err) {
    // A node that did not come up is not left running: nobody would know its pid.
    await agentRequest(addr, { op: 'kill', pid, signal: 'SIGKILL', wait: true }).catch(() => undefined);
    throw err;
  }
}

/** Signals a node started by startGuestNode; resolves with its exit code once it has exited. */
export async function stopGuestNode(state: VmState, guest: string, pid: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  const { exited } = await agentRequest<{ exited: { code: number | null } }>(agentAddress(state, guest), { op: 'kill', pid, signal, wait: true });
  return exited.code;
}

/** A node's `stats` (as its control socket answers them), asked in its guest. */
export async function guestNodeStats<T = Record<string, unknown>>(state: VmState, guest: string, socketDir: string): Promise<T> {
  const { result } = await agentRequest<{ result: T }>(agentAddress(state, guest), { op: 'control', socketDir, method: 'stats' });
  return result;
}

/** Resolves once the nodes in `guests` are all linked to each other. */
export function waitForGuestLinks(state: VmState, guests: string[], socketDir: string, timeoutMs = 120_000): Promise<void> {
  return waitForLinks(guests, timeoutMs, (guest) => guestNodeStats<LinkStats>(state, guest, socketDir));
}
