// Which process a pid is. A pid alone names nothing for long: once a node exits, the
// kernel hands its number to the next process. A pid with the process's start time
// (clock ticks since boot, /proc/<pid>/stat field 22) names one process for good, and
// its command line says whether it is the naplus-mount of a given node.
import fs from 'node:fs';
import path from 'node:path';

/** The start time of a live process, or undefined once it is gone (a zombie is gone: it has exited, its parent has not yet looked). */
export function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2, the command name, is in parentheses and may hold spaces or ')': fields
    // are counted from the last ')'. Field 3 (the state) is the first after it, so field 22 is the 20th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' || fields[0] === 'X' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

/** True if `pid` is naplus-mount serving node `id` of the cluster file `configPath`. */
export function isNodeProcess(pid: number, configPath: string, id: number): boolean {
  let argv: string[];
  let cwd: string;
  try {
    argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return false;
  }
  const script = argv.findIndex((a) => /^naplus-mount(\.js)?$/.test(path.basename(a)));
  if (script < 0) return false;
  const value = (long: string, short: string) => {
    const i = argv.findIndex((a, k) => k > script && (a === long || a === short));
    return i < 0 ? undefined : argv[i + 1];
  };
  const cluster = value('--cluster', '-c');
  return cluster !== undefined && path.resolve(cwd, cluster) === configPath && value('--node', '-n') === String(id);
}

/** A process that is still the one recorded (same pid, same start). */
export const sameProcess = (pid: number, started: string): boolean => startTime(pid) === started;
