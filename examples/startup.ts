// The examples' first meeting: every worker waits at a barrier for all the others, but
// not forever. A worker that failed to start (no node at its NAPLUS_SOCKET_DIR, say)
// never arrives; without a limit, the others would wait for it until killed. On time
// out a worker says so and exits, and its node forgets its arrival.
//   STARTUP_TIMEOUT_S=<seconds> (default 60) sets the limit.
import type { Region } from '../src/index.js';

export async function meetAll(region: Region, name: string, worker: number, workers: number): Promise<void> {
  const seconds = Number(process.env.STARTUP_TIMEOUT_S ?? 60);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`only some of the ${workers} workers reached barrier '${name}' within ${seconds} s; one probably failed to start (its own error says why)`)), seconds * 1000);
  });
  try {
    await Promise.race([region.barrier(name, workers), late]);
  } catch (err) {
    console.error(`worker ${worker}: ${(err as Error).message}`);
    process.exit(1);
  } finally {
    clearTimeout(timer);
  }
}
