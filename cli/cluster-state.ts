// Where `naplus cluster` keeps what it started. Everything lives in a private directory
// (mode 0700, owned by the user): $XDG_RUNTIME_DIR/naplus when that is the user's own,
// else naplus-<uid> in the temp dir, checked for owner and mode before it is used, so
// that no other user can plant a state file that makes us signal or delete something.
// Every path a command touches is derived from the cluster's name, never read from the
// state file: the file only says which processes were started (pid and start time).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NaplusError, invalidArgument } from '../src/errors.js';

export const DEFAULT_CLUSTER = 'local';
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export interface NodeRecord {
  id: number;
  host: string;
  pid: number;
  /** The process's start time (see node-process.ts): with the pid, it names the process. */
  startTime: string;
}

export interface ClusterState {
  name: string;
  hosts: number;
  nodesPerHost: number;
  /** Each node's --cache in bytes, if one was given: a restarted node gets the same. */
  cacheBytes?: number;
  nodes: NodeRecord[];
}

/** Creates `dir` (mode 0700) if it is missing, and refuses it unless it is a directory of ours that nobody else can enter. */
export function ensurePrivateDir(dir: string): string {
  const uid = process.getuid!();
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new NaplusError('EACCES', `Cannot create the directory for local clusters, ${dir}: ${(err as Error).message}`);
    }
  }
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new NaplusError('EPERM', `${dir} is not a directory (a symbolic link, say); remove it and try again`);
  if (st.uid !== uid) {
    throw new NaplusError('EPERM', `${dir} belongs to uid ${st.uid}, not to you (uid ${uid}): local cluster state must be your own; remove it, or set XDG_RUNTIME_DIR to a directory of yours`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new NaplusError('EPERM', `${dir} is open to other users (mode 0${(st.mode & 0o777).toString(8)}); run \`chmod 700 ${dir}\` and try again`);
  }
  return dir;
}

/** The private directory that holds every local cluster of this user. */
export function stateRoot(): string {
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg && path.isAbsolute(xdg)) {
    try {
      const st = fs.statSync(xdg);
      if (st.isDirectory() && st.uid === process.getuid!() && (st.mode & 0o077) === 0) return ensurePrivateDir(path.join(xdg, 'naplus'));
    } catch {
      // not usable: the temp dir below
    }
  }
  return ensurePrivateDir(path.join(os.tmpdir(), `naplus-${process.getuid!()}`));
}

export function checkClusterName(name: string): string {
  if (!NAME.test(name)) throw invalidArgument('--name', "a name of letters, digits, '_', '.', '-' (at most 63, starting with a letter or digit)", name);
  return name;
}

/** The files of one local cluster, all derived from its name. */
export function clusterPaths(name: string, root = stateRoot()) {
  const dir = path.join(root, checkClusterName(name));
  // /dev/shm is shared by every user and every state directory: a segment's name says
  // whose it is, so that no two clusters named alike ever share one.
  const segmentPrefix = `/dev/shm/naplus-${name}-${crypto.createHash('sha256').update(`${process.getuid!()}:${root}`).digest('hex').slice(0, 8)}`;
  return {
    dir,
    stateFile: path.join(dir, 'state.json'),
    configPath: path.join(dir, 'cluster.json'),
    secretPath: path.join(dir, 'cluster.secret'),
    socketDir: (id: number) => path.join(dir, `node${id}`),
    logPath: (id: number) => path.join(dir, `node${id}.log`),
    segmentPrefix,
    segment: (host: number) => `${segmentPrefix}-h${host}`,
  };
}

export type ClusterPaths = ReturnType<typeof clusterPaths>;

const isCount = (v: unknown, max: number): v is number => Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= max;

/** The state of cluster `name`, checked field by field; undefined if it has none. */
export function readState(name: string): ClusterState | undefined {
  const { stateFile } = clusterPaths(name);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new NaplusError('ECONFIG', `The state of local cluster '${name}' (${stateFile}) is unreadable: ${(err as Error).message}; remove it and its nodes by hand`);
  }
  const s = raw as Partial<ClusterState>;
  const nodesOk = Array.isArray(s.nodes) && s.nodes.every((n) =>
    isCount(n?.id, 65535) && isCount(n?.pid, 2 ** 22) && typeof n?.startTime === 'string' && /^\d+$/.test(n.startTime) && typeof n?.host === 'string');
  if (s.name !== name || !isCount(s.hosts, 64) || !isCount(s.nodesPerHost, 64) || !nodesOk || !(s.cacheBytes === undefined || isCount(s.cacheBytes, 2 ** 50))) {
    throw new NaplusError('ECONFIG', `The state of local cluster '${name}' (${stateFile}) is not one naplus wrote; nothing was signalled or removed. Remove the file and stop its nodes by hand`);
  }
  return s as ClusterState;
}

export function writeState(state: ClusterState): void {
  const { stateFile } = clusterPaths(state.name);
  const tmp = `${stateFile}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, stateFile);
}

/** The state, or an ENOENT error saying how to start the cluster. */
export function requireState(name: string): ClusterState {
  const state = readState(name);
  if (!state) throw new NaplusError('ENOENT', `No local cluster '${name}' is up; start one with \`npx naplus cluster up${name === DEFAULT_CLUSTER ? '' : ` --name ${name}`}\``);
  return state;
}
