// The nemesis: injects `faults` faults drawn from the available kinds with the run's
// seeded generator. Every kind comes once first (in a seeded order), so even a short run
// covers them all; then kinds are drawn alike. Before each fault the seed decides whether
// it waits for every fault under way to end (one at a time) or only for the one holding
// the same resource (overlapping): at most one node or link is faulty at once, while the
// disk may fill meanwhile. A fault's window runs from its injection until the cluster is
// whole again (every node up and linked to every other); one that does not come whole
// within the environment's timeout is reported as a hang.
import type { Checker, FaultWindow } from './checker.js';
import type { FaultEnv } from './env.js';
import type { FaultKind, Resource } from './kinds.js';

export interface NemesisOptions {
  env: FaultEnv;
  checker: Checker;
  kinds: readonly FaultKind[];
  faults: number;
  rng: () => number;
  /** Chance that a fault starts while one of another resource is under way. */
  overlap: number;
  /** Pause before each fault, drawn in [lo, hi] ms. */
  gapMs: [number, number];
  /** The run's start, which logged times count from. */
  startedAt: number;
  log(line: string): void;
}

export interface FaultNote {
  id: number;
  kind: string;
  t: number;
  note: string;
}

export class Nemesis {
  injected = 0;
  readonly notes: FaultNote[] = [];
  /** Per-kind figures the kinds report (sockets killed, say). */
  readonly tallies = new Map<string, Record<string, number>>();

  constructor(private readonly o: NemesisOptions) {}

  async run(): Promise<void> {
    const { kinds, rng } = this.o;
    const order = [...kinds];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const busy = new Map<Resource, Promise<void>>();
    for (let i = 0; i < this.o.faults; i++) {
      const kind = order[i] ?? kinds[Math.floor(rng() * kinds.length)]!;
      const overlapping = rng() < this.o.overlap;
      const [lo, hi] = this.o.gapMs;
      await new Promise((r) => setTimeout(r, lo + rng() * (hi - lo)));
      if (overlapping) await busy.get(kind.resource);
      else await Promise.all(busy.values());
      const done = this.one(kind, i + 1).finally(() => busy.delete(kind.resource));
      busy.set(kind.resource, done);
    }
    await Promise.all(busy.values());
  }

  private async one(kind: FaultKind, id: number): Promise<void> {
    const { env, checker, log } = this.o;
    let window: FaultWindow | undefined;
    const ctx = {
      env,
      rng: this.o.rng,
      target: (what: string) => {
        window = { id, kind: kind.name, target: what, start: Date.now(), undisturbed: kind.undisturbed ?? false };
        checker.faultStarted(window);
        this.injected++;
        log(`#${id} ${kind.name} ${what} (at ${((window.start - this.o.startedAt) / 1000).toFixed(1)} s)`);
      },
      note: (note: string) => this.notes.push({ id, kind: kind.name, t: Date.now(), note }),
      tally: (figure: string, n: number) => {
        const t = this.tallies.get(kind.name) ?? {};
        t[figure] = (t[figure] ?? 0) + n;
        this.tallies.set(kind.name, t);
      },
    };
    try {
      await kind.run(ctx);
    } catch (err) {
      ctx.note(`could not be carried out: ${(err as Error).message.split('\n')[0]}`);
      log(`#${id} ${kind.name}: ${(err as Error).message.split('\n')[0]}`);
    }
    if (!window) return;
    const whole = await env.whole();
    window.end = Date.now();
    if (!whole) {
      const down = env.nodeIds.filter((n) => env.stateOf(n) !== 'up');
      checker.hang(window.end, window.start, `the cluster was not whole again after ${kind.name} ${window.target} was healed (nodes not up: ${down.join(', ') || 'none'}; or links still down)`);
    }
  }
}
