// Messages on the attach socket between an app and its node (JSON, one per SEQPACKET
// message). Handshake: hello → welcome(+memfd) → uffd(+userfaultfd) → ready. After that
// requests carry an `id` and get exactly one reply with the same id.
import type { Placement } from '../config.js';

export const ATTACH_PROTOCOL = 2;

export interface Hello {
  op: 'hello';
  version: number;
  region: string;
  pid: number;
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
}

export interface UffdHandover {
  op: 'uffd';
  base: number;
  features: number;
  via: 'syscall' | 'device' | 'syscall-user-mode';
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

export type AppToNode = Hello | UffdHandover | Request;
export type NodeToApp = Welcome | Reply | Notice | { op: 'ready' };

export function encode(msg: AppToNode | NodeToApp): Buffer {
  return Buffer.from(JSON.stringify(msg));
}

export function decode<T>(data: Buffer): T {
  return JSON.parse(data.toString('utf8')) as T;
}
