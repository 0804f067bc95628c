// The socket directory is where apps find their node: whoever can put a socket of their
// own there can pose as the node, and be handed apps' userfaultfds and data. So, as ssh
// does with StrictModes, the node refuses a socket directory that another user owns or
// that anyone but its owner may write, and a path to it through a directory that another
// user owns, or that others may write without the sticky bit (a sticky /tmp is fine:
// nobody else may rename or remove what we put there). Both the path as given and the
// one it resolves to are checked, so a symbolic link on the way is covered too.
import fs from 'node:fs';
import path from 'node:path';
import { NaplusError } from '../errors.js';

const STICKY = 0o1000;

/** Creates `dir` (mode 0750) if it is missing, then refuses it unless it is safe. */
export function prepareSocketDir(dir: string): void {
  const given = path.resolve(dir);
  try {
    fs.mkdirSync(given, { recursive: true, mode: 0o750 });
  } catch (err) {
    throw new NaplusError((err as NaplusError).code ?? 'EIO', `Cannot create the socket directory ${given}: ${(err as Error).message}`);
  }
  const uid = process.geteuid!();
  const problem = unsafe(given, uid, fs.lstatSync) ?? unsafe(fs.realpathSync(given), uid, fs.statSync);
  if (problem) {
    throw new NaplusError('EACCES', `Socket directory ${given} is not safe: ${problem}. Another user could replace the sockets apps attach to and pose as this node; fix that, or choose another --socket-dir`);
  }
}

/** What makes `dir` or a directory on the way to it unsafe, or undefined. */
function unsafe(dir: string, uid: number, stat: (p: string) => fs.Stats): string | undefined {
  const chain: string[] = [];
  for (let p = dir; ; p = path.dirname(p)) {
    chain.push(p);
    if (p === path.dirname(p)) break;
  }
  for (const p of chain) {
    const st = stat(p);
    const what = p === dir ? p : `${p}, on the way to it,`;
    if (st.uid !== 0 && st.uid !== uid) return `${what} is owned by uid ${st.uid}, neither root nor this node's user (uid ${uid})`;
    if (st.isSymbolicLink()) continue; // its target is checked on the resolved path
    const writable = st.mode & 0o022;
    if (p === dir && writable) return `${p} may be written by ${st.mode & 0o002 ? 'others' : 'its group'} (mode ${mode(st)}; chmod go-w ${p})`;
    if (writable && !(st.mode & STICKY)) return `${what} may be written by ${st.mode & 0o002 ? 'others' : 'its group'} and is not sticky (mode ${mode(st)})`;
  }
  return undefined;
}

function mode(st: fs.Stats): string {
  return `0${(st.mode & 0o7777).toString(8)}`;
}
