// The cluster file: one JSON file that every node of a cluster reads. Validation
// names the bad field and value, so a typo is a one-line fix.
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
import fs from 'node:fs';
import path from 'node:path';
import { NaplusError } from './errors.js';
import type { CompressMode } from './transport/index.js';

export type Placement = 'block' | 'interleave' | 'first-touch';
export type Consistency = 'sequential' | 'release';

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

export interface RegionConfig {
  name: string;
  size: number;
  pageSize: number;
  placement: Placement;
  /** The region's page protocol: 'sequential' (MSI, the default) or 'release' (home-based lazy release consistency). */
  consistency: Consistency;
}

/** Options of the links between nodes (the cluster file's optional "transport"). */
export interface TransportConfig {
  /** LZ4 for page payloads: `auto` while a link is backlogged (default), `always`, `never`. */
  compress: CompressMode;
  heartbeatMs: number;
  peerTimeoutMs: number;
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
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const UNITS: Record<string, number> = { '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30, T: 2 ** 40 };

function bad(field: string, expected: string, value: unknown): NaplusError {
  return new NaplusError('ECONFIG', `Cluster file: ${field} must be ${expected}, got ${JSON.stringify(value)}`);
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

function object(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(field, 'an object', v);
  return v as Record<string, unknown>;
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
  const t = v === undefined ? {} : object(v, 'transport');
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
  let tls: TransportConfig['tls'];
  if (t.tls !== undefined) {
    const o = object(t.tls, 'transport.tls');
    const file_ = (key: string) => {
      const p = path.resolve(path.dirname(file), str(o, key, 'transport.tls'));
      if (!fs.existsSync(p)) throw bad(`transport.tls.${key}`, 'an existing PEM file', o[key]);
      return p;
    };
    tls = { key: file_('key'), cert: file_('cert'), ca: file_('ca') };
  }
  return { compress, heartbeatMs, peerTimeoutMs, tls };
}

function unique<T>(items: T[], key: (t: T) => string | number, what: string): void {
  const seen = new Set<string | number>();
  for (const item of items) {
    const k = key(item);
    if (seen.has(k)) throw new NaplusError('ECONFIG', `Cluster file: ${what} ${JSON.stringify(k)} appears more than once`);
    seen.add(k);
  }
}

/** Validates a parsed cluster file; `file` anchors relative paths and error messages. */
export function validateConfig(raw: unknown, file: string): ClusterConfig {
  const top = object(raw, '(top level)');
  const cluster = str(top, 'cluster', '(top level)', NAME);
  const secretFile = path.resolve(path.dirname(file), str(top, 'secretFile', '(top level)'));
  const hosts = array(top.hosts, 'hosts').map((h, i): HostConfig => {
    const field = `hosts[${i}]`;
    const host = object(h, field);
    const name = str(host, 'name', field, NAME);
    const seg = object(host.segment, `${field}.segment`);
    const segPath = str(seg, 'path', `${field}.segment`);
    const nodes = array(host.nodes, `${field}.nodes`).map((n, j): NodeConfig => {
      const nf = `${field}.nodes[${j}]`;
      const node = object(n, nf);
      if (!Number.isSafeInteger(node.id) || (node.id as number) < 1 || (node.id as number) > 65535) {
        throw bad(`${nf}.id`, 'an integer from 1 to 65535', node.id);
      }
      return { id: node.id as number, host: name, listen: parseListen(node.listen, `${nf}.listen`) };
    });
    return { name, segment: { path: segPath, size: parseSize(seg.size, `${field}.segment.size`) }, nodes };
  });
  const regions = array(top.regions, 'regions').map((r, i): RegionConfig => {
    const field = `regions[${i}]`;
    const region = object(r, field);
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
    return { name: str(region, 'name', field, NAME), size, pageSize, placement, consistency };
  });
  const nodes = hosts.flatMap((h) => h.nodes);
  unique(hosts, (h) => h.name, 'host name');
  unique(hosts, (h) => h.segment.path, 'segment path');
  unique(nodes, (n) => n.id, 'node id');
  unique(nodes, (n) => `${n.listen.host}:${n.listen.port}`, 'listen address');
  unique(regions, (r) => r.name, 'region name');
  let secret: Buffer;
  try {
    secret = fs.readFileSync(secretFile);
  } catch (err) {
    throw new NaplusError('ECONFIG', `Cluster file: cannot read secretFile ${secretFile}: ${(err as Error).message}`);
  }
  secret = Buffer.from(secret.toString('utf8').trim());
  if (secret.length < 16) {
    throw new NaplusError('ECONFIG', `Cluster file: the secret in ${secretFile} is ${secret.length} bytes; use at least 16 (e.g. \`head -c 32 /dev/urandom | base64 > ${secretFile}\`)`);
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

export function findNode(config: ClusterConfig, id: number): NodeConfig {
  const node = config.nodes.find((n) => n.id === id);
  if (!node) {
    throw new NaplusError('ECONFIG', `Node ${id} is not in cluster file ${config.file}; its nodes are ${config.nodes.map((n) => n.id).join(', ')}`);
  }
  return node;
}
