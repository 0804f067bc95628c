// The handshake, run by both ends at once as soon as a connection is open (integers LE):
//
//   HELLO  u8 kind | "NPLS" | u16 version | u32 nodeId | u32 pageSize | u32 maxFrameBytes
//          | 32-byte nonce | 8-byte incarnation | u16 listenPort | u8 clusterLength
//          | u8 hostLength | cluster (UTF-8) | listen host (UTF-8)
//   PROOF  u8 kind | HMAC-SHA256(secret, "naplus-proof" | cluster | prover id | verifier id
//          | prover nonce | verifier nonce | prover incarnation | prover listen port and host
//          | channel binding)
//   REJECT u8 kind | reason (UTF-8), then the rejecting end closes the connection
//
// The incarnation is a random id a process draws once, at start: the same id on a new
// connection is the same process (its session may resume), another id a restarted one.
// The listen address lets the node that does not dial check whether the other still
// listens (transport.ts: a refused connection means its process is gone).
//
// Magic and version lead HELLO and keep their place in every version, so that any two
// versions can tell each other what is wrong. The secret never crosses the wire: each
// end proves it over both fresh nonces. The proof names prover and verifier in order, so
// a proof cannot be reflected back to its maker, and it includes the TLS session's
// exported keying material when there is TLS, so a relay that terminates TLS on both
// sides (with some certificate of the cluster's CA) cannot pass proofs through.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { NaplusError } from '../errors.js';
import { frameOf, Kind, reasonFrame, reasonOf } from './frame.js';

export const PROTOCOL_VERSION = 2;
/** Cap on frames before the peer is authenticated: a stranger gets no more than this buffered. */
export const HANDSHAKE_MAX_FRAME = 1024;
const MAGIC = Buffer.from('NPLS');
const NONCE_BYTES = 32;
export const INCARNATION_BYTES = 8;
const NONCE_AT = 19;
const INCARNATION_AT = NONCE_AT + NONCE_BYTES;
const PORT_AT = INCARNATION_AT + INCARNATION_BYTES;
const HELLO_FIXED = PORT_AT + 2 + 1 + 1;
const PROOF_BYTES = 32;

export interface ListenAddress {
  host: string;
  port: number;
}

export interface HandshakeConfig {
  cluster: string;
  nodeId: number;
  secret: Buffer;
  pageSize: number;
  maxFrameBytes: number;
  /** This process's incarnation (INCARNATION_BYTES random bytes, drawn at start). */
  incarnation: Buffer;
  /** Where this node listens, as configured. */
  listen: ListenAddress;
  /** Why a node id may not be on the other end of this connection, or undefined if it may. */
  refuse(id: number): string | undefined;
  /** TLS exported keying material; empty without TLS. */
  binding: Buffer;
  /** Only for tests that must speak another version. */
  version?: number;
}

export interface PeerHello {
  nodeId: number;
  pageSize: number;
  maxFrameBytes: number;
  /** The peer process's incarnation, in hex. */
  incarnation: string;
  /** Where the peer says it listens. */
  listen: ListenAddress;
}

/** A handshake that failed; `byPeer` when the other end refused us (its reason is the message). */
export class HandshakeFailure extends NaplusError {
  constructor(
    code: 'EAUTH' | 'EPROTO',
    reason: string,
    readonly byPeer: boolean,
  ) {
    super(code, reason);
  }
}

type HelloFields = Pick<HandshakeConfig, 'cluster' | 'nodeId' | 'pageSize' | 'maxFrameBytes' | 'incarnation' | 'listen' | 'version'>;

export function encodeHello(c: HelloFields, nonce: Buffer): Buffer {
  const cluster = Buffer.from(c.cluster, 'utf8');
  const host = Buffer.from(c.listen.host, 'utf8');
  const p = Buffer.alloc(HELLO_FIXED + cluster.length + host.length);
  p[0] = Kind.Hello;
  MAGIC.copy(p, 1);
  let off = p.writeUInt16LE(c.version ?? PROTOCOL_VERSION, 5);
  off = p.writeUInt32LE(c.nodeId, off);
  off = p.writeUInt32LE(c.pageSize, off);
  off = p.writeUInt32LE(c.maxFrameBytes, off);
  off += nonce.copy(p, off);
  off += c.incarnation.copy(p, off);
  off = p.writeUInt16LE(c.listen.port, off);
  p[off++] = cluster.length;
  p[off++] = host.length;
  off += cluster.copy(p, off);
  host.copy(p, off);
  return frameOf(p);
}

export function encodeReject(reason: string): Buffer {
  return reasonFrame(Kind.Reject, reason);
}

/** What a proof vouches for besides the nonces: who proves to whom, and the prover's incarnation and address. */
interface Prover {
  id: number;
  incarnation: Buffer;
  listen: ListenAddress;
}

function proof(secret: Buffer, cluster: string, prover: Prover, verifier: number, proverNonce: Buffer, verifierNonce: Buffer, binding: Buffer): Buffer {
  const ids = Buffer.alloc(10);
  ids.writeUInt32LE(prover.id, 0);
  ids.writeUInt32LE(verifier, 4);
  ids.writeUInt16LE(prover.listen.port, 8);
  return createHmac('sha256', secret)
    .update('naplus-proof')
    .update(cluster)
    .update(ids)
    .update(proverNonce)
    .update(verifierNonce)
    .update(prover.incarnation)
    .update(prover.listen.host)
    .update(binding)
    .digest();
}

