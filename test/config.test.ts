// Cluster-file validation: every mistake names its field and value.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkHostPaths, formatSize, parseSize, validateConfig } from '../src/config.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-config-'));
const file = path.join(dir, 'cluster.json');
fs.writeFileSync(path.join(dir, 's'), 'a-secret-of-enough-bytes');
fs.writeFileSync(path.join(dir, 'empty.pem'), '');
// One self-signed EC certificate and its key: good PEM files of each kind.
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-subj', '/CN=test', '-days', '1'], { cwd: dir, stdio: 'ignore' });

function base(): any {
  return {
    cluster: 'c',
    secretFile: 's',
    hosts: [
      { name: 'h1', segment: { path: '/dev/shm/x1', size: '8M' }, nodes: [{ id: 1, listen: '127.0.0.1:7001' }] },
      { name: 'h2', segment: { path: '/dev/shm/x2', size: '8M' }, nodes: [{ id: 2, listen: '[::1]:7002' }] },
    ],
    regions: [{ name: 'data', size: '4M' }],
  };
}

function rejects(mutate: (c: any) => void, message: RegExp): void {
  const c = base();
  mutate(c);
  try {
    validateConfig(c, file);
  } catch (err) {
    assert.is((err as { code: string }).code, 'ECONFIG');
    assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`accepted: ${message}`);
}

test('a good file gets defaults', () => {
  const c = validateConfig(base(), file);
  assert.is(c.regions[0]!.pageSize, 4096);
  assert.is(c.regions[0]!.placement, 'block');
  assert.equal(c.nodes.map((n) => [n.id, n.host, n.listen.host, n.listen.port]), [[1, 'h1', '127.0.0.1', 7001], [2, 'h2', '::1', 7002]]);
  assert.equal(c.transport, { compress: 'auto', heartbeatMs: 1000, peerTimeoutMs: 5000, replayBufferBytes: 64 << 20, tls: undefined });
  assert.is(c.secret.toString(), 'a-secret-of-enough-bytes');
});

test('each bad field is named with its value', () => {
  rejects((c) => (c.cluster = 'has space'), /\(top level\)\.cluster must be a name of letters/);
  rejects((c) => (c.hosts = []), /hosts must be a non-empty array, got \[\]/);
  rejects((c) => (c.hosts[1].nodes[0].id = 0), /hosts\[1\]\.nodes\[0\]\.id must be an integer from 1 to 65535, got 0/);
  rejects((c) => (c.hosts[1].nodes[0].id = 1), /node id 1 appears more than once/);
  rejects((c) => (c.hosts[1].segment.path = '/dev/shm/x1'), /segment path "\/dev\/shm\/x1" appears more than once/);
  rejects((c) => (c.hosts[0].segment.size = 'lots'), /hosts\[0\]\.segment\.size must be a positive size like 4096, "64M" or "2G", got "lots"/);
  rejects((c) => (c.regions[0].pageSize = 6000), /regions\[0\]\.pageSize must be a power of two and a multiple of 4096, got 6000/);
  rejects((c) => (c.regions[0].placement = 'random'), /regions\[0\]\.placement must be one of block, interleave, first-touch, got "random"/);
  rejects((c) => (c.regions.push({ name: 'data', size: '1M' })), /region name "data" appears more than once/);
  rejects((c) => (c.secretFile = 'missing'), /secretFile: cannot read .*missing/);
  rejects((c) => (c.transport = { compress: 'sometimes' }), /transport\.compress must be one of auto, always, never, got "sometimes"/);
  rejects((c) => (c.transport = { heartbeatMs: 1000, peerTimeoutMs: 1500 }), /transport\.peerTimeoutMs must be more than twice heartbeatMs \(1000\), got 1500/);
  rejects((c) => (c.transport = { tls: { key: 'key.pem', cert: 'nope.pem', ca: 'cert.pem' } }), /transport\.tls\.cert must be an existing PEM file, got "nope.pem"/);
});

test('every error names the file', () => {
  rejects((c) => (c.hosts[0].nodes[0].id = 0), new RegExp(`^Cluster file ${file.replace(/[.]/g, '\\.')}: hosts\\[0\\]\\.nodes\\[0\\]\\.id`));
  rejects((c) => (c.secretFile = 'missing'), new RegExp(`^Cluster file ${file.replace(/[.]/g, '\\.')}: secretFile`));
});

test('an unknown key at any level is an error naming it, with the key it most resembles', () => {
  rejects((c) => (c.regoins = []), /^Cluster file .*: regoins is not a known key; did you mean 'regions'\? \(known here: cluster, secretFile, hosts, regions, transport\)/);
  rejects((c) => (c.hosts[1].Name = 'x'), /hosts\[1\]\.Name is not a known key; did you mean 'name'\?/);
  rejects((c) => (c.hosts[0].segment.sise = '8M'), /hosts\[0\]\.segment\.sise is not a known key; did you mean 'size'\?/);
  rejects((c) => (c.hosts[0].nodes[0].lisen = 'x'), /hosts\[0\]\.nodes\[0\]\.lisen is not a known key; did you mean 'listen'\?/);
  rejects((c) => (c.regions[0].placment = 'interleave'), /regions\[0\]\.placment is not a known key; did you mean 'placement'\?/);
  rejects((c) => (c.transport = { peerTimeoutMS: 9000 }), /transport\.peerTimeoutMS is not a known key; did you mean 'peerTimeoutMs'\?/);
  rejects((c) => (c.transport = { tls: { key: 'key.pem', cert: 'cert.pem', ca: 'cert.pem', crt: 'x' } }), /transport\.tls\.crt is not a known key; did you mean 'cert'\?/);
  rejects((c) => (c.regions[0].colour = 'blue'), /regions\[0\]\.colour is not a known key \(known here: name, size, pageSize, placement, consistency, replicas\)$/);
});

