// The guest agent: the one process the guest's init starts (and restarts), in the chroot
// of the host's root. It runs commands for the host over TCP (see agent-protocol.ts):
// `exec` with the command's stdio on the connection (`naplus vm exec`), `spawn` for the
// guest's naplus-mount, `kill`, and `control` to ask a node in the guest for its stats.
// Every client is treated as hostile until it proves it holds the agent secret, which
// the host writes into the cluster's share; a client that goes away takes its command
// with it (the command's whole process group is killed).
//   node guest-agent.js --name g1 --share /tmp/naplus-vm-<cluster>/share [--listen 0.0.0.0:7199] [--auth-timeout-ms 10000]
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { controlRequest } from '../control-client.js';
import { AGENT_PORT, Frame, MAX_FRAME, encodeFrame, jsonBody, proofMatches, readFrames, type AgentRequest, type ExitStatus } from './agent-protocol.js';

/** What a command sees unless the request sets it: a root shell's usual environment. */
const BASE_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8' };

const { values } = parseArgs({
  options: { name: { type: 'string' }, share: { type: 'string' }, listen: { type: 'string', default: `0.0.0.0:${AGENT_PORT}` }, 'auth-timeout-ms': { type: 'string', default: '10000' } },
});
/** How long a connection may stay without a valid request. */
const AUTH_TIMEOUT_MS = Number(values['auth-timeout-ms']);
const name = values.name ?? os.hostname();
const say = (line: string) => console.log(`naplus-agent ${name}: ${line}`);
if (!values.share) throw new Error('guest-agent: --share <dir> is required');
const secret = Buffer.from(fs.readFileSync(path.join(values.share, 'agent.secret'), 'utf8').trim());

/** Commands started with `spawn`, by pid: their exit status once they have exited. */
const spawned = new Map<number, { child: ChildProcess; exited: Promise<ExitStatus>; status?: ExitStatus }>();
/** Commands of the exec sessions running now, and a promise of each one's end. */
const sessions = new Map<ChildProcess, Promise<void>>();

const isStringArray = (v: unknown, max: number): v is string[] =>
  Array.isArray(v) && v.length > 0 && v.length <= max && v.every((s) => typeof s === 'string' && s.length > 0 && s.length < 65536 && !s.includes('\0'));
const isEnv = (v: unknown): v is Record<string, string> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.entries(v).every(([k, s]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && typeof s === 'string' && !s.includes('\0'));
const isAbsolute = (v: unknown): v is string => typeof v === 'string' && path.isAbsolute(v) && !v.includes('\0') && v.length < 4096;
const isSignal = (v: unknown): v is NodeJS.Signals => typeof v === 'string' && Object.hasOwn(os.constants.signals, v);

/** The request if every field is what its op needs, else why not. */
function checkRequest(r: Record<string, unknown>): AgentRequest | string {
  const argvOk = isStringArray(r.argv, 4096) && (r.env === undefined || isEnv(r.env));
  switch (r.op) {
    case 'ping':
    case 'reset':
      return { op: r.op };
    case 'exec':
      return argvOk && (r.cwd === undefined || isAbsolute(r.cwd)) ? (r as AgentRequest) : 'exec needs argv (strings), and env and cwd if given, well formed';
    case 'spawn':
      return argvOk && isAbsolute(r.log) ? (r as AgentRequest) : 'spawn needs argv (strings) and an absolute log path';
    case 'kill':
      return Number.isSafeInteger(r.pid) && (r.pid as number) > 0 && (isSignal(r.signal) || r.signal === 0) ? (r as AgentRequest) : 'kill needs a pid and a signal name';
    case 'control':
      return isAbsolute(r.socketDir) && typeof r.method === 'string' && /^[a-z-]{1,32}$/.test(r.method) ? (r as AgentRequest) : 'control needs an absolute socketDir and a method';
    default:
      return `unknown op ${JSON.stringify(r.op)}`;
  }
}

const statusOf = (code: number | null, signal: NodeJS.Signals | null): ExitStatus => ({ code, signal });

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // the group is gone already
  }
}

/** `exec`: the command's stdio on this connection until it exits. */
function runSession(socket: net.Socket, req: Extract<AgentRequest, { op: 'exec' }>, reply: (body: object) => void): {
  frame(kind: number, body: Buffer): void;
  close(): void;
} {
  const child = spawn(req.argv[0]!, req.argv.slice(1), { cwd: req.cwd ?? '/', env: { ...BASE_ENV, ...req.env }, detached: true, stdio: 'pipe' });
  let running = false;
  child.once('error', (err) => {
    if (!running) reply({ error: `cannot run ${req.argv[0]}${req.cwd ? ` in ${req.cwd}` : ''}: ${err.message}` });
  });
  child.once('spawn', () => {
    running = true;
    sessions.set(child, new Promise((gone) => child.once('exit', () => gone())));
    socket.write(encodeFrame(Frame.Reply, { pid: child.pid }));
  });
  const forward = (stream: NodeJS.ReadableStream, kind: typeof Frame.Stdout | typeof Frame.Stderr) => {
    stream.on('data', (data: Buffer) => {
      for (let at = 0; at < data.length; at += MAX_FRAME) {
        if (!socket.write(encodeFrame(kind, data.subarray(at, at + MAX_FRAME)))) {
          stream.pause();
          socket.once('drain', () => stream.resume());
        }
      }
    });
  };
  forward(child.stdout, Frame.Stdout);
  forward(child.stderr, Frame.Stderr);
  child.stdin.on('error', () => undefined); // the command closed its stdin: what we still send is dropped
  child.once('exit', () => sessions.delete(child));
  child.on('close', (code, signal) => {
    if (running) socket.end(encodeFrame(Frame.Exit, statusOf(code, signal)));
  });
  return {
    frame(kind, body) {
      if (kind === Frame.Stdin) {
        if (!child.stdin.write(body)) {
          socket.pause();
          child.stdin.once('drain', () => socket.resume());
        }
      } else if (kind === Frame.StdinEnd) {
        child.stdin.end();
      } else if (kind === Frame.Signal) {
        const signal = jsonBody(body)?.signal;
        if (isSignal(signal)) killGroup(child, signal);
      } else {
        socket.destroy();
      }
    },
    close() {
      if (child.exitCode === null && child.signalCode === null) killGroup(child, 'SIGKILL');
    },
  };
}