/** One end's side of the handshake: feed it the peer's handshake frames in order. */
export class Handshake {
  private readonly nonce = randomBytes(NONCE_BYTES);
  private peer: PeerHello | undefined;
  private peerNonce: Buffer | undefined;
  private peerIncarnation: Buffer | undefined;
  private claimed: number | undefined;

  constructor(private readonly c: HandshakeConfig) {}

  /** The first frame this end sends. */
  hello(): Buffer {
    return encodeHello(this.c, this.nonce);
  }

  /** The id the peer claimed in its HELLO, once it has sent one. */
  get claimedId(): number | undefined {
    return this.claimed;
  }

  /**
   * Handles one frame from the peer. Returns our PROOF to send after its HELLO, and the
   * peer once its PROOF checks out; throws HandshakeFailure otherwise.
   */
  receive(frame: Buffer): { send?: Buffer; done?: PeerHello } {
    const kind = frame[0];
    if (kind === Kind.Reject) throw new HandshakeFailure('EAUTH', reasonOf(frame), true);
    if (kind === Kind.Hello && !this.peer) return { send: this.onHello(frame) };
    if (kind === Kind.Proof && this.peer) return { done: this.onProof(frame) };
    throw this.fail('EPROTO', `sent frame kind ${kind} where the handshake expected ${this.peer ? 'a proof' : 'a hello'}`);
  }

  private fail(code: 'EAUTH' | 'EPROTO', reason: string): HandshakeFailure {
    return new HandshakeFailure(code, reason, false);
  }

  private onHello(f: Buffer): Buffer {
    if (f.length < 7 || !f.subarray(1, 5).equals(MAGIC)) throw this.fail('EPROTO', 'is not a Naplus node (its first frame lacks the NPLS magic)');
    const version = f.readUInt16LE(5);
    const ours = this.c.version ?? PROTOCOL_VERSION;
    if (version !== ours) throw this.fail('EPROTO', `speaks protocol version ${version}, and node ${this.c.nodeId} speaks version ${ours}`);
    if (f.length < HELLO_FIXED || f.length !== HELLO_FIXED + f[HELLO_FIXED - 2]! + f[HELLO_FIXED - 1]!) {
      throw this.fail('EPROTO', `sent a malformed hello (${f.length} bytes)`);
    }
    const nodeId = f.readUInt32LE(7);
    // Named in log lines from here on, though not trusted until its proof checks out.
    this.claimed = nodeId;
    const pageSize = f.readUInt32LE(11);
    const maxFrameBytes = f.readUInt32LE(15);
    const hostAt = HELLO_FIXED + f[HELLO_FIXED - 2]!;
    const cluster = f.toString('utf8', HELLO_FIXED, hostAt);
    const listen = { host: f.toString('utf8', hostAt), port: f.readUInt16LE(PORT_AT) };
    if (cluster !== this.c.cluster) {
      throw this.fail('EAUTH', `says it belongs to cluster '${cluster}', and node ${this.c.nodeId} belongs to cluster '${this.c.cluster}'`);
    }
    const refused = this.c.refuse(nodeId);
    if (refused) throw this.fail('EAUTH', refused);
    if (pageSize !== this.c.pageSize) throw this.fail('EPROTO', `uses ${pageSize}-byte pages, and node ${this.c.nodeId} uses ${this.c.pageSize}-byte pages`);
    if (maxFrameBytes < HANDSHAKE_MAX_FRAME) throw this.fail('EPROTO', `accepts frames of at most ${maxFrameBytes} bytes, too few to work with`);
    this.peerNonce = Buffer.from(f.subarray(NONCE_AT, NONCE_AT + NONCE_BYTES));
    this.peerIncarnation = Buffer.from(f.subarray(INCARNATION_AT, INCARNATION_AT + INCARNATION_BYTES));
    this.peer = { nodeId, pageSize, maxFrameBytes, incarnation: this.peerIncarnation.toString('hex'), listen };
    const mine = proof(this.c.secret, this.c.cluster, { id: this.c.nodeId, incarnation: this.c.incarnation, listen: this.c.listen }, nodeId, this.nonce, this.peerNonce, this.c.binding);
    return frameOf(Buffer.concat([Buffer.of(Kind.Proof), mine]));
  }

  private onProof(f: Buffer): PeerHello {
    const peer = this.peer!;
    const prover = { id: peer.nodeId, incarnation: this.peerIncarnation!, listen: peer.listen };
    const expected = proof(this.c.secret, this.c.cluster, prover, this.c.nodeId, this.peerNonce!, this.nonce, this.c.binding);
    if (f.length !== 1 + PROOF_BYTES || !timingSafeEqual(f.subarray(1), expected)) {
      throw this.fail('EAUTH', `failed to prove it knows the cluster secret: the two nodes do not share the same secret`);
    }
    return peer;
  }
}
