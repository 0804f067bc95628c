// The examples' first meeting: every worker waits at a barrier until all are attached,
// but not forever. A worker that failed to start (no node at its NAPLUS_SOCKET_DIR, say)
// never arrives; without a limit, the others would wait for it until killed. Nothing is
// allocated before this barrier, so a worker that gives up (or is stopped by its
// launcher meanwhile) leaves nothing behind, and its node forgets its arrival.
//   STARTUP_TIMEOUT_S=<seconds> (default 60) sets the limit.
import type { Region } from '../src/index.js';

export async function meetAll(region: Region, name: string, worker: number, workers: number): Promise<void> {
  const seconds = Number(process.env.STARTUP_TIMEOUT_S ?? 60);
  const timer = setTimeout(() => {
    console.error(`worker ${worker}: only some of the ${workers} workers reached barrier '${name}' within ${seconds} s; one probably failed to start (its own error says why)`);
    process.exit(1);
  }, seconds * 1000);
  await region.barrier(name, workers);
  clearTimeout(timer);
}
