// The attach socket takes bad input from a process that is not a well-behaved app:
// the node refuses it with a reason, drops that connection, and keeps serving the apps.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { makeCluster } from './helpers/cluster.js';
import { fdCount, quietFdCount, waitFor } from './helpers/hostile.js';
import { Memfd, UnixChannel } from '../src/uffd/index.js';
import { ATTACH_PROTOCOL } from '../src/attach-protocol.js';

const MiB = 1 << 20;

/** Sends `messages` on a raw connection; resolves with what the node answered and whether it closed. */
function probe(socketPath: string, messages: Array<{ data: Buffer; fds?: number[] }>): Promise<{ replies: any[]; closed: boolean }> {
  const ch = UnixChannel.connect(socketPath);
  const replies: any[] = [];
  return new Promise((resolve) => {
    ch.start({
      message: (data) => replies.push(JSON.parse(data.toString())),
      close: () => resolve({ replies, closed: true }),
    });
    for (const m of messages) ch.send(m.data, m.fds ?? []);
  });
}

test('garbage, wrong versions and protocol violations are refused; real apps carry on', async () => {
  const c = await makeCluster({ regions: [{ name: 'data', size: MiB }] });
  try {
    const app = await c.app(1, 'data');
    await app.cmd({ op: 'write-pattern', seed: 1, from: 0, to: 4 });
    const sock = path.join(c.files.nodes[0]!.socketDir, 'data.sock');
    const json = (o: unknown) => ({ data: Buffer.from(JSON.stringify(o)) });
    const cases: Array<[string, Array<{ data: Buffer; fds?: number[] }>, RegExp]> = [
      ['not JSON', [{ data: Buffer.from([0xff, 0x00, 0x13]) }], /JSON/],
      ['unknown op', [json({ op: 'format-disk' })], /op must be hello, uffd, request or ping, got "format-disk"/],
      ['a field of the wrong type', [json({ op: 'hello', version: '2', region: 'data' })], /version must be a non-negative integer, got "2"/],
      ['a huge name, cut short in the answer', [json({ op: 'hello', version: ATTACH_PROTOCOL, region: 'x'.repeat(60_000) })], /region must be a string of 1 to 64 characters, got "x{39}…$/],
      ['hello twice', [json({ op: 'hello', version: ATTACH_PROTOCOL, region: 'data' }), json({ op: 'hello', version: ATTACH_PROTOCOL, region: 'data' })], /hello was sent twice/],
      ['uffd before hello', [{ ...json({ op: 'uffd', base: 0, via: 'syscall' }), fds: [0] }], /send hello first/],
      ['wrong protocol version', [json({ op: 'hello', version: 99, region: 'data' })], new RegExp(`attach protocol 99 is not ${ATTACH_PROTOCOL}`)],
      ['wrong region', [json({ op: 'hello', version: ATTACH_PROTOCOL, region: 'other' })], /serves region 'data', not 'other'/],
      ['uffd without a descriptor', [json({ op: 'hello', version: ATTACH_PROTOCOL, region: 'data' }), json({ op: 'uffd', base: 0, via: 'syscall' })], /exactly one userfaultfd/],
    ];
    for (const [name, messages, reason] of cases) {
      const { replies, closed } = await probe(sock, messages);
      assert.ok(closed, `${name}: connection closed`);
      const refused = replies.find((r) => r.op === 'refused');
      assert.ok(refused, `${name}: refused with a reason`);
      assert.match(refused.message, reason, name);
    }
    // A descriptor sent with a refused message is closed by the node, not leaked. (The
    // node closes the connection's other descriptor, its pidfd, just after the socket
    // we see close: hence a wait, bounded.)
    const before = await quietFdCount(c.nodes.get(1)!.pid);
    const memfd = Memfd.create('stray', 4096);
    await probe(sock, [{ data: Buffer.from('{'), fds: [memfd.fd] }]);
    memfd.close();
    await waitFor(() => fdCount(c.nodes.get(1)!.pid) <= before, 'the node holds no extra descriptor');
    assert.equal(await app.cmd({ op: 'check-pattern', seed: 1, from: 0, to: 4 }), { bad: 0, firstBad: -1 });
    const late = await c.app(1, 'data');
    assert.equal(await late.cmd({ op: 'check-pattern', seed: 1, from: 0, to: 4 }), { bad: 0, firstBad: -1 });
    assert.ok(c.nodes.get(1)!.log().filter((l) => /sent a bad message/.test(l)).length >= cases.length);
  } finally {
    await c.close();
  }
});

test.run();
