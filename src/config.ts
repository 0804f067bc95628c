// The cluster file: one JSON file that every node of a cluster reads. Validation
// names the file, the bad field and its value, so a typo is a one-line fix; a key it
// does not know is an error too (with the known key it most resembles), since a
// misspelt option that is silently ignored is worse than none.
//
// {
//   "cluster": "demo",
//   "secretFile": "demo.secret",              // relative to this file
//   "hosts": [
//     { "name": "h1", "segment": { "path": "/dev/shm/naplus-demo-h1", "size": "80M" },
//       "nodes": [ { "id": 1, "listen": "127.0.0.1:7101" } ] }
//   ],
//   "regions": [ { "name": "data", "size": "64M", "pageSize": 4096, "placement": "block", "consistency": "sequential" } ]
// }
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { NaplusError } from './errors.js';
import type { CompressMode } from './transport/index.js';

export type Placement = 'block' | 'interleave' | 'first-touch';
export interface NodeConfig {
  id: number;
  host: string;
  listen: { host: string; port: number };
}

export interface HostConfig {
  name: string;
  segment: { path: string; size: number };
  nodes: NodeConfig[];
}

export type Consistency = 'sequential' | 'release';

export interface RegionConfig {
  name: string;
  size: number;
  pageSize: number;
  placement: Placement;
  /** The region's page protocol: 'sequential' (MSI, the default) or 'release' (home-based lazy release consistency). */
  consistency: Consistency;
  /** Copies of each home's pages on other hosts (0 to hosts - 1). Parsed and checked; not used by the nodes yet. */
  replicas: number;
}

/** Options of the links between nodes (the cluster file's optional "transport"). */
export interface TransportConfig {
  /** LZ4 for page payloads: `auto` while a link is backlogged (default), `always`, `never`. */
  compress: CompressMode;
  heartbeatMs: number;
  peerTimeoutMs: number;
  /** Bytes of messages a link keeps until its peer acknowledges them, to replay after a reset. */
  replayBufferBytes: number;
  /** PEM files (relative to the cluster file) for TLS between nodes; absent: plain TCP. */
  tls?: { key: string; cert: string; ca: string };
}

export interface ClusterConfig {
  file: string;
  cluster: string;
  secretFile: string;
  secret: Buffer;
  hosts: HostConfig[];
  nodes: NodeConfig[];
  regions: RegionConfig[];
  transport: TransportConfig;
}

const PLACEMENTS: Placement[] = ['block', 'interleave', 'first-touch'];
const CONSISTENCIES: Consistency[] = ['sequential', 'release'];

/** Every key the cluster file may have, per kind of object: the one place to add one. */
const KNOWN_KEYS = {
  top: ['cluster', 'secretFile', 'hosts', 'regions', 'transport'],
  host: ['name', 'segment', 'nodes'],
  segment: ['path', 'size'],
  node: ['id', 'listen'],
  region: ['name', 'size', 'pageSize', 'placement', 'consistency', 'replicas'],
  transport: ['compress', 'heartbeatMs', 'peerTimeoutMs', 'replayBufferBytes', 'tls'],
  tls: ['key', 'cert', 'ca'],
} as const;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const UNITS: Record<string, number> = { '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30, T: 2 ** 40 };

/** A bad field; validateConfig adds which file it is in. */
function bad(field: string, expected: string, value: unknown): NaplusError {
  return new NaplusError('ECONFIG', `${field} must be ${expected}, got ${JSON.stringify(value)}`);
}

/** "64M", "1G", "4096" or a number → bytes. */
export function parseSize(value: unknown, field = 'size'): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value;
  const m = typeof value === 'string' ? /^\s*(\d+)\s*([KMGT]?)(i?B)?\s*$/i.exec(value) : null;
  const bytes = m ? Number(m[1]) * UNITS[m[2]!.toUpperCase()]! : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw bad(field, 'a positive size like 4096, "64M" or "2G"', value);
  return bytes;
}

export function formatSize(bytes: number): string {
  for (const [unit, n] of [['G', 1 << 30], ['M', 1 << 20]] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n}${unit}`;
  }
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(1)} GiB`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1 << 10 && bytes % 1024 === 0) return `${bytes / 1024}K`;
  return `${bytes} B`;
}