function startSpawned(req: Extract<AgentRequest, { op: 'spawn' }>): Promise<object> {
  return new Promise((resolve) => {
    let out: number;
    try {
      out = fs.openSync(req.log, 'a');
    } catch (err) {
      resolve({ error: `cannot open the log ${req.log}: ${(err as Error).message}` });
      return;
    }
    const child = spawn(req.argv[0]!, req.argv.slice(1), { env: { ...BASE_ENV, ...req.env }, detached: true, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    child.once('error', (err) => resolve({ error: `cannot run ${req.argv[0]}: ${err.message}` }));
    child.once('spawn', () => {
      const record: { child: ChildProcess; exited: Promise<ExitStatus>; status?: ExitStatus } = {
        child,
        exited: new Promise((done) => child.once('exit', (code, signal) => done((record.status = statusOf(code, signal))))),
      };
      spawned.set(child.pid!, record);
      resolve({ pid: child.pid });
    });
  });
}

async function killSpawned(req: Extract<AgentRequest, { op: 'kill' }>): Promise<object> {
  const record = spawned.get(req.pid);
  if (!record) return { error: `no command started by this agent has pid ${req.pid}` };
  if (record.status) return { exited: record.status };
  if (req.signal !== 0) record.child.kill(req.signal);
  return req.wait ? { exited: await record.exited } : { running: req.signal === 0 };
}

async function reset(): Promise<object> {
  const live = [...[...spawned.values()].filter((r) => !r.status).map((r) => ({ child: r.child, gone: r.exited.then(() => undefined) })), ...[...sessions].map(([child, gone]) => ({ child, gone }))];
  for (const { child } of live) killGroup(child, 'SIGKILL');
  await Promise.all(live.map((l) => l.gone));
  return { killed: live.length };
}

async function answer(req: AgentRequest): Promise<object> {
  switch (req.op) {
    case 'ping':
      return { name, uptime: os.uptime() };
    case 'reset':
      return reset();
    case 'spawn':
      return startSpawned(req);
    case 'kill':
      return killSpawned(req);
    case 'control':
      try {
        return { result: await controlRequest(req.socketDir, req.method) };
      } catch (err) {
        return { error: (err as Error).message };
      }
    case 'exec':
      throw new Error('exec is a session, not a request');
  }
}

function serve(socket: net.Socket): void {
  const nonce = crypto.randomBytes(32);
  const peer = `${socket.remoteAddress}:${socket.remotePort}`;
  let session: ReturnType<typeof runSession> | undefined;
  let authenticated = false;
  const reply = (body: object) => socket.end(encodeFrame(Frame.Reply, body));
  const refuse = (reason: string) => {
    say(`refused ${peer}: ${reason}`);
    reply({ error: reason });
  };
  // Checked after the I/O of the same loop turn: when a starved guest gets the CPU back,
  // the expired timer runs before the request that arrived meanwhile is read.
  const timer = setTimeout(() => setImmediate(() => authenticated || refuse(`no request within ${AUTH_TIMEOUT_MS / 1000} s`)), AUTH_TIMEOUT_MS);
  socket.on('error', () => undefined); // a reset is the same as a close here
  socket.on('close', () => {
    clearTimeout(timer);
    session?.close();
  });
  readFrames(socket, (kind, body) => {
    if (session) return session.frame(kind, body);
    if (authenticated) return socket.destroy(); // a request gets one reply; nothing else may follow it
    const raw = kind === Frame.Request ? jsonBody(body) : undefined;
    if (!raw) return refuse('the first frame must be a JSON request');
    if (!proofMatches(secret, nonce, raw.proof)) return refuse('wrong proof: the client does not hold this cluster\'s agent secret');
    clearTimeout(timer);
    authenticated = true;
    const req = checkRequest(raw);
    if (typeof req === 'string') return refuse(req);
    if (req.op === 'exec') session = runSession(socket, req, reply);
    else answer(req).then(reply, (err) => reply({ error: (err as Error).message }));
  }, refuse);
  socket.write(encodeFrame(Frame.Hello, nonce));
}

const [host, port] = values.listen.split(':') as [string, string];
const server = net.createServer(serve).listen(Number(port), host, () => say(`listening on port ${(server.address() as net.AddressInfo).port}`));