test('two nodes that would listen on the same port of one address are refused', () => {
  const listen = (a: string, b: string) => (c: any) => {
    c.hosts[0].nodes[0].listen = a;
    c.hosts[1].nodes[0].listen = b;
  };
  rejects(listen('0.0.0.0:7100', '127.0.0.1:7100'), /hosts\[1\]\.nodes\[0\]\.listen \("127\.0\.0\.1:7100"\) and hosts\[0\]\.nodes\[0\]\.listen \("0\.0\.0\.0:7100"\) are the same port on the same address: nodes 1 and 2 cannot both listen there/);
  rejects(listen('127.0.0.1:7100', '127.0.0.1:7100'), /same port on the same address/);
  rejects(listen('localhost:7100', '127.0.0.1:7100'), /same port on the same address/);
  rejects(listen('[::]:7100', '10.0.0.2:7100'), /same port on the same address/);
  rejects(listen('[::1]:7100', '[0:0::1]:7100'), /same port on the same address/);
  rejects(listen('[::ffff:10.0.0.1]:7100', '10.0.0.1:7100'), /same port on the same address/);
  for (const [a, b] of [['127.0.0.1:7100', '127.0.0.1:7101'], ['127.0.0.1:7100', '127.0.0.2:7100'], ['10.0.0.1:7100', '10.0.0.2:7100'], ['0.0.0.0:7100', '[::1]:7100']]) {
    const c = base();
    listen(a!, b!)(c);
    validateConfig(c, file);
  }
});

test('TLS files that are not PEM are named with their field and path', () => {
  rejects((c) => (c.transport = { tls: { key: 'empty.pem', cert: 'cert.pem', ca: 'cert.pem' } }), /transport\.tls\.key: .*empty\.pem is not a PEM private key/);
  rejects((c) => (c.transport = { tls: { key: 'key.pem', cert: 'key.pem', ca: 'cert.pem' } }), /transport\.tls\.cert: .*key\.pem is not a PEM certificate/);
  rejects((c) => (c.transport = { tls: { key: 'key.pem', cert: 'cert.pem', ca: 's' } }), /transport\.tls\.ca: .*\/s is not a PEM certificate/);
  const c = base();
  c.transport = { tls: { key: 'key.pem', cert: 'cert.pem', ca: 'cert.pem' } };
  assert.is(validateConfig(c, file).transport.tls!.key, path.join(dir, 'key.pem'));
});

test('regions take a consistency and a number of replicas, checked', () => {
  const c = validateConfig(base(), file);
  assert.equal([c.regions[0]!.consistency, c.regions[0]!.replicas], ['sequential', 1], 'two hosts: one replica by default');
  const one = base();
  one.hosts.pop();
  assert.is(validateConfig(one, file).regions[0]!.replicas, 0, 'one host: none');
  const set = base();
  Object.assign(set.regions[0], { consistency: 'release', replicas: 0 });
  assert.equal([validateConfig(set, file).regions[0]!.consistency, validateConfig(set, file).regions[0]!.replicas], ['release', 0]);
  rejects((c) => (c.regions[0].consistency = 'eventual'), /regions\[0\]\.consistency must be one of sequential, release, got "eventual"/);
  rejects((c) => (c.regions[0].replicas = 2), /regions\[0\]\.replicas must be an integer from 0 to 1 \(one less than the number of hosts\), got 2/);
  rejects((c) => (c.regions[0].replicas = -1), /regions\[0\]\.replicas must be an integer from 0 to 1/);
});

test('a segment directory that does not exist on this machine is named with its field', () => {
  const c = base();
  c.hosts[1].segment.path = '/nonexistent-dir/seg';
  const config = validateConfig(c, file);
  checkHostPaths(config, 'h1');
  assert.throws(() => checkHostPaths(config, 'h2'), (err: Error) => /Cluster file .*cluster\.json: hosts\[1\]\.segment\.path: the directory \/nonexistent-dir does not exist on this machine/.test(err.message));
});

test('a short secret is refused with the command that makes a good one', () => {
  fs.writeFileSync(path.join(dir, 'short'), 'abc\n');
  rejects((c) => (c.secretFile = 'short'), /is 3 bytes; use at least 16 \(e\.g\. `head -c 32 \/dev\/urandom \| base64 >/);
});

test('sizes parse and print', () => {
  assert.is(parseSize('64M'), 64 << 20);
  assert.is(parseSize('2GiB'), 2 * 2 ** 30);
  assert.is(parseSize(4096), 4096);
  assert.throws(() => parseSize('-1'), /must be a positive size/);
  assert.throws(() => parseSize(1.5), /must be a positive size/);
  assert.is(formatSize(64 << 20), '64M');
  assert.is(formatSize((8 << 20) + (64 << 10)), '8.1 MiB');
  assert.is(formatSize(8192), '8K');
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
