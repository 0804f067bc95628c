// `naplus-fault-trace record`: the faults of running nodes, as they happen, into a
// JSON-lines file, with progress for the person watching.
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { NaplusError, errnoOf } from '../src/errors.js';
import { parseDuration } from '../src/trace/duration.js';
import { TraceRecorder, type RecordedNode } from '../src/trace/record.js';

export interface RecordOptions {
  node: string[];
  duration?: string;
  output?: string;
}

/** Appends, like `naplus-mount --trace`; a file we create stays only if recording starts. */
function openOutput(file: string): { out: Writable; created: boolean } {
  const created = !fs.existsSync(file);
  try {
    return { out: fs.createWriteStream(file, { fd: fs.openSync(file, 'a') }), created };
  } catch (err) {
    throw new NaplusError(errnoOf(err) ?? 'EIO', `Cannot write the trace to ${file} (${(err as Error).message}); choose a writable file with -o`);
  }
}

const say = (line: string) => process.stderr.write(`naplus-fault-trace: ${line}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Records until the duration ends, a signal, a write error or the loss of every node; returns the exit code. */
export async function recordCommand(opts: RecordOptions): Promise<number> {
  const durationMs = opts.duration === undefined ? undefined : parseDuration(opts.duration);
  const where = opts.output ?? 'stdout';
  const { out, created } = opts.output ? openOutput(opts.output) : { out: process.stdout, created: false };
  // Progress would garble events printed to the same terminal.
  const tty = process.stderr.isTTY === true && !(out === process.stdout && process.stdout.isTTY);
  const clearProgress = () => tty && process.stderr.write('\r\x1b[K');
  let failure: NaplusError | undefined;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  out.on('error', (err) => {
    failure ??= new NaplusError(errnoOf(err) ?? 'EIO', `Writing the trace to ${where} failed (${err.message}); what was written before stays`);
    finish();
  });

  let recorder: TraceRecorder | undefined;
  let label = (n: RecordedNode) => `node ${n.id} (${n.socket})`;
  const onLost = (node: RecordedNode) => {
    const left = recorder!.nodes.filter((n) => !n.lost);
    clearProgress();
    say(`${label(node)} ${node.lost} after ${node.events} events; ${left.length > 0 ? `still recording ${left.map(label).join(', ')}` : 'no node left to record'}`);
    if (left.length === 0) finish();
  };
  try {
    recorder = await TraceRecorder.start(opts.node, (events) => out.write(events.map((e) => `${JSON.stringify(e)}\n`).join('')), onLost);
  } catch (err) {
    if (created) fs.rmSync(opts.output!, { force: true });
    throw err;
  }
  const nodes = recorder.nodes;
  say(`recording ${nodes.map(label).join(', ')} to ${where} ${durationMs === undefined ? 'until Ctrl-C' : `for ${seconds(durationMs)}`}`);
  // Once introduced by socket, nodes are named by id alone where that is unambiguous.
  if (new Set(nodes.map((n) => n.id)).size === nodes.length) label = (n) => `node ${n.id}`;

  const started = Date.now();
  const timers = [
    durationMs === undefined ? undefined : setTimeout(finish, durationMs),
    tty ? setInterval(() => process.stderr.write(`\r\x1b[K${seconds(Date.now() - started)}  ${nodes.map((n) => `${label(n)}: ${n.events} events${n.lost ? ' (lost)' : ''}`).join('  ')}`), 1000) : undefined,
  ];
  let signals = 0;
  const onSignal = () => {
    if (++signals === 1) return finish();
    say('stopped at once on a second signal; events still in flight are missing');
    process.exit(1);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  await finished;
  timers.forEach((t) => clearTimeout(t));
  await recorder.stop();
  // stdout is not ours to end: an empty write's callback runs once what came before is out.
  await new Promise<void>((resolve) => (out === process.stdout ? out.write('', () => resolve()) : out.end(() => resolve())));
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  clearProgress();

  const total = nodes.reduce((a, n) => a + n.events, 0);
  const perNode = nodes.map((n) => `${label(n)}: ${n.events}${n.lost ? `, lost: ${n.lost}` : ''}`).join('; ');
  say(`recorded ${total} events in ${seconds(Date.now() - started)} to ${where} (${perNode})`);
  if (failure) {
    say(failure.message);
    return 1;
  }
  return nodes.some((n) => n.lost) ? 1 : 0;
}