function str(obj: Record<string, unknown>, key: string, field: string, pattern?: RegExp): string {
  const v = obj[key];
  if (typeof v !== 'string' || v.length === 0 || (pattern && !pattern.test(v))) {
    throw bad(`${field}.${key}`, pattern ? `a name of letters, digits, '_', '.', '-'` : 'a non-empty string', v);
  }
  return v;
}

/** An object whose keys are all among `known`; an unknown one is named, with the likeliest meant. */
function object(v: unknown, field: string, known: readonly string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(field, 'an object', v);
  for (const key of Object.keys(v)) {
    if (known.includes(key)) continue;
    const meant = closest(key, known);
    const at = field === '(top level)' ? key : `${field}.${key}`;
    throw new NaplusError('ECONFIG', `${at} is not a known key${meant ? `; did you mean '${meant}'?` : ''} (known here: ${known.join(', ')})`);
  }
  return v as Record<string, unknown>;
}

/** The known key a typo most likely meant: same letters but for case, or at most a third of them wrong. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return bestDistance <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}

function array(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v) || v.length === 0) throw bad(field, 'a non-empty array', v);
  return v;
}

function parseListen(v: unknown, field: string): { host: string; port: number } {
  const m = typeof v === 'string' ? /^(.+):(\d{1,5})$/.exec(v) : null;
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw bad(field, '"host:port" with a port from 1 to 65535', v);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function parseTransport(v: unknown, file: string): TransportConfig {
  const t = v === undefined ? {} : object(v, 'transport', KNOWN_KEYS.transport);
  const compress = (t.compress ?? 'auto') as CompressMode;
  if (!['auto', 'always', 'never'].includes(compress)) throw bad('transport.compress', 'one of auto, always, never', t.compress);
  const ms = (key: string, dflt: number) => {
    const value = t[key] ?? dflt;
    if (!Number.isSafeInteger(value) || (value as number) < 10 || (value as number) > 600_000) {
      throw bad(`transport.${key}`, 'a number of milliseconds from 10 to 600000', value);
    }
    return value as number;
  };
  const heartbeatMs = ms('heartbeatMs', 1000);
  const peerTimeoutMs = ms('peerTimeoutMs', 5000);
  if (peerTimeoutMs <= 2 * heartbeatMs) {
    throw bad('transport.peerTimeoutMs', `more than twice heartbeatMs (${heartbeatMs})`, peerTimeoutMs);
  }
  // A whole frame (2 MiB) must fit twice over, or one large message could end a session.
  const replayBufferBytes = t.replayBufferBytes === undefined ? 64 << 20 : parseSize(t.replayBufferBytes, 'transport.replayBufferBytes');
  if (replayBufferBytes < 4 << 20) throw bad('transport.replayBufferBytes', 'at least 4M (twice the largest frame)', t.replayBufferBytes);
  let tls: TransportConfig['tls'];
  if (t.tls !== undefined) {
    const o = object(t.tls, 'transport.tls', KNOWN_KEYS.tls);
    tls = { key: pemFile(o, 'key', file), cert: pemFile(o, 'cert', file), ca: pemFile(o, 'ca', file) };
  }
  return { compress, heartbeatMs, peerTimeoutMs, replayBufferBytes, tls };
}

/**
 * A PEM file of transport.tls (a private key, or certificates), read and parsed now, so
 * that a wrong one is named with its field and file instead of an OpenSSL error later.
 */
function pemFile(o: Record<string, unknown>, key: 'key' | 'cert' | 'ca', file: string): string {
  const field = `transport.tls.${key}`;
  const p = path.resolve(path.dirname(file), str(o, key, 'transport.tls'));
  if (!fs.existsSync(p)) throw bad(field, 'an existing PEM file', o[key]);
  const what = key === 'key' ? 'a PEM private key' : 'a PEM certificate';
  try {
    const pem = fs.readFileSync(p);
    if (key === 'key') crypto.createPrivateKey(pem);
    else new crypto.X509Certificate(pem);
  } catch (err) {
    throw new NaplusError('ECONFIG', `${field}: ${p} is not ${what} (${(err as Error).message})`);
  }
  return p;
}

function unique<T>(items: T[], key: (t: T) => string | number, what: string, remedy = ''): void {
  const seen = new Set<string | number>();
  for (const item of items) {
    const k = key(item);
    if (seen.has(k)) throw new NaplusError('ECONFIG', `${what} ${JSON.stringify(k)} appears more than once${remedy}`);
    seen.add(k);
  }
}

