// A workload app of the fault-injection suite: attaches to region 'data' through one
// node and does what the controller says, as a real app would, learning of failures only
// the ways the product promises to tell it (SIGBUS at an access, a rejected API call):
//   round:  store this round's value in every slot it owns, then stretches of plain
//           loads and stores, then the round's synchronization (see sync-kinds.ts);
//   verify: load every slot of every writer and send the values back (the controller
//           judges them against its ledger);
//   idle:   stretches of plain loads and stores, each reported as a tick. A stretch loads
//           its own slots and scratch counters and stores the counters again: anything
//           not what it last stored there is reported.
// A rejected API call is final: the app reports it and exits, and the controller starts
// a fresh app in its place. Usage: node app.js '<AppConfig JSON>'
import readline from 'node:readline';
import { attach, type Region } from '../../src/index.js';
import type { AppConfig, AppEvent, Command, Mismatch, Slowest } from './protocol.js';
import { encodeValue } from './slots.js';
import { SYNC_KINDS } from './sync-kinds.js';

const config = JSON.parse(process.argv[2]!) as AppConfig;

function send(event: AppEvent): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

let region: Region;
try {
  region = await attach('data', { socketDir: config.socketDir });
} catch (err) {
  send({ ev: 'attach-failed', code: (err as { code?: string }).code ?? 'EIO', message: (err as Error).message, t: Date.now() });
  process.exit(1);
}
const memory = region.view(0, region.size);
const words = new BigUint64Array(memory);
const counters32 = new Uint32Array(memory);
/** What this app last stored in each of its slots and counters (0n / unknown until it has). */
const mySlots = config.own.map(() => 0n);
const myCounters = config.counters.map(() => -1);
send({ ev: 'hello', pid: process.pid, node: region.nodeId, t: Date.now() });

/** Runs `access` and keeps it in `slowest` if it took longer than any before. */
function timed<T>(slowest: Slowest, access: () => T): T {
  const at = Date.now();
  const value = access();
  const ms = Date.now() - at;
  if (ms > slowest.ms) Object.assign(slowest, { ms, at });
  return value;
}

/** One stretch of plain loads and stores, checking this app's own words. */
function stretch(ms: number): Extract<AppEvent, { ev: 'tick' }> {
  const from = Date.now();
  const bad: Mismatch[] = [];
  const slowest: Slowest = { ms: 0, at: from };
  let ops = 0;
  let to = from;
  do {
    timed(slowest, () => pass(bad));
    ops += 2 * config.own.length + 2 * config.counters.length;
    to = Date.now();
  } while (to - from < ms);
  return { ev: 'tick', from, to, ops, bad, slowest };
}

/** One pass over this app's own slots and counters: each as last stored, each counter stored again. */
function pass(bad: Mismatch[]): void {
  for (let i = 0; i < config.own.length; i++) {
    if (mySlots[i] === 0n) continue;
    const { index, offset } = config.own[i]!;
    const got = Atomics.load(words, offset / 8);
    if (got !== mySlots[i]) {
      bad.push({ what: 'slot', offset, index, expected: String(mySlots[i]), got: String(got) });
      Atomics.store(words, offset / 8, mySlots[i]!); // report once, then measure afresh
    }
  }
  for (let i = 0; i < config.counters.length; i++) {
    const at = config.counters[i]! / 4;
    const got = counters32[at]!;
    if (myCounters[i] !== -1 && got !== myCounters[i]) {
      bad.push({ what: 'counter', offset: config.counters[i]!, expected: String(myCounters[i]), got: String(got) });
    }
    myCounters[i] = (got + 1) >>> 0;
    counters32[at] = myCounters[i]!;
  }
}

function stretchFor(ms: number): void {
  for (const until = Date.now() + ms; Date.now() < until;) send(stretch(Math.min(config.stretchMs, until - Date.now())));
}

const abandon = new Map<number, () => void>();

async function runRound(c: Extract<Command, { op: 'round' }>): Promise<void> {
  const w0 = Date.now();
  const slowest: Slowest = { ms: 0, at: w0 };
  config.own.forEach(({ index, offset }, i) => {
    mySlots[i] = encodeValue(config.nonce, config.position, c.round, index);
    timed(slowest, () => Atomics.store(words, offset / 8, mySlots[i]!));
  });
  send({ ev: 'wrote', round: c.round, t0: w0, t1: Date.now(), slowest });
  stretchFor(c.stretchMs);
  const t0 = Date.now();
  send({ ev: 'calling', round: c.round, t: t0 });
  const abandoned = new Promise<'abandoned'>((resolve) => abandon.set(c.round, () => resolve('abandoned')));
  const sync = SYNC_KINDS[c.kind](region, c);
  try {
    const outcome = await Promise.race([sync.then(() => 'synced' as const), abandoned]);
    if (outcome === 'synced') {
      send({ ev: 'synced', round: c.round, t0, t1: Date.now() });
      return;
    }
    send({ ev: 'abandoned', round: c.round, t: Date.now() });
    sync.catch((err) => told(c.round, t0, err)); // a call stopped waiting for still tells the app
  } catch (err) {
    told(c.round, t0, err);
  } finally {
    abandon.delete(c.round);
  }
}

/** A sync call rejected: the app was told; it says so and retires. */
function told(round: number, t0: number, err: unknown): never {
  send({ ev: 'sync-failed', round, t0, t1: Date.now(), code: (err as { code?: string }).code ?? 'EIO', message: (err as Error).message });
  process.exit(0);
}

function verify(): void {
  const t0 = Date.now();
  const slowest: Slowest = { ms: 0, at: t0 };
  const values = config.all.map((offset) => String(timed(slowest, () => Atomics.load(words, offset / 8))));
  send({ ev: 'verified', t0, t1: Date.now(), values, slowest });
}

// Commands queue up and run between stretches; 'abandon' acts at once (it ends a wait
// that a round is in), and 'exit' too.
const queue: Command[] = [];
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line) as Command;
  if (c.op === 'abandon') abandon.get(c.round)?.();
  else if (c.op === 'exit') process.exit(0);
  else queue.push(c);
}).on('close', () => process.exit(0)); // the controller is gone

for (;;) {
  const c = queue.shift();
  if (c?.op === 'round') await runRound(c);
  else if (c?.op === 'verify') verify();
  else send(stretch(config.stretchMs));
  // Let the event loop turn between stretches, as any app's does: that is when the
  // region hears from its node.
  await new Promise((resolve) => setImmediate(resolve));
}
