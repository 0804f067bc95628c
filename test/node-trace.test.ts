// Every resolved fault produces a trace event: kept in the node's ring (streamed on the
// control socket) and appended to the --trace file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { makeCluster } from './helpers/cluster.js';
import { connectControl } from '../src/control-client.js';
import type { FaultEvent } from '../src/node/trace.js';

const MiB = 1 << 20;

test('faults are traced to the --trace file with app, page, kind, source and wait', async () => {
  const traceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-trace-'));
  const trace = path.join(traceDir, 'faults.jsonl');
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }], nodeArgs: ['--trace', trace] });
  try {
    const writer = await c.app(1, 'data');
    await writer.cmd({ op: 'write-pattern', seed: 1, from: 10, to: 20 });
    const reader = await c.app(1, 'data');
    await reader.cmd({ op: 'check-pattern', seed: 1, from: 10, to: 20 });
    const stats = await reader.cmd({ op: 'stats' });
    assert.is(await c.stopNode(1), 0); // flushes the trace file
    const events = fs.readFileSync(trace, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as FaultEvent);
    assert.is(events.length, stats.faultsTraced, 'one line per traced fault');
    const writes = events.filter((e) => e.app === writer.child.pid);
    assert.equal([...new Set(writes.map((e) => e.page))].sort((a, b) => a - b), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    assert.ok(writes.every((e) => e.kind === 'write' && e.source === 'segment' && e.node === 1 && e.region === 'data' && e.wireBytes === 0));
    const reads = events.filter((e) => e.app === reader.child.pid);
    assert.ok(reads.length >= 1 && reads.every((e) => e.kind === 'minor' && e.source === 'cache'), 'the reader maps the writer\'s pages without a copy');
    assert.ok(events.every((e) => e.waitUs >= 0 && e.t > 0));
  } finally {
    await c.close();
    fs.rmSync(traceDir, { recursive: true, force: true });
  }
});

test('the control socket streams fault events as they happen', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  try {
    const app = await c.app(1, 'data');
    const channel = connectControl(c.files.nodes[0]!.socketDir);
    const got: FaultEvent[] = [];
    let live: () => void;
    const subscribed = new Promise<void>((resolve) => (live = resolve));
    const enough = new Promise<void>((resolve) => {
      channel.start({
        message(data) {
          live(); // the first message is the (empty) acknowledgement
          got.push(...(JSON.parse(data.toString()) as FaultEvent[]));
          if (got.length >= 5) resolve();
        },
        close() {},
      });
    });
    channel.send(Buffer.from(JSON.stringify({ method: 'trace' })));
    await subscribed;
    await app.cmd({ op: 'write-pattern', seed: 2, from: 0, to: 5 });
    await enough;
    channel.close();
    assert.equal(got.slice(0, 5).map((e) => e.page), [0, 1, 2, 3, 4]);
  } finally {
    await c.close();
  }
});

test.run();
