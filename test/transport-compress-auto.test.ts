// compress 'auto': pages travel raw while the link keeps up, and as LZ4 once it is
// backlogged (here: the receiver is frozen, so the kernel's buffers fill and the socket
// starts holding bytes back).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Transport } from '../src/transport/index.js';
import { cleanup, COUNT, makePage, SINK, startPeer, track } from './fixtures/transport-protocol.js';

test("'auto' sends raw on an idle link and compresses on a backlogged one", async () => {
  const secret = randomBytes(32);
  const peer = await startPeer({ cluster: 'auto', nodeId: 2, listen: { host: '127.0.0.1', port: 0 }, peers: [{ id: 1, host: '127.0.0.1', port: 1 }], secretHex: secret.toString('hex') });
  const t = track(await Transport.start({ cluster: 'auto', nodeId: 1, listen: { host: '127.0.0.1', port: 0 }, peers: [{ id: 2, host: '127.0.0.1', port: peer.port }], secret }));
  await t.waitForPeers([2], 10_000);
  const pages = Array.from({ length: 16 }, (_, k) => ({ page: k, data: makePage('text', k) }));
  t.send(2, { type: SINK, pages });
  await t.request(2, { type: COUNT });
  const idle = t.stats()[2]!;
  assert.equal([idle.rawPages, idle.lz4Pages], [16, 0]);

  peer.child.kill('SIGSTOP');
  let messages = 1;
  // One message per turn of the event loop, so that each is encoded after the previous
  // flush: once the kernel stops taking bytes, the next batch sees the backlog.
  while (t.stats()[2]!.lz4Pages === 0) {
    assert.ok(messages < 4096, 'no LZ4 after 256 MiB into a frozen receiver');
    t.send(2, { type: SINK, pages });
    messages++;
    await nextTurn();
  }
  peer.child.kill('SIGCONT');
  const r = await t.request(2, { type: COUNT });
  assert.equal(r.body, { pages: 16 * messages, messages });
  const s = t.stats()[2]!;
  assert.ok(s.lz4Pages > 0 && s.pageBytesWire < s.pageBytesRaw);
});

test.after.each(cleanup);

test.run();
