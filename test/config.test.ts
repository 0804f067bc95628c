// Cluster-file validation: every mistake names its field and value.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatSize, parseSize, validateConfig } from '../src/config.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-config-'));
const file = path.join(dir, 'cluster.json');
fs.writeFileSync(path.join(dir, 's'), 'a-secret-of-enough-bytes');
fs.writeFileSync(path.join(dir, 'key.pem'), '');

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
  assert.equal(c.transport, { compress: 'auto', heartbeatMs: 1000, peerTimeoutMs: 5000, tls: undefined });
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
  rejects((c) => (c.secretFile = 'missing'), /cannot read secretFile/);
  rejects((c) => (c.transport = { compress: 'sometimes' }), /transport\.compress must be one of auto, always, never, got "sometimes"/);
  rejects((c) => (c.transport = { heartbeatMs: 1000, peerTimeoutMs: 1500 }), /transport\.peerTimeoutMs must be more than twice heartbeatMs \(1000\), got 1500/);
  rejects((c) => (c.transport = { tls: { key: 'key.pem', cert: 'nope.pem', ca: 'key.pem' } }), /transport\.tls\.cert must be an existing PEM file, got "nope.pem"/);
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