/**
 * The address a listen field binds, for comparing two of them: loopback and wildcard
 * spellings made one, names lower-cased. 'any4' / 'any6' stand for 0.0.0.0 and ::.
 */
function bindAddress(host: string): string {
  const h = host.toLowerCase().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  if (h === 'localhost') return '127.0.0.1';
  if (h === '0.0.0.0') return 'any4';
  if (net.isIPv6(h) && /^[0:]+$/.test(h)) return 'any6';
  if (net.isIPv6(h) && /^[0:]+1$/.test(h)) return '::1';
  return h;
}

/** Whether two bind addresses overlap: equal, or one is a wildcard that covers the other (:: takes IPv4 too). */
function overlaps(a: string, b: string): boolean {
  if (a === b || a === 'any6' || b === 'any6') return true;
  return (a === 'any4' && !b.includes(':')) || (b === 'any4' && !a.includes(':'));
}

/** Two nodes that would listen on the same port of the same address (or a wildcard over it) cannot both start. */
function checkListenConflicts(nodes: Array<NodeConfig & { field: string }>): void {
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) {
      const [a, b] = [nodes[i]!, nodes[j]!];
      if (a.listen.port !== b.listen.port || !overlaps(bindAddress(a.listen.host), bindAddress(b.listen.host))) continue;
      throw new NaplusError(
        'ECONFIG',
        `${b.field}.listen ("${b.listen.host}:${b.listen.port}") and ${a.field}.listen ("${a.listen.host}:${a.listen.port}") are the same port on the same address: nodes ${a.id} and ${b.id} cannot both listen there, and each would dial itself; give them different ports or addresses`,
      );
    }
  }
}

/** True for a segment path under /sys: a PCI BAR, which each (virtual) machine has its own of. */
export function isDevicePath(segmentPath: string): boolean {
  return path.resolve(segmentPath).startsWith('/sys/');
}

/** Validates a parsed cluster file; `file` anchors relative paths and error messages. */
export function validateConfig(raw: unknown, file: string): ClusterConfig {
  try {
    return parseCluster(raw, file);
  } catch (err) {
    if ((err as NaplusError).code !== 'ECONFIG') throw err;
    throw new NaplusError('ECONFIG', `Cluster file ${file}: ${(err as Error).message}`);
  }
}

