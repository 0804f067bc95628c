// The guest agent and the gateway as `naplus vm` uses them, run here on loopback (the
// agent is a plain Node server; in a guest it is the same program): commands with
// their stdio, exit codes and signals; a client that goes away takes its command's
// whole process group with it; clients without the secret, and garbage, are refused
// while the agent keeps serving everyone else.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { agentExec, agentRequest, type AgentAddress } from '../src/vm/agent-client.js';
import { Frame, encodeFrame, proofOf } from '../src/vm/agent-protocol.js';

const VM = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/vm');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-agent-'));
const secret = crypto.randomBytes(32).toString('hex');
fs.writeFileSync(path.join(dir, 'agent.secret'), `${secret}\n`);
let agent: ChildProcess;
let gateway: ChildProcess;
let port = 0;
let addr: AgentAddress;
const AUTH_TIMEOUT_MS = 1000;

function firstLine(child: ChildProcess, stream: 'stdout' | 'stderr', pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child[stream]! });
    lines.on('line', (l) => {
      const m = pattern.exec(l);
      if (m) resolve(m);
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before printing ${pattern}`)));
  });
}

test.before(async () => {
  agent = spawn(process.execPath, [path.join(VM, 'guest-agent.js'), '--name', 't1', '--share', dir, '--listen', '127.0.0.1:0', '--auth-timeout-ms', String(AUTH_TIMEOUT_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  port = Number((await firstLine(agent, 'stdout', /listening on port (\d+)/))[1]);
  gateway = spawn(process.execPath, [path.join(VM, 'gateway.js'), path.join(dir, 'agents'), `g1=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  await firstLine(gateway, 'stderr', /reachable/);
  addr = { guest: 'g1', socket: path.join(dir, 'agents', 'g1.sock'), secret: Buffer.from(secret) };
});

