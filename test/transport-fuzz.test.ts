// Fuzz: thousands of random and mutated frames, sent by an authenticated peer with a
// session (the worst case: past the handshake and the RESUME exchange, straight into the
// session's sequence and ack checks and the frame and page decoders), to a node in its
// own process. Most frames carry the right sequence number, so that they reach the
// decoders and the handler; some carry wrong ones, lying acks, or session frames (heartbeats,
// RESUME, Drop) out of place. The node must stay up, log the peer that broke the protocol,
// and keep answering a good peer throughout. Replay a run with NAPLUS_FUZZ_SEED.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { frameOf, Kind, reasonFrame, writeU64 } from '../src/transport/frame.js';
import { encodeMessage, setAck, setSeq } from '../src/transport/message.js';
import { PageCodec } from '../src/transport/pages.js';
import { Transport, type Message } from '../src/transport/index.js';
import { cleanup, ECHO, IGNORED, makePage, PAGE_KINDS, prng, SINK, startPeer, track } from './fixtures/transport-protocol.js';
import { encodeResume, pingFrame } from '../src/transport/session.js';
import { rawAuthenticated, type RawSession } from './fixtures/transport-raw.js';

const seed = Number(process.env.NAPLUS_FUZZ_SEED ?? Date.now() % 1_000_000);
console.log(`transport-fuzz: seed ${seed} (replay with NAPLUS_FUZZ_SEED=${seed})`);
const FRAMES = Number(process.env.NAPLUS_FUZZ_FRAMES ?? 3000);
const MAX_FRAME = 256 * 1024;

const rand = prng(seed);
const int = (n: number) => Math.floor(rand() * n);
const codec = new PageCodec(4096, MAX_FRAME);

function validFrame(): Buffer {
  const kinds = [Kind.Message, Kind.Request, Kind.Reply, Kind.ReplyError];
  const body = [undefined, randomBytes(int(64)), { n: int(1000), s: 'x'.repeat(int(50)) }, 'text'][int(4)];
  const pages = Array.from({ length: int(4) }, () => ({ page: int(2 ** 40), data: makePage(PAGE_KINDS[int(3)]!, int(100)) }));
  const msg: Message = { type: [ECHO, SINK, IGNORED, 999][int(4)]!, body, pages };
  return encodeMessage(kinds[int(4)]!, int(2 ** 32), msg, codec, rand() < 0.5).frame;
}

/** A number a sequence or ack field might hold: small, near the truth, or absurd. */
function counter(near: number): number {
  return [0, near, near + 1 + int(3), int(2 ** 32), 2 ** 53 - 1 - int(3), int(2 ** 53)][int(6)]!;
}

/** A session frame (heartbeat, RESUME, Drop) with plausible or absurd fields. */
function sessionFrame(seq: number): Buffer {
  switch (int(4)) {
    case 0:
      return pingFrame(counter(seq));
    case 1:
      return encodeResume({ sid: int(3), peerSid: int(3), received: counter(seq), fresh: int(3), lostSid: int(3), reason: 'x'.repeat(int(500)) });
    case 2:
      return reasonFrame(Kind.Drop, 'fuzz');
    default: {
      const f = pingFrame(0);
      writeU64(f, 2 ** 53 + int(1000), 5);
      return f;
    }
  }
}

/**
 * One fuzzed frame: mostly a valid message with the session's next sequence number (or
 * that message with bytes flipped, cut or grown, or its length lying), sometimes garbage,
 * a wrong sequence number or ack, or a session frame.
 */
function fuzzFrame(raw: RawSession, seq: number): Buffer {
  switch (int(10)) {
    case 0:
      return frameOf(randomBytes(1 + int(300)));
    case 1:
      return Buffer.concat([randomBytes(4), randomBytes(int(64))]);
    case 2: {
      const f = raw.sequence(validFrame());
      for (let i = 1 + int(3); i > 0; i--) f[4 + int(f.length - 4)] = int(256);
      return f;
    }
    case 3:
      return frameOf(raw.sequence(validFrame()).subarray(4, 4 + 1 + int(200)));
    case 4:
      return frameOf(Buffer.concat([raw.sequence(validFrame()).subarray(4), randomBytes(1 + int(64))]));
    case 5: {
      const f = raw.sequence(validFrame());
      f.writeUInt32LE(int(f.length * 2), 0);
      return f;
    }
    case 6: {
      const f = validFrame();
      setSeq(f, counter(seq));
      setAck(f, counter(0));
      return f;
    }
    case 7:
      return sessionFrame(seq);
    default:
      return raw.sequence(validFrame());
  }
}

test(`${FRAMES} fuzzed frames: the node stays up and keeps answering a good peer`, async () => {
  const secret = randomBytes(32);
  const node = await startPeer({
    cluster: 'fuzz',
    nodeId: 9,
    listen: { host: '127.0.0.1', port: 0 },
    peers: [
      { id: 1, host: '127.0.0.1', port: 1 },
      { id: 2, host: '127.0.0.1', port: 1 },
    ],
    secretHex: secret.toString('hex'),
    maxFrameBytes: MAX_FRAME,
    compress: 'always',
  });
  const good = track(await Transport.start({ cluster: 'fuzz', nodeId: 1, listen: { host: '127.0.0.1', port: 0 }, peers: [{ id: 9, host: '127.0.0.1', port: node.port }], secret }));
  await good.waitForPeers([9], 10_000);
  let goodLost = 0;
  good.on('peer-down', () => goodLost++);

  let fuzzing = true;
  let answered = 0;
  const goodPeer = (async () => {
    const page = makePage('text', 5);
    while (fuzzing) {
      const r = await good.request(9, { type: ECHO, body: answered, pages: [{ page: answered, data: page }] });
      assert.is(r.body, answered);
      assert.ok(Buffer.from(r.pages![0]!.data).equals(page));
      answered++;
    }
  })();

  let sent = 0;
  let connections = 0;
  while (sent < FRAMES) {
    const raw = await rawAuthenticated(node.port, { cluster: 'fuzz', nodeId: 2, secret, pageSize: 4096, maxFrameBytes: MAX_FRAME });
    connections++;
    raw.socket.on('data', () => {}); // replies to valid requests are not our concern
    for (let n = 1 + int(8), seq = 0; n > 0 && !raw.socket.destroyed && sent < FRAMES; n--, sent++, seq++) raw.socket.write(fuzzFrame(raw, seq));
    raw.socket.end();
    await raw.closed;
  }
  fuzzing = false;
  await goodPeer;

  assert.is(node.child.exitCode, null, 'the fuzzed node is still running');
  assert.is(goodLost, 0, 'the good peer never lost its link');
  assert.ok(answered > 0);
  const last = await good.request(9, { type: ECHO, body: 'still here' });
  assert.is(last.body, 'still here');
  const dropped = node.logs.lines.filter((l) => /lost node 2: node 2 at \S+ sent /.test(l));
  assert.ok(dropped.length > 0, 'protocol errors were logged naming the peer');
  console.log(`fuzz: ${sent} frames over ${connections} connections, ${dropped.length} dropped for protocol errors, ${answered} good requests answered meanwhile`);
});

test.after.each(cleanup);

test.run();