function parseCluster(raw: unknown, file: string): ClusterConfig {
  const top = object(raw, '(top level)', KNOWN_KEYS.top);
  const cluster = str(top, 'cluster', '(top level)', NAME);
  const secretFile = path.resolve(path.dirname(file), str(top, 'secretFile', '(top level)'));
  const listenFields: Array<NodeConfig & { field: string }> = [];
  const hosts = array(top.hosts, 'hosts').map((h, i): HostConfig => {
    const field = `hosts[${i}]`;
    const host = object(h, field, KNOWN_KEYS.host);
    const name = str(host, 'name', field, NAME);
    const seg = object(host.segment, `${field}.segment`, KNOWN_KEYS.segment);
    const segPath = str(seg, 'path', `${field}.segment`);
    const nodes = array(host.nodes, `${field}.nodes`).map((n, j): NodeConfig => {
      const nf = `${field}.nodes[${j}]`;
      const node = object(n, nf, KNOWN_KEYS.node);
      if (!Number.isSafeInteger(node.id) || (node.id as number) < 1 || (node.id as number) > 65535) {
        throw bad(`${nf}.id`, 'an integer from 1 to 65535', node.id);
      }
      const parsed = { id: node.id as number, host: name, listen: parseListen(node.listen, `${nf}.listen`) };
      listenFields.push({ ...parsed, field: nf });
      return parsed;
    });
    return { name, segment: { path: segPath, size: parseSize(seg.size, `${field}.segment.size`) }, nodes };
  });
  const regions = array(top.regions, 'regions').map((r, i): RegionConfig => {
    const field = `regions[${i}]`;
    const region = object(r, field, KNOWN_KEYS.region);
    const pageSize = region.pageSize === undefined ? 4096 : parseSize(region.pageSize, `${field}.pageSize`);
    if (pageSize % 4096 !== 0 || (pageSize & (pageSize - 1)) !== 0) {
      throw bad(`${field}.pageSize`, 'a power of two and a multiple of 4096', region.pageSize);
    }
    const size = parseSize(region.size, `${field}.size`);
    if (size % pageSize !== 0) throw bad(`${field}.size`, `a multiple of the page size (${pageSize})`, region.size);
    const placement = (region.placement ?? 'block') as Placement;
    if (!PLACEMENTS.includes(placement)) throw bad(`${field}.placement`, `one of ${PLACEMENTS.join(', ')}`, region.placement);
    const consistency = (region.consistency ?? 'sequential') as Consistency;
    if (!CONSISTENCIES.includes(consistency)) throw bad(`${field}.consistency`, `one of ${CONSISTENCIES.join(', ')}`, region.consistency);
    const maxReplicas = hosts.length - 1;
    const replicas = region.replicas ?? Math.min(1, maxReplicas);
    if (!Number.isSafeInteger(replicas) || (replicas as number) < 0 || (replicas as number) > maxReplicas) {
      throw bad(`${field}.replicas`, `an integer from 0 to ${maxReplicas} (one less than the number of hosts)`, region.replicas);
    }
    return { name: str(region, 'name', field, NAME), size, pageSize, placement, consistency, replicas: replicas as number };
  });
  const nodes = hosts.flatMap((h) => h.nodes);
  unique(hosts, (h) => h.name, 'host name');
  // A path under /sys names a device of the machine that opens it (in a guest, its own
  // ivshmem BAR), so several hosts may give the same one; a file path given by two
  // hosts would be one file for both whenever their nodes share a machine.
  unique(hosts.filter((h) => !isDevicePath(h.segment.path)), (h) => path.resolve(h.segment.path), 'segment path',
    ': give each host a file of its own (only a device path under /sys, a guest\'s ivshmem BAR, may repeat)');
  unique(nodes, (n) => n.id, 'node id');
  checkListenConflicts(listenFields);
  unique(regions, (r) => r.name, 'region name');
  let secret: Buffer;
  try {
    secret = fs.readFileSync(secretFile);
  } catch (err) {
    throw new NaplusError('ECONFIG', `secretFile: cannot read ${secretFile}: ${(err as Error).message}`);
  }
  secret = Buffer.from(secret.toString('utf8').trim());
  if (secret.length < 16) {
    throw new NaplusError('ECONFIG', `secretFile: the secret in ${secretFile} is ${secret.length} bytes; use at least 16 (e.g. \`head -c 32 /dev/urandom | base64 > ${secretFile}\`)`);
  }
  return { file, cluster, secretFile, secret, hosts, nodes, regions, transport: parseTransport(top.transport, file) };
}

export function loadConfig(file: string): ClusterConfig {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (err) {
    throw new NaplusError('ECONFIG', `Cannot read cluster file ${abs}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new NaplusError('ECONFIG', `Cluster file ${abs} is not valid JSON: ${(err as Error).message}`);
  }
  return validateConfig(raw, abs);
}

/**
 * What a node needs of its own host's entry before it starts: the directory of its
 * segment file (only this host's paths exist here; other hosts' are theirs).
 */
export function checkHostPaths(config: ClusterConfig, host: string): void {
  const index = config.hosts.findIndex((h) => h.name === host);
  const dir = path.dirname(config.hosts[index]!.segment.path);
  if (!fs.existsSync(dir)) {
    throw new NaplusError('ECONFIG', `Cluster file ${config.file}: hosts[${index}].segment.path: the directory ${dir} does not exist on this machine`);
  }
}

export function findNode(config: ClusterConfig, id: number): NodeConfig {
  const node = config.nodes.find((n) => n.id === id);
  if (!node) {
    throw new NaplusError('ECONFIG', `Node ${id} is not in cluster file ${config.file}; its nodes are ${config.nodes.map((n) => n.id).join(', ')}`);
  }
  return node;
}

/**
 * A warning if the secret file can be read by other users than its owner (as ssh
 * refuses such a key): whoever reads the secret can join the cluster as any node.
 */
export function secretFileWarning(secretFile: string): string | undefined {
  const mode = fs.statSync(secretFile).mode & 0o777;
  if ((mode & 0o077) === 0) return undefined;
  return `the cluster secret ${secretFile} can be read by other users (mode 0${mode.toString(8)}): anyone who reads it can join the cluster as a node; run \`chmod 600 ${secretFile}\``;
}
