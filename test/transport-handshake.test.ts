// Handshake refusals (wrong secret, cluster, node id, version) and frames that break the
// protocol (garbage, truncated, oversize): each gets a clear log line naming the peer on
// both sides, that one connection is closed, and the node keeps serving a good peer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { frameOf, Kind, reasonOf } from '../src/transport/frame.js';
import { encodeHello, Handshake, HANDSHAKE_MAX_FRAME, PROTOCOL_VERSION } from '../src/transport/handshake.js';
import { baseOptions, closeAll, LOCAL, startCluster, startNode, type TestNode } from './fixtures/transport-nodes.js';
import { cleanup, track } from './fixtures/transport-protocol.js';
import { rawAuthenticated, rawConnect } from './fixtures/transport-raw.js';

const PLACEHOLDER = { host: LOCAL, port: 1 };

/** Node 2 listening (peers 1 and 3), node 3 a good peer that node 2 dials. */
async function target(): Promise<{ node: TestNode; good: TestNode; secret: Buffer; close(): Promise<void> }> {
  const secret = randomBytes(32);
  const good = await startNode(baseOptions(3, [{ id: 2, ...PLACEHOLDER }], secret));
  const node = await startNode({ ...baseOptions(2, [{ id: 1, ...PLACEHOLDER }, good.address], secret), maxFrameBytes: 1 << 20 });
  node.t.onMessage((_p, msg, reply) => reply?.(msg));
  await node.t.waitForPeers([3], 10_000);
  return { node, good, secret, close: () => closeAll([node, good]) };
}

async function stillServes(good: TestNode, n: number): Promise<void> {
  const r = await good.t.request(2, { type: 9, body: { n } });
  assert.equal(r.body, { n });
}

/** Two real nodes, 1 dialing 2, where `tweak` makes node 1 differ. */
async function mismatched(tweak: Parameters<typeof startCluster>[1]): Promise<TestNode[]> {
  return startCluster(2, tweak);
}

test('a wrong secret: both sides log it, neither link comes up', async () => {
  const [a, b] = await mismatched((o) => (o.nodeId === 1 ? { ...o, secret: randomBytes(32) } : o));
  const secretLine = /handshake with node \d at \S+ failed: it failed to prove it knows the cluster secret/;
  await a!.logs.waitFor(secretLine);
  await b!.logs.waitFor(secretLine);
  assert.not.ok(a!.t.isUp(2) || b!.t.isUp(1));
  const err = await a!.t.waitForPeers([2], 1).catch((e: Error) => e);
  assert.match((err as Error).message, /node 2 \(.*(secret|refused).*\) not up/);
  await closeAll([a!, b!]);
});

test('a wrong cluster name: both sides log both names', async () => {
  const [a, b] = await mismatched((o) => (o.nodeId === 1 ? { ...o, cluster: 'elsewhere' } : o));
  await a!.logs.waitFor(/node 2 at \S+ failed: it says it belongs to cluster 'test', and node 1 belongs to cluster 'elsewhere'/);
  await b!.logs.waitFor(/node 1 at \S+ failed: it says it belongs to cluster 'elsewhere', and node 2 belongs to cluster 'test'/);
  await closeAll([a!, b!]);
});

