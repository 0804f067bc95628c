// TLS links: nodes whose certificates the cluster's CA signed talk as usual (the secret
// handshake runs inside TLS, bound to the session); a node with a certificate from
// another CA never gets a link, and both sides say why.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TlsOptions } from '../src/transport/index.js';
import { makePage, cleanup } from './fixtures/transport-protocol.js';
import { connectionSocket, startCluster } from './fixtures/transport-nodes.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-tls-'));

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA and one node certificate it signed (EC P-256, valid a day). */
function makeCa(name: string): TlsOptions {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', `${name}-ca.key`, '-out', `${name}-ca.crt`, '-subj', `/CN=${name} cluster CA`, '-days', '1');
  openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name} node`);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${name}-ca.crt`, '-CAkey', `${name}-ca.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '1');
  const read = (f: string) => fs.readFileSync(path.join(dir, f));
  return { key: read(`${name}.key`), cert: read(`${name}.crt`), ca: read(`${name}-ca.crt`) };
}

const cluster = makeCa('good');
const stranger = makeCa('rogue');

test('two nodes of the cluster CA exchange pages over TLS', async () => {
  const [a, b] = await startCluster(2, (o) => ({ ...o, tls: cluster }));
  await a!.t.waitForPeers([2], 10_000);
  b!.t.onMessage((_p, msg, reply) => reply?.(msg));
  const page = makePage('text', 9);
  const r = await a!.t.request(2, { type: 3, body: 'over tls', pages: [{ page: 9, data: page }] });
  assert.is(r.body, 'over tls');
  assert.ok(Buffer.from(r.pages![0]!.data).equals(page));
  assert.match(b!.logs.toString(), /listening on \S+ \(TLS\)/);
});

test('a broken TLS connection: the session resumes over a new one, and the probe that checked on node 1 is a quiet goodbye', async () => {
  const [a, b] = await startCluster(2, (o) => ({ ...o, tls: cluster }));
  await a!.t.waitForPeers([2], 10_000);
  await b!.t.waitForPeers([1], 10_000);
  let downs = 0;
  for (const n of [a!, b!]) n.t.on('peer-down', () => downs++);
  b!.t.onMessage((_p, msg, reply) => reply?.(msg));
  const before = a!.t.stats()[2]!.connects;
  // Node 2 breaks it: node 1 redials, node 2 probes node 1's port (over TLS) meanwhile.
  connectionSocket(b!.t, 1)!.destroy();
  const r = await a!.t.request(2, { type: 3, body: 'after the break' });
  assert.is(r.body, 'after the break');
  assert.is(downs, 0);
  assert.is(a!.t.stats()[2]!.connects, before + 1);
  await b!.logs.waitFor(/probe of node 1 at \S+: it listens/);
  assert.not.match(a!.logs.toString(), /TLS handshake with .* failed|refused/, "node 1 logged nothing about node 2's probe");
});

test("a node whose certificate another CA signed is refused, and both sides log it", async () => {
  const [a, b] = await startCluster(2, (o) => ({ ...o, tls: o.nodeId === 1 ? { ...stranger, ca: cluster.ca } : cluster }));
  await b!.logs.waitFor(/TLS handshake with \S+ failed/);
  await a!.logs.waitFor(/node 2 at \S+ closed the connection during the handshake \(TLS: was this node's certificate signed by the CA it trusts\?\)|the connection to node 2 at \S+ failed/);
  assert.not.ok(a!.t.isUp(2) || b!.t.isUp(1));
});

test.after.each(cleanup);
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
