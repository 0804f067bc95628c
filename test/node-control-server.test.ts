// The control socket under clients that misbehave: a trace subscriber that never reads
// is dropped once 64 batches wait for it, instead of the node queueing its events
// without bound; a request of an unknown method is answered, with the name cut short.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ControlServer } from '../src/node/control-server.js';
import { TraceLog } from '../src/node/trace.js';
import { UnixChannel } from '../src/uffd/index.js';
import { controlRequest } from '../src/control-client.js';
import { json, sendRaw } from './helpers/hostile.js';

function event(page: number) {
  return { t: Date.now(), node: 1, region: 'data', app: 1, page, kind: 'read' as const, source: 'cache' as const, waitUs: 1, wireBytes: 0 };
}

test('a trace subscriber that stops reading is dropped; others are still answered', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-control-'));
  const sock = path.join(dir, 'control.sock');
  const trace = new TraceLog(1000);
  const logs: string[] = [];
  const server = new ControlServer(sock, () => ({ node: 1 }), trace, (_level, m) => logs.push(m));
  try {
    const silent = UnixChannel.connect(sock); // subscribes, then never reads a thing
    sendRaw(silent, json({ method: 'trace' }));
    let recorded = 0;
    while (!logs.some((l) => /a fault-trace subscriber left 64 batches unread; dropped it/.test(l))) {
      assert.ok(recorded < 2_000_000, `still not dropped after ${recorded} events`);
      for (let i = 0; i < 200; i++) trace.record(event(recorded++)); // a whole batch: sent at once
      await new Promise((r) => setImmediate(r));
    }
    silent.close();
    assert.equal(await controlRequest(sock, 'stats'), { node: 1 });
    const unknown = await controlRequest(sock, 'x'.repeat(10_000)).then(() => '', (e: Error) => e.message);
    assert.match(unknown, /^unknown control method 'x{40}…'; use stats or trace$/);
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
