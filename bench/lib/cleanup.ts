// What a benchmark made outside itself (node processes, /dev/shm segments, network
// namespaces, temp dirs) must go however the run ends. On the normal path and on
// errors, the owner undoes it in a `finally`; on SIGINT/SIGTERM/SIGHUP that `finally`
// never runs, so owners also register their undo here and it runs before the exit.
// Undo functions must be synchronous (they run from a signal handler on the way out).
const pending = new Set<() => void>();
let installed = false;

function undoAll(): void {
  for (const undo of [...pending].reverse()) {
    try {
      undo();
    } catch {
      // best effort: the rest must still be undone
    }
  }
  pending.clear();
}

/** Registers `undo` for an abort; call the returned function once it has been undone. */
export function onAbort(undo: () => void): () => void {
  if (!installed) {
    installed = true;
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        console.error(`\n${signal}: cleaning up what the benchmark made`);
        undoAll();
        process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
      });
    }
  }
  pending.add(undo);
  return () => pending.delete(undo);
}
