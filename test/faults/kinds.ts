// The fault kinds the nemesis draws from. Each is a small object: what it holds while it
// runs (at most one fault per resource at once: the promise covers any one node or link
// failing, while the disk can fill meanwhile), why it cannot run here, and `run`, which
// picks a target among what is healthy, injects, waits, and heals. The nemesis then
// waits until the cluster is whole again before that resource is free.
//
// Kinds to come plug in the same way:
//   host: for every node of one host `env.kill(id, 'host')`, remove the host's segment
//     file (env.cluster.files.segments[h]), wait, `env.restart(id)` for each.
//   restart-under-app: `env.kill(id, ...)` with a policy saying the node's apps must wait
//     rather than be told (the checker's orphan deadline becomes "no progress until the
//     node is back"), a restart delay below peerTimeoutMs, `env.restart(id)`.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { FaultEnv } from './env.js';
import { killConnection, socketKillUnavailable } from './sockets.js';

export type Resource = 'node-or-link' | 'disk';

export interface FaultContext {
  env: FaultEnv;
  rng: () => number;
  /** What the fault hit, for the report ("node 3", "link 1-4"). */
  target(what: string): void;
  /** A fact about this fault worth a line in the report. */
  note(what: string): void;
  /** Adds to a per-kind figure reported beside the counts (sockets killed, say). */
  tally(figure: string, n: number): void;
}

export interface FaultKind {
  readonly name: string;
  /** What it does, for the report. */
  readonly description: string;
  readonly resource: Resource;
  /** Apps must feel this fault as latency only: none may be told. */
  readonly undisturbed?: boolean;
  /** Why this kind cannot run in `env`, or undefined. */
  unavailable(env: FaultEnv): Promise<string | undefined>;
  run(ctx: FaultContext): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(rng: () => number, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;

/** A node that is up, or an error saying the fault has no target (a crashed node not back yet). */
function upNode(env: FaultEnv, rng: () => number, not?: number): number {
  const up = env.upNodes().filter((n) => n !== not);
  if (up.length === 0) throw new Error('no node is up to take this fault');
  return pick(rng, up);
}
type Span = readonly [number, number];
const between = (rng: () => number, [lo, hi]: Span) => Math.round(lo + rng() * (hi - lo));
const seconds = ([lo, hi]: Span) => `${lo / 1000}-${hi / 1000} s`;
const ip = promisify(execFile);

/** How long a killed node stays down, a link down, the disk full (ms; a pause lasts as a link down). */
const KILL_DOWN: Span = [300, 2000];
const LINK_DOWN: Span = [1000, 3000];
const DISK_FULL: Span = [1000, 3000];
/** How long a node stays stopped, in multiples of peerTimeoutMs. */
const STOPPED: Span = [1.5, 3];

const kill: FaultKind = {
  name: 'kill',
  description: `SIGKILL of a node, restarted on the same segment after ${seconds(KILL_DOWN)}`,
  resource: 'node-or-link',
  unavailable: async () => undefined,
  async run({ env, rng, target, note }) {
    const id = upNode(env, rng);
    target(`node ${id}`);
    await env.kill(id, 'kill');
    const down = between(rng, KILL_DOWN);
    await sleep(down);
    await env.restart(id);
    note(`node ${id} SIGKILLed, restarted after ${down} ms`);
  },
};

const stop: FaultKind = {
  name: 'stop',
  description: `SIGSTOP of a node for ${STOPPED[0]}-${STOPPED[1]} x \`peerTimeoutMs\`, then SIGCONT`,
  resource: 'node-or-link',
  unavailable: async () => undefined,
  async run({ env, rng, target, note }) {
    const id = upNode(env, rng);
    target(`node ${id}`);
    const ms = Math.round(env.options.peerTimeoutMs * (STOPPED[0] + rng() * (STOPPED[1] - STOPPED[0])));
    env.stop(id, 'stop');
    await sleep(ms);
    env.cont(id);
    note(`node ${id} SIGSTOPped for ${ms} ms`);
  },
};

const reset: FaultKind = {
  name: 'reset',
  description: 'one TCP connection between two live nodes destroyed with `ss -K` (in the dialing node\'s namespace, filtered by its pid and local port)',
  resource: 'node-or-link',
  undisturbed: true,
  unavailable: () => socketKillUnavailable(),
  async run({ env, rng, target, note, tally }) {
    const a = upNode(env, rng);
    const b = upNode(env, rng, a);
    target(`link ${Math.min(a, b)}-${Math.max(a, b)}`);
    const { killed, detail } = await killConnection(env, a, b);
    tally('sockets_killed', killed);
    note(`${detail}: ${killed} socket(s) killed`);
  },
};

const linkdown: FaultKind = {
  name: 'linkdown',
  description: `a host's veth link down for ${seconds(LINK_DOWN)}, then up (its nodes still reach each other)`,
  resource: 'node-or-link',
  unavailable: async (env) => (env.network ? undefined : `needs hosts in network namespaces (${env.networkUnavailable})`),
  async run({ env, rng, target, note }) {
    const h = Math.floor(rng() * env.network!.namespaces.length);
    const ns = env.network!.namespaces[h]!;
    target(`host h${h + 1} link`);
    const ms = between(rng, LINK_DOWN);
    await ip('ip', ['-n', ns, 'link', 'set', 'eth0', 'down']);
    await sleep(ms);
    await ip('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    note(`host h${h + 1}'s veth down for ${ms} ms`);
  },
};

const diskfull: FaultKind = {
  name: 'diskfull',
  description: `the segments' filesystem filled to the last byte by a file for ${seconds(DISK_FULL)} while apps run, then the file deleted`,
  resource: 'disk',
  unavailable: async (env) => (env.disk ? undefined : env.diskUnavailable),
  async run({ env, rng, target, note }) {
    const disk = env.disk!;
    target('segment filesystem');
    const free = disk.freeBytes();
    const filled = disk.fill();
    const ms = between(rng, DISK_FULL);
    await sleep(ms);
    disk.free();
    note(`segment filesystem filled for ${ms} ms (${free} bytes were free, ${filled} written)`);
  },
};

/** The faults a run draws from unless told otherwise. */
export const KINDS: readonly FaultKind[] = [kill, stop, reset, linkdown, diskfull];

/**
 * A control that injects nothing for as long as a fault would last: a run of pauses must
 * find nothing at all, which shows the workload and the checker do not cry wolf.
 */
export const PAUSE: FaultKind = {
  name: 'pause',
  description: `nothing, for ${seconds(LINK_DOWN)} (a control)`,
  resource: 'node-or-link',
  undisturbed: true,
  unavailable: async () => undefined,
  async run({ rng, target }) {
    target('nothing');
    await sleep(between(rng, LINK_DOWN));
  },
};
