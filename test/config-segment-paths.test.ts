// Segment paths in the cluster file: a device path under /sys (each guest's own ivshmem
// BAR) may be named by several hosts; a file path named by two hosts is refused, however
// it is spelled, since two hosts on one machine would then share one file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDevicePath, validateConfig } from '../src/config.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-config-seg-'));
const file = path.join(dir, 'cluster.json');
fs.writeFileSync(path.join(dir, 's'), 'a-secret-of-enough-bytes');
const BAR = '/sys/bus/pci/devices/0000:00:05.0/resource2_wc';

function cluster(...paths: string[]): unknown {
  return {
    cluster: 'c',
    secretFile: 's',
    hosts: paths.map((p, i) => ({ name: `h${i + 1}`, segment: { path: p, size: '8M' }, nodes: [{ id: i + 1, listen: `10.0.${i}.1:7100` }] })),
    regions: [{ name: 'data', size: '4M' }],
  };
}

test('hosts of different guests may name the same BAR path', () => {
  const c = validateConfig(cluster(BAR, BAR, BAR), file);
  assert.equal(c.hosts.map((h) => h.segment.path), [BAR, BAR, BAR]);
});

test('a BAR path and files mix', () => {
  const c = validateConfig(cluster(BAR, '/dev/shm/a', BAR, '/dev/shm/b'), file);
  assert.is(c.hosts.length, 4);
});

test('two hosts naming one file are refused, with the remedy, however the path is spelled', () => {
  for (const [a, b] of [['/dev/shm/a', '/dev/shm/a'], ['/dev/shm/a', '/dev/shm//a'], ['/dev/shm/a', '/dev/shm/../shm/a'], ['/sys/../dev/shm/a', '/dev/shm/a']]) {
    try {
      validateConfig(cluster(a!, b!), file);
      assert.unreachable(`accepted ${a} and ${b}`);
    } catch (err) {
      assert.is((err as { code?: string }).code, 'ECONFIG', `${a} and ${b}`);
      assert.match((err as Error).message, /segment path "\/dev\/shm\/a" appears more than once: give each host a file of its own \(only a device path under \/sys/);
    }
  }
});

test('only paths that resolve under /sys count as devices', () => {
  assert.ok(isDevicePath(BAR));
  assert.ok(isDevicePath('/sys/devices/pci0000:00/0000:00:05.0/resource2'));
  assert.not.ok(isDevicePath('/sys/../dev/shm/x'));
  assert.not.ok(isDevicePath('/system/x'));
  assert.not.ok(isDevicePath('/dev/shm/sys/x'));
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
