// Every resolved fault produces a trace event: kept in the node's ring (streamed on the
// control socket) and appended to the --trace file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { makeCluster } from './helpers/cluster.js';
import { connectControl } from '../src/control-client.js';
import type { FaultEvent } from '../src/trace/fault-event.js';

const MiB = 1 << 20;

test('faults are traced to the --trace file with app, page, kind, source and wait', async () => {
  const traceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-trace-'));
  const trace = path.join(traceDir, 'faults.jsonl');
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }], nodeArgs: ['--trace', trace] });
  try {
    const writer = await c.app(1, 'data');
    await writer.cmd({ op: 'write-pattern', seed: 1, from: 10, to: 20, descending: true });
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

/** A subscription to a node's fault stream; answers to later requests on it come in order. */
async function traceChannel(socketDir: string) {
  const channel = connectControl(socketDir);
  const events: FaultEvent[] = [];
  const answers: Array<(answer: Record<string, any>) => void> = [];
  let onEvents = () => {};
  await new Promise<void>((subscribed) => {
    channel.start({
      message(data) {
        const msg = JSON.parse(data.toString());
        if (!Array.isArray(msg)) return answers.shift()?.(msg);
        subscribed(); // the first array is the (empty) acknowledgement
        events.push(...(msg as FaultEvent[]));
        onEvents();
      },
      close() {},
    });
    channel.send(Buffer.from(JSON.stringify({ method: 'trace' })));
  });
  return {
    events,
    until: (n: number) => new Promise<void>((resolve) => {
      onEvents = () => events.length >= n && resolve();
      onEvents();
    }),
    request: (method: string) => new Promise<Record<string, any>>((resolve) => {
      answers.push(resolve);
      channel.send(Buffer.from(JSON.stringify({ method })));
    }),
    close: () => channel.close(),
  };
}

test('the control socket streams fault events as they happen', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  try {
    const app = await c.app(1, 'data');
    const trace = await traceChannel(c.files.nodes[0]!.socketDir);
    await app.cmd({ op: 'write-pattern', seed: 2, from: 0, to: 5, descending: true });
    await trace.until(5);
    trace.close();
    assert.equal(trace.events.slice(0, 5).map((e) => e.page), [4, 3, 2, 1, 0]);
  } finally {
    await c.close();
  }
});

test('on a trace channel, an answer comes after every event recorded before its request', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  try {
    const app = await c.app(1, 'data');
    const trace = await traceChannel(c.files.nodes[0]!.socketDir);
    await app.cmd({ op: 'write-pattern', seed: 3, from: 0, to: 5, descending: true });
    const stats = await trace.request('stats');
    trace.close();
    assert.equal(trace.events.map((e) => e.page), [4, 3, 2, 1, 0], 'the pending batch went out before the answer');
    assert.is(stats.faultsTraced, 5);
  } finally {
    await c.close();
  }
});

test.run();