test.after(() => {
  agent?.kill();
  gateway?.kill();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs argv through the gateway; collects its output. */
async function run(argv: string[], options: { stdin?: string; cwd?: string; env?: Record<string, string> } = {}) {
  let stdout = '';
  let stderr = '';
  const s = agentExec(addr, { op: 'exec', argv, cwd: options.cwd, env: options.env }, { stdout: (d) => (stdout += d), stderr: (d) => (stderr += d) });
  if (options.stdin !== undefined) {
    s.stdin(Buffer.from(options.stdin));
    s.stdinEnd();
  }
  const status = await s.exit;
  return { ...status, stdout, stderr };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('exec: stdout, stderr, stdin, cwd, env and the exit code come through', async () => {
  const r = await run(['sh', '-c', 'cat; echo "$PWD $GREETING"; echo oops >&2; exit 3'], { stdin: 'from stdin\n', cwd: '/tmp', env: { GREETING: 'hi' } });
  assert.equal(r, { code: 3, signal: null, stdout: 'from stdin\n/tmp hi\n', stderr: 'oops\n' });
  const big = crypto.randomBytes(700 * 1024).toString('base64'); // more than one frame each way
  const echo = await run(['cat'], { stdin: big });
  assert.is(echo.stdout, big);
});

test('exec: a command killed by a signal reports that signal', async () => {
  const r = await run(['sh', '-c', 'kill -BUS $$']);
  assert.equal([r.code, r.signal], [null, 'SIGBUS']);
});

test('exec: a command that cannot start is an error naming it', async () => {
  const s = agentExec(addr, { op: 'exec', argv: ['/no/such/program'] }, { stdout: () => undefined, stderr: () => undefined });
  const err = await s.started.then(() => undefined, (e: Error) => e);
  assert.match(err?.message ?? '', /Guest g1: cannot run \/no\/such\/program: spawn \/no\/such\/program ENOENT/);
});

test('exec: a client that goes away takes the command and its children with it', async () => {
  let out = '';
  const s = agentExec(addr, { op: 'exec', argv: ['sh', '-c', 'sleep 60 & echo $!; wait'] }, { stdout: (d) => (out += d), stderr: () => undefined });
  await s.started;
  while (!out.includes('\n')) await new Promise((r) => setTimeout(r, 10));
  const child = Number(out.trim());
  assert.ok(alive(child), 'the background child runs');
  s.abort();
  const deadline = Date.now() + 5000;
  while (alive(child) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.not.ok(alive(child), 'the command\'s process group was killed');
});

test('spawn outlives its request; kill with wait reports how it ended; unknown pids are refused', async () => {
  const log = path.join(dir, 'spawned.log');
  const { pid } = await agentRequest<{ pid: number }>(addr, { op: 'spawn', argv: ['sh', '-c', 'echo started; exec sleep 60'], log });
  assert.equal(await agentRequest(addr, { op: 'kill', pid, signal: 0 }), { running: true });
  // Its output goes to the log: once it is there, the command runs `sleep`.
  while (!fs.readFileSync(log, 'utf8').includes('started')) await new Promise((r) => setTimeout(r, 10));
  assert.equal(await agentRequest(addr, { op: 'kill', pid, signal: 'SIGTERM', wait: true }), { exited: { code: null, signal: 'SIGTERM' } });
  const err = await agentRequest(addr, { op: 'kill', pid: process.pid, signal: 'SIGKILL' }).then(() => undefined, (e: Error) => e);
  assert.match(err?.message ?? '', /no command started by this agent has pid/);
});

test('reset kills everything the agent started, spawned or exec\'d, and answers once it is gone', async () => {
  const { pid } = await agentRequest<{ pid: number }>(addr, { op: 'spawn', argv: ['sleep', '60'], log: path.join(dir, 'reset.log') });
  let out = '';
  const s = agentExec(addr, { op: 'exec', argv: ['sh', '-c', 'echo $$; sleep 60'] }, { stdout: (d) => (out += d), stderr: () => undefined });
  await s.started;
  while (!out.includes('\n')) await new Promise((r) => setTimeout(r, 10));
  assert.equal(await agentRequest(addr, { op: 'reset' }), { killed: 2 });
  assert.not.ok(alive(pid), 'the spawned command is gone');
  assert.not.ok(alive(Number(out.trim())), 'the exec\'d command is gone');
  assert.equal((await s.exit).signal, 'SIGKILL');
  assert.equal(await agentRequest(addr, { op: 'reset' }), { killed: 0 });
});

test('control: a socket dir with no node is an error that says so', async () => {
  const err = await agentRequest(addr, { op: 'control', socketDir: path.join(dir, 'nothing'), method: 'stats' }).then(() => undefined, (e: Error) => e);
  assert.match(err?.message ?? '', /No Naplus node answers at/);
});

/**
 * Opens a raw TCP connection to the agent, sends `frames` (made from the hello's
 * nonce) once the hello is in, and returns what the agent answers before it closes.
 * `onHello` runs before the frames go.
 */
async function raw(frames: (nonce: Buffer) => Buffer[], onHello: () => Promise<void> = async () => undefined): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  const received: Buffer[] = [];
  let sent = false;
  socket.on('data', async (d) => {
    received.push(d);
    if (!sent && Buffer.concat(received).length >= 5 + 32) {
      sent = true;
      await onHello();
      for (const f of frames(Buffer.concat(received).subarray(5, 5 + 32))) socket.write(f);
    }
  });
  socket.on('error', () => undefined);
  await new Promise((r) => socket.once('close', r));
  return Buffer.concat(received).subarray(5 + 32).toString('latin1');
}

test('a request that arrived while the agent was stopped past its timeout is still served', async () => {
  let stopped!: () => void;
  const whenStopped = new Promise<void>((r) => (stopped = r));
  const answer = raw((nonce) => [encodeFrame(Frame.Request, { op: 'ping', proof: proofOf(Buffer.from(secret), nonce) })], async () => {
    agent.kill('SIGSTOP'); // a starved guest: the request arrives, the timer expires, nothing runs
    stopped();
  });
  await whenStopped;
  await new Promise((r) => setTimeout(r, AUTH_TIMEOUT_MS * 1.5));
  agent.kill('SIGCONT');
  assert.match(await answer, /"name":"t1"/);
});

test('a connection that sends nothing is closed after the timeout', async () => {
  assert.match(await raw(() => []), /no request within 1 s/);
});

test('clients without the secret, garbage and oversized frames are refused; the agent keeps serving', async () => {
  const wrong = await raw((nonce) => [encodeFrame(Frame.Request, { op: 'exec', argv: ['touch', path.join(dir, 'pwned')], proof: proofOf(Buffer.from('not the secret'), nonce) })]);
  assert.match(wrong, /wrong proof/);
  assert.not.ok(fs.existsSync(path.join(dir, 'pwned')), 'nothing ran');
  assert.match(await raw(() => [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]), /frame of \d+ bytes, over the cap/);
  const huge = Buffer.alloc(5);
  huge.writeUInt32LE(0xffffffff, 0);
  assert.match(await raw(() => [huge]), /over the cap/);
  assert.match(await raw(() => [encodeFrame(Frame.Stdout, Buffer.from('x'))]), /the first frame must be a JSON request/);
  assert.match(await raw((nonce) => [encodeFrame(Frame.Request, { op: 'exec', argv: 'rm -rf /', proof: proofOf(Buffer.from(secret), nonce) })]), /exec needs argv/);
  assert.match(await raw((nonce) => [encodeFrame(Frame.Request, { op: 'format-disk', proof: proofOf(Buffer.from(secret), nonce) })]), /unknown op/);
  const bad = Buffer.alloc(6);
  bad.writeUInt32LE(2, 0);
  bad[4] = 99;
  assert.match(await raw(() => [bad]), /unknown kind 99/);
  assert.equal((await run(['echo', 'still here'])).stdout, 'still here\n');
});

test.run();
