// Messages on the attach socket between an app and its node (JSON, one per SEQPACKET
// message), shared by both ends. Handshake: hello → welcome(+memfd) → uffd(+userfaultfd)
// → ready. After that requests carry an `id` and get exactly one reply with the same id.
//
// An attached app's guardian (client/guardian.ts) holds a second connection, its
// lifeline: hello with `lifeline` (answered by `watched`, no memfd), then a ping every
// heartbeat, each answered by a pong. A lifeline that closes or goes unanswered means
// the node is gone or stopped.
import type { Placement } from './config.js';
import type { UffdVia } from './uffd/index.js';
import { NaplusError } from './errors.js';

export const ATTACH_PROTOCOL = 2;

export interface Hello {
  op: 'hello';
  version: number;
  region: string;
  /** A guardian's lifeline, not an app attaching. */
  lifeline?: boolean;
}

/** How the node judges liveness: what a guardian must judge the node by. */
export interface Liveness {
  heartbeatMs: number;
  /** A node that answers nothing for this long is lost to its apps. */
  timeoutMs: number;
}

export interface Welcome {
  op: 'welcome';
  region: string;
  size: number;
  pageSize: number;
  nodeId: number;
  host: string;
  cluster: string;
  placement: Placement;
  /**
   * The byte ranges [from, to) homed on this node's host: `runs` within the first
   * `period` bytes, repeated every `period` bytes to the end of the region.
   */
  local: { period: number; runs: Array<[number, number]> };
  liveness: Liveness;
}

/** Sent with the app's userfaultfd, registered over the whole mapping that starts at `base`. */
export interface UffdHandover {
  op: 'uffd';
  base: number;
  via: UffdVia;
}

export interface Request {
  op: 'request';
  id: number;
  method: string;
  args?: Record<string, unknown>;
}

export interface Reply {
  op: 'reply';
  id: number;
  result?: unknown;
  error?: { code: string; message: string };
}

/** Sent by the node on its own: it is going away (shutdown) or refuses the app. */
export interface Notice {
  op: 'shutdown' | 'refused' | 'event';
  message: string;
  code?: string;
  data?: unknown;
}

export type AppToNode = Hello | UffdHandover | Request | { op: 'ping' };
export type NodeToApp = Welcome | Reply | Notice | { op: 'ready' } | { op: 'watched'; liveness: Liveness } | { op: 'pong' };

export function encode(msg: AppToNode | NodeToApp): Buffer {
  return Buffer.from(JSON.stringify(msg));
}

/** What the app sent, as JSON; EPROTO if it is not JSON at all. */
export function decode<T>(data: Buffer): T {
  try {
    return JSON.parse(data.toString('utf8')) as T;
  } catch (err) {
    throw new NaplusError('EPROTO', `a message that is not JSON (${(err as Error).message})`);
  }
}

const VIAS: readonly UffdVia[] = ['syscall', 'device', 'syscall-user-mode'];
/** Longest region or method name a message may carry. */
const MAX_NAME = 64;

/**
 * An app's message, checked field by field: the node trusts nothing an app sends.
 * Fields it does not know are ignored (a newer app may send more).
 */
export function parseAppMessage(data: Buffer): AppToNode {
  const msg = decode<unknown>(data);
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw wrong('the message', 'an object', msg);
  const m = msg as Record<string, unknown>;
  switch (m.op) {
    case 'hello':
      return { op: 'hello', version: integer(m, 'version'), region: name(m, 'region'), ...(m.lifeline === true ? { lifeline: true } : {}) };
    case 'ping':
      return { op: 'ping' };
    case 'uffd': {
      const via = m.via as UffdVia;
      if (!VIAS.includes(via)) throw wrong('via', `one of ${VIAS.join(', ')}`, m.via);
      return { op: 'uffd', base: integer(m, 'base'), via };
    }
    case 'request': {
      const args = m.args ?? {};
      if (typeof args !== 'object' || args === null || Array.isArray(args)) throw wrong('args', 'an object', m.args);
      return { op: 'request', id: integer(m, 'id'), method: name(m, 'method'), args: args as Record<string, unknown> };
    }
    default:
      throw wrong('op', 'hello, uffd, request or ping', m.op);
  }
}

function integer(m: Record<string, unknown>, key: string): number {
  const v = m[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw wrong(key, 'a non-negative integer', v);
  return v;
}

function name(m: Record<string, unknown>, key: string): string {
  const v = m[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_NAME) throw wrong(key, `a string of 1 to ${MAX_NAME} characters`, v);
  return v;
}

/** EPROTO naming the field; the value is cut short, since it comes back to the sender. */
function wrong(field: string, expected: string, value: unknown): NaplusError {
  const shown = JSON.stringify(value) ?? String(value);
  return new NaplusError('EPROTO', `${field} must be ${expected}, got ${shown.length > 40 ? `${shown.slice(0, 40)}…` : shown}`);
}