test('an unknown node id: the refusing node lists its peers, the refused one logs why', async () => {
  const secret = randomBytes(32);
  const b = await startNode(baseOptions(2, [{ id: 3, ...PLACEHOLDER }], secret));
  const a = await startNode(baseOptions(1, [b.address], secret));
  await b.logs.waitFor(/handshake with node 1 at \S+ failed: it claims node id 1, which is not in node 2's peer list \(3\)/);
  await a.logs.waitFor(/node 2 at \S+ refused the handshake: node 1 at \S+ claims node id 1, which is not in node 2's peer list \(3\)/);
  await closeAll([a, b]);
});

test('another protocol version, either way round, is named with both versions', async () => {
  const { node, good, secret, close } = await target();
  // A newer peer dials this node.
  const raw = await rawConnect(node.t.port);
  raw.socket.write(encodeHello({ cluster: 'test', nodeId: 1, pageSize: 4096, maxFrameBytes: 1 << 20, incarnation: randomBytes(8), listen: { host: LOCAL, port: 1 }, version: 99 }, randomBytes(32)));
  assert.is((await raw.next())[0], Kind.Hello);
  const reject = await raw.next();
  assert.is(reject[0], Kind.Reject);
  assert.match(reasonOf(reject), new RegExp(`the node at \\S+ speaks protocol version 99, and node 2 speaks version ${PROTOCOL_VERSION}`));
  await raw.closed;
  await node.logs.waitFor(new RegExp(`handshake with the node at \\S+ failed: it speaks protocol version 99, and node 2 speaks version ${PROTOCOL_VERSION}`));
  // This node dials a newer one.
  const server = net.createServer((s) => {
    const hs = new Handshake({
      cluster: 'test', nodeId: 4, secret, pageSize: 4096, maxFrameBytes: 1 << 20, incarnation: randomBytes(8), listen: { host: LOCAL, port: 1 },
      refuse: () => undefined, binding: Buffer.alloc(0), version: PROTOCOL_VERSION + 1,
    });
    s.write(hs.hello());
    s.on('error', () => {});
  });
  track(server);
  await new Promise<void>((resolve) => server.listen(0, LOCAL, resolve));
  const dialer = await startNode(baseOptions(1, [{ id: 4, host: LOCAL, port: (server.address() as net.AddressInfo).port }], secret));
  await dialer.logs.waitFor(new RegExp(`handshake with node 4 at \\S+ failed: it speaks protocol version ${PROTOCOL_VERSION + 1}, and node 1 speaks version ${PROTOCOL_VERSION}`));
  await stillServes(good, 1);
  await close();
});

test('garbage and truncated frames before the handshake close that connection only', async () => {
  const { node, good, close } = await target();
  const http = await rawConnect(node.t.port);
  http.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await http.closed;
  await node.logs.waitFor(new RegExp(`the node at \\S+ sent a frame of \\d+ bytes, over the cap of ${HANDSHAKE_MAX_FRAME} bytes`));
  const notNaplus = await rawConnect(node.t.port);
  notNaplus.socket.write(frameOf(Buffer.from('\x01HELLO, I am not a Naplus node at all')));
  await notNaplus.closed;
  await node.logs.waitFor(/handshake with the node at \S+ failed: it is not a Naplus node/);
  const cut = await rawConnect(node.t.port);
  cut.socket.end(frameOf(Buffer.alloc(100)).subarray(0, 14));
  await cut.closed;
  await node.logs.waitFor(/the node at \S+ closed the connection during the handshake in the middle of a frame \(14 of 104 bytes received\)/);
  await stillServes(good, 2);
  await close();
});

test('after the handshake: oversize and malformed frames lose that session only, a truncated one costs its connection', async () => {
  const { node, good, secret, close } = await target();
  const auth = () => rawAuthenticated(node.t.port, { cluster: 'test', nodeId: 1, secret, pageSize: 4096, maxFrameBytes: 1 << 20 });
  const cases: Array<{ bytes: Buffer; end?: boolean; log: RegExp }> = [
    { bytes: Buffer.from([0x01, 0x00, 0x10, 0x00]), log: /lost node 1: node 1 at \S+ sent a frame of 1048577 bytes, over the cap of 1048576 bytes/ },
    {
      bytes: frameOf(Buffer.alloc(5000)).subarray(0, 3000),
      end: true,
      log: /connection to node 1 broke: node 1 at \S+ closed the connection in the middle of a frame \(3000 of 5004 bytes received\); its session waits/,
    },
    { bytes: frameOf(Buffer.from([Kind.Message, 0, 1, 0, 0, 0, 0, 0, 0xff, 0, 0, 0])), log: /lost node 1: node 1 at \S+ sent a message frame of 12 bytes, shorter than its 28-byte head/ },
    { bytes: frameOf(Buffer.concat([Buffer.from([Kind.Message, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Buffer.alloc(8), Buffer.from([0, 0, 0, 0, 0, 0, 0x20, 0])])), log: /lost node 1: node 1 at \S+ sent an acknowledgement of 2\^53 or more/ },
    { bytes: frameOf(Buffer.concat([Buffer.from([Kind.Message, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.alloc(8)])), log: /lost node 1: node 1 at \S+ sent frame 2 where frame 1 was due/ },
    { bytes: frameOf(Buffer.concat([Buffer.from([Kind.Message, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0])])), log: /lost node 1: node 1 at \S+ sent an acknowledgement of frame 5, and only 0 were sent/ },
    { bytes: frameOf(Buffer.from([Kind.Ping, 1, 2])), log: /lost node 1: node 1 at \S+ sent a heartbeat of 3 bytes \(9 expected\)/ },
    { bytes: frameOf(Buffer.from([Kind.Resume, 1, 2])), log: /lost node 1: node 1 at \S+ sent a frame of kind 9 out of place/ },
    { bytes: frameOf(Buffer.from([42])), log: /lost node 1: node 1 at \S+ sent a frame of unknown kind 42/ },
  ];
  for (const [i, c] of cases.entries()) {
    const raw = await auth();
    if (c.end) raw.socket.end(c.bytes);
    else raw.socket.write(c.bytes);
    await raw.closed;
    await node.logs.waitFor(c.log);
    await stillServes(good, 10 + i);
  }
  await close();
});

test.after.each(cleanup);

test.run();
