// Framing: every frame on a link is `u32 length (LE) | length bytes`, and its first byte
// says what kind of frame it is. The reader enforces a cap before buffering anything,
// so a peer cannot make us hold more than one frame's worth of its bytes.
import { NaplusError } from '../errors.js';

export const Kind = {
  Hello: 1,
  Proof: 2,
  Reject: 3,
  Message: 4,
  Request: 5,
  Reply: 6,
  ReplyError: 7,
  /** Heartbeat, and the acknowledgement of what was received: `u8 kind | u64 ack`. */
  Ping: 8,
  /** First frame after the handshake, both ways: which session to resume or start (session.ts). */
  Resume: 9,
  /** The sender gave our session up: `u8 kind | reason (UTF-8)`; it closes the connection next. */
  Drop: 10,
} as const;

export const LENGTH_BYTES = 4;
/** Sequence numbers and acks are u64 on the wire, kept below 2^53 (a JS number counts them exactly). */
const TWO_32 = 2 ** 32;

export function writeU64(b: Buffer, value: number, off: number): void {
  b.writeUInt32LE(value % TWO_32, off);
  b.writeUInt32LE(Math.floor(value / TWO_32), off + 4);
}

/** Throws EPROTO (naming `what`, article included) on a value of 2^53 or more: no honest peer counts that far. */
export function readU64(b: Buffer, off: number, what: string): number {
  const high = b.readUInt32LE(off + 4);
  if (high >= 2 ** 21) throw protocolError(`${what} of 2^53 or more`);
  return high * TWO_32 + b.readUInt32LE(off);
}

/** A frame that breaks the protocol; its link is closed, nothing else is disturbed. */
export function protocolError(reason: string): NaplusError {
  return new NaplusError('EPROTO', reason);
}

/** Prefixes a frame's bytes (kind byte first) with their length. */
export function frameOf(payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(LENGTH_BYTES + payload.length);
  b.writeUInt32LE(payload.length, 0);
  payload.copy(b, LENGTH_BYTES);
  return b;
}

/** Frames that carry a reason for a human (Reject, Drop): the text, cut to 400 characters. */
export function reasonFrame(kind: number, reason: string): Buffer {
  return frameOf(Buffer.concat([Buffer.of(kind), Buffer.from(reason.slice(0, 400), 'utf8')]));
}

/** The reason a Reject or Drop frame gives, made printable. */
export function reasonOf(frame: Buffer): string {
  return frame.toString('utf8', 1, Math.min(frame.length, 1 + 400 * 4)).replace(/[^\x20-\x7e\u00a0-\uffff]/g, '?');
}

/**
 * Cuts a byte stream into frames. A frame that lies inside one received chunk is
 * handed on as a view of that chunk (no copy); only a frame split across chunks is
 * joined, once, when its last byte has arrived.
 */
export class FrameReader {
  private parts: Buffer[] = [];
  private buffered = 0;
  /** Total bytes (prefix included) of the frame being joined; 0 while its length is unknown. */
  private need = 0;
  private stopped = false;

  constructor(
    /** Largest frame length accepted; raised once the peer is authenticated. */
    public maxFrame: number,
    private readonly onFrame: (frame: Buffer) => void,
  ) {}

  /** Bytes of an incomplete frame held back, and how long that frame is (0 if unknown). */
  get partial(): { have: number; need: number } {
    return { have: this.buffered, need: this.need };
  }

  /** No more frames are delivered (the link is closing). */
  stop(): void {
    this.stopped = true;
    this.parts = [];
    this.buffered = 0;
  }

  /** Feeds received bytes; throws EPROTO on a frame length outside the cap. */
  push(chunk: Buffer): void {
    if (this.stopped) return;
    let buf = chunk;
    if (this.buffered > 0) {
      this.parts.push(chunk);
      this.buffered += chunk.length;
      if (this.need === 0) {
        if (this.buffered < LENGTH_BYTES) return;
        this.need = LENGTH_BYTES + this.checkLength(this.peekLength());
      }
      if (this.buffered < this.need) return;
      buf = Buffer.concat(this.parts, this.buffered);
      this.parts = [];
      this.buffered = 0;
      this.need = 0;
    }
    let off = 0;
    while (!this.stopped && buf.length - off >= LENGTH_BYTES) {
      const len = this.checkLength(buf.readUInt32LE(off));
      const end = off + LENGTH_BYTES + len;
      if (end > buf.length) {
        this.need = LENGTH_BYTES + len;
        break;
      }
      this.onFrame(buf.subarray(off + LENGTH_BYTES, end));
      off = end;
    }
    if (!this.stopped && off < buf.length) {
      this.parts = [buf.subarray(off)];
      this.buffered = buf.length - off;
    }
  }

  /** The length prefix when it is split across parts (rare: a chunk ended inside it). */
  private peekLength(): number {
    const prefix = Buffer.allocUnsafe(LENGTH_BYTES);
    let i = 0;
    for (const p of this.parts) for (let j = 0; j < p.length && i < LENGTH_BYTES; j++) prefix[i++] = p[j]!;
    return prefix.readUInt32LE(0);
  }

  private checkLength(len: number): number {
    if (len === 0) throw protocolError('an empty frame (length 0)');
    if (len > this.maxFrame) throw protocolError(`a frame of ${len} bytes, over the cap of ${this.maxFrame} bytes`);
    return len;
  }
}
