// The wire protocol between the host and a guest's agent (src/vm/guest-agent.ts).
// Frames as on the node links (`u32 length (LE) | kind byte | body`, cut by the
// transport's FrameReader, capped). The agent speaks first with a fresh nonce; the
// client's one request carries an HMAC of it under the cluster's agent secret, so only
// someone who can read that secret (root on the host, or the guests) runs anything.
// After an `exec` request the connection carries the command's stdin one way and its
// stdout, stderr and exit status the other; every other request gets one reply.
import crypto from 'node:crypto';
import type net from 'node:net';
import { FrameReader, LENGTH_BYTES } from '../transport/frame.js';

/** Where the agent listens, on the guest's address. */
export const AGENT_PORT = 7199;
/** Largest frame either side sends or accepts (stdio is cut into frames of at most this). */
export const MAX_FRAME = 256 * 1024;

export const Frame = {
  /** agent → client: the nonce to prove the secret over. */
  Hello: 1,
  /** client → agent: JSON `AgentRequest` plus `proof`. */
  Request: 2,
  /** agent → client: JSON answer to any request but a successful exec's start. */
  Reply: 3,
  Stdin: 4,
  StdinEnd: 5,
  /** client → agent: JSON `{ signal }` for the running command. */
  Signal: 6,
  Stdout: 7,
  Stderr: 8,
  /** agent → client: JSON `ExitStatus`; the agent closes after it. */
  Exit: 9,
} as const;
export type FrameKind = (typeof Frame)[keyof typeof Frame];

export type AgentRequest =
  | { op: 'ping' }
  /** Runs a command with its stdio on this connection; it is killed if the connection goes. */
  | { op: 'exec'; argv: string[]; env?: Record<string, string>; cwd?: string }
  /** Starts a long-running command that outlives the connection, its output appended to `log`. */
  | { op: 'spawn'; argv: string[]; env?: Record<string, string>; log: string }
  /** Signals a command started with `spawn` (0: only asks whether it runs); with `wait`, answers once it has exited. */
  | { op: 'kill'; pid: number; signal: NodeJS.Signals | 0; wait?: boolean }
  /** One request to a Naplus node's control socket in the guest. */
  | { op: 'control'; socketDir: string; method: string }
  /** Kills every command this agent started (spawned or exec'd, with their process groups); answers once they are gone. */
  | { op: 'reset' };

export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

export function encodeFrame(kind: FrameKind, body: Buffer | object = Buffer.alloc(0)): Buffer {
  const payload = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  const frame = Buffer.allocUnsafe(LENGTH_BYTES + 1 + payload.length);
  frame.writeUInt32LE(1 + payload.length, 0);
  frame[LENGTH_BYTES] = kind;
  payload.copy(frame, LENGTH_BYTES + 1);
  return frame;
}

export function proofOf(secret: Buffer, nonce: Buffer): string {
  return crypto.createHmac('sha256', secret).update('naplus-vm-agent\0').update(nonce).digest('hex');
}

export function proofMatches(secret: Buffer, nonce: Buffer, proof: unknown): boolean {
  if (typeof proof !== 'string' || !/^[0-9a-f]{64}$/.test(proof)) return false;
  return crypto.timingSafeEqual(Buffer.from(proof, 'hex'), Buffer.from(proofOf(secret, nonce), 'hex'));
}

/** Parses a JSON frame body; undefined if it is not a JSON object. */
export function jsonBody(body: Buffer): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Calls `onFrame(kind, body)` for every frame arriving on `socket`; a frame over the cap
 * or of an unknown kind calls `onError` once and stops the reading.
 */
export function readFrames(socket: net.Socket, onFrame: (kind: FrameKind, body: Buffer) => void, onError: (reason: string) => void): void {
  const known = new Set<number>(Object.values(Frame));
  let failed = false;
  const reader = new FrameReader(MAX_FRAME + 1, (frame) => {
    const kind = frame[0]!;
    if (!known.has(kind)) throw new Error(`a frame of unknown kind ${kind}`);
    onFrame(kind as FrameKind, frame.subarray(1));
  });
  socket.on('data', (chunk: Buffer) => {
    if (failed) return;
    try {
      reader.push(chunk);
    } catch (err) {
      failed = true;
      reader.stop();
      onError((err as Error).message);
    }
  });
}
