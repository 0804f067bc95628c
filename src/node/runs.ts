/** Sorts `items` by `key` and cuts them into runs of consecutive keys (one system call each). */
export function runs<T>(items: T[], key: (t: T) => number): T[][] {
  items.sort((a, b) => key(a) - key(b));
  const out: T[][] = [];
  let run: T[] = [];
  for (const item of items) {
    if (run.length > 0 && key(item) !== key(run[run.length - 1]!) + 1) {
      out.push(run);
      run = [];
    }
    run.push(item);
  }
  if (run.length > 0) out.push(run);
  return out;
}
