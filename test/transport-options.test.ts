// Transport.start refuses bad options with the option named, and a busy port with the
// address named; port 0 gets a port the transport reports.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { Transport, type TransportOptions } from '../src/transport/index.js';
import { cleanup, track } from './fixtures/transport-protocol.js';
import { baseOptions, LOCAL } from './fixtures/transport-nodes.js';

const ok = (): TransportOptions => baseOptions(1, [{ id: 2, host: LOCAL, port: 1 }], randomBytes(32));

async function refused(opts: TransportOptions, code: string, re: RegExp): Promise<void> {
  const err = (await Transport.start(opts).then(track, (e: unknown) => e)) as { code?: string; message: string };
  assert.is(err.code, code, err.message);
  assert.match(err.message, re);
}

test('bad options name the option and the value', async () => {
  await refused({ ...ok(), secret: Buffer.from('short') }, 'EINVAL', /secret/);
  await refused({ ...ok(), peers: [{ id: 1, host: LOCAL, port: 1 }] }, 'EINVAL', /peers\[\]\.id .* received 1/);
  await refused({ ...ok(), heartbeatMs: 1000, peerTimeoutMs: 1500 }, 'EINVAL', /at least twice heartbeatMs \(2000\) for peerTimeoutMs but received 1500/);
  await refused({ ...ok(), compress: 'sometimes' as never }, 'EINVAL', /compress/);
  await refused({ ...ok(), cluster: '' }, 'EINVAL', /cluster/);
});

test('port 0 picks a port; a port in use is named', async () => {
  const t = track(await Transport.start(ok()));
  assert.ok(t.port > 0);
  await refused({ ...ok(), listen: { host: LOCAL, port: t.port } }, 'EADDRINUSE', new RegExp(`Node 1 cannot listen on 127\\.0\\.0\\.1:${t.port}`));
});

test.after.each(cleanup);

test.run();
