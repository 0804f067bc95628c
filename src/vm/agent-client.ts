// The host's side of the agent protocol (agent-protocol.ts): one request and its reply,
// or an exec session with the command's stdio. A guest's agent is reached through the
// cluster's gateway, a unix socket per guest (gateway.ts).
import net from 'node:net';
import { NaplusError } from '../errors.js';
import { Frame, MAX_FRAME, encodeFrame, jsonBody, proofOf, readFrames, type AgentRequest, type ExitStatus, type FrameKind } from './agent-protocol.js';

export interface AgentAddress {
  /** The guest's name, for messages. */
  guest: string;
  /** The gateway's unix socket for this guest. */
  socket: string;
  secret: Buffer;
}

/**
 * Connects, proves the secret, sends `request`, then hands every later frame to
 * `onFrame`; `onClose` gets why the connection ended before `done()` was called.
 * `send` holds frames back until the request has gone.
 */
function open(addr: AgentAddress, request: AgentRequest, onFrame: (kind: FrameKind, body: Buffer) => void, onClose: (err: NaplusError) => void): {
  socket: net.Socket;
  send(frame: Buffer): void;
  done(): void;
} {
  const socket = net.connect(addr.socket);
  const held: Buffer[] = [];
  let hello = false;
  let finished = false;
  const fail = (why: string) => {
    if (finished) return;
    finished = true;
    socket.destroy();
    onClose(new NaplusError('ECONNRESET', `The agent of guest ${addr.guest} ${why}`));
  };
  socket.on('error', (err) => fail(`cannot be reached (${err.message}); is the guest up? (naplus vm status)`));
  socket.on('close', () => fail(hello ? 'closed the connection' : 'did not answer: the guest is not up (yet), or its agent stopped'));
  readFrames(socket, (kind, body) => {
    if (hello) return onFrame(kind, body);
    if (kind !== Frame.Hello) return fail('spoke out of turn');
    hello = true;
    socket.write(encodeFrame(Frame.Request, { ...request, proof: proofOf(addr.secret, body) }));
    for (const frame of held.splice(0)) socket.write(frame);
  }, (reason) => fail(`sent a bad frame: ${reason}`));
  return {
    socket,
    send(frame) {
      if (socket.destroyed) return;
      if (hello) socket.write(frame);
      else held.push(frame);
    },
    done() {
      finished = true;
    },
  };
}

/** One request, its reply (`{ error }` replies reject with that sentence). */
export function agentRequest<T = Record<string, unknown>>(addr: AgentAddress, request: Exclude<AgentRequest, { op: 'exec' }>, timeoutMs = 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const conn = open(addr, request, (kind, body) => {
      conn.done();
      conn.socket.end();
      clearTimeout(timer);
      const reply = kind === Frame.Reply ? jsonBody(body) : undefined;
      if (!reply) reject(new NaplusError('EPROTO', `The agent of guest ${addr.guest} answered ${request.op} with frame kind ${kind}`));
      else if (typeof reply.error === 'string') reject(new NaplusError('EAGENT', `Guest ${addr.guest}: ${reply.error}`));
      else resolve(reply as T);
    }, (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const timer = setTimeout(() => {
      conn.done();
      conn.socket.destroy();
      reject(new NaplusError('ETIMEDOUT', `The agent of guest ${addr.guest} did not answer ${request.op} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
  });
}

export interface ExecIO {
  stdout(data: Buffer): void;
  stderr(data: Buffer): void;
}

export interface ExecSession {
  /** Resolves once the command runs (rejects if it could not start). */
  started: Promise<void>;
  /** How the command ended. */
  exit: Promise<ExitStatus>;
  stdin(data: Buffer): void;
  stdinEnd(): void;
  signal(name: NodeJS.Signals): void;
  /** Drops the connection: the agent kills the command. */
  abort(): void;
}

export function agentExec(addr: AgentAddress, request: Extract<AgentRequest, { op: 'exec' }>, io: ExecIO): ExecSession {
  let onStart!: () => void;
  let onStartFailed!: (err: Error) => void;
  let onExit!: (s: ExitStatus) => void;
  let onExitFailed!: (err: Error) => void;
  const started = new Promise<void>((resolve, reject) => ((onStart = resolve), (onStartFailed = reject)));
  const exit = new Promise<ExitStatus>((resolve, reject) => ((onExit = resolve), (onExitFailed = reject)));
  started.catch(() => undefined);
  exit.catch(() => undefined);
  let running = false;
  const conn = open(addr, request, (kind, body) => {
    if (!running) {
      const reply = kind === Frame.Reply ? jsonBody(body) : undefined;
      conn.done();
      if (!reply || typeof reply.error === 'string') {
        const err = new NaplusError('EAGENT', `Guest ${addr.guest}: ${reply?.error ?? `unexpected frame kind ${kind}`}`);
        onStartFailed(err);
        onExitFailed(err);
        conn.socket.destroy();
        return;
      }
      running = true;
      onStart();
      // From here on a closed connection before the exit status is a failure again.
      conn.socket.once('close', () => onExitFailed(new NaplusError('ECONNRESET', `The connection to guest ${addr.guest} closed before its command exited`)));
      return;
    }
    if (kind === Frame.Stdout) io.stdout(body);
    else if (kind === Frame.Stderr) io.stderr(body);
    else if (kind === Frame.Exit) {
      const s = jsonBody(body);
      onExit({ code: typeof s?.code === 'number' ? s.code : null, signal: typeof s?.signal === 'string' ? s.signal : null });
      conn.socket.end();
    }
  }, (err) => {
    onStartFailed(err);
    onExitFailed(err);
  });
  const send = conn.send;
  return {
    started,
    exit,
    stdin: (data) => {
      for (let at = 0; at < data.length; at += MAX_FRAME) send(encodeFrame(Frame.Stdin, data.subarray(at, at + MAX_FRAME)));
    },
    stdinEnd: () => send(encodeFrame(Frame.StdinEnd)),
    signal: (name) => send(encodeFrame(Frame.Signal, { signal: name })),
    abort: () => conn.socket.destroy(),
  };
}

export interface CommandResult extends ExitStatus {
  stdout: string;
  stderr: string;
}

/** Runs a command to its end with no input and collects its output. */
export async function agentRun(addr: AgentAddress, argv: string[], env: Record<string, string> = {}, cwd = '/'): Promise<CommandResult> {
  let stdout = '';
  let stderr = '';
  const session = agentExec(addr, { op: 'exec', argv, env, cwd }, { stdout: (d) => (stdout += d), stderr: (d) => (stderr += d) });
  session.stdinEnd();
  return { ...(await session.exit), stdout, stderr };
}
