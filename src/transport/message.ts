// Message frames (Message, Request, Reply, ReplyError). After the length prefix
// (integers LE):
//
//   u8 kind | u8 bodyKind | u16 type | u32 requestId | u32 bodyLength | u64 seq | u64 ack
//   | body | pages?
//
// `seq` numbers the session's message frames one by one from 1; `ack` is the highest seq
// the sender has received and handled (session.ts). Both are set by the session, after
// encoding: the seq when the frame is queued, the ack when it goes out.
// bodyKind 0: no body; 1: bytes, handed over as they are (the compact path the
// coherence layer uses on hot messages); 2: UTF-8 JSON. The page section (pages.ts)
// fills whatever follows the body; a frame that ends with its body has no pages.
import { invalidArgument } from '../errors.js';
import { LENGTH_BYTES, protocolError, readU64, writeU64 } from './frame.js';
import type { EncodedPages, PageCodec } from './pages.js';
import type { Message } from './types.js';

const BodyKind = { None: 0, Bytes: 1, Json: 2 } as const;
const SEQ_AT = 12;
const ACK_AT = 20;
const HEAD = 28;

/** Sets the seq of an encoded message frame (length prefix included). */
export function setSeq(frame: Buffer, seq: number): void {
  writeU64(frame, seq, LENGTH_BYTES + SEQ_AT);
}

/** Sets the ack an encoded message frame carries (length prefix included). */
export function setAck(frame: Buffer, ack: number): void {
  writeU64(frame, ack, LENGTH_BYTES + ACK_AT);
}

export interface EncodedMessage {
  /** The whole frame, length prefix included, in one buffer (one write, no gather). */
  frame: Buffer;
  pages: EncodedPages | undefined;
}

export interface DecodedMessage {
  kind: number;
  requestId: number;
  seq: number;
  ack: number;
  msg: Message;
}

export function encodeMessage(kind: number, requestId: number, msg: Message, codec: PageCodec, lz4: boolean): EncodedMessage {
  const { type, body, pages } = msg;
  if (!Number.isInteger(type) || type < 0 || type > 0xffff) throw invalidArgument('msg.type', 'an integer from 0 to 65535', type);
  let bodyKind: number = BodyKind.None;
  let bytes: Uint8Array | undefined;
  let json: string | undefined;
  let bodyLength = 0;
  if (body instanceof Uint8Array) {
    bodyKind = BodyKind.Bytes;
    bytes = body;
    bodyLength = body.length;
  } else if (body !== undefined) {
    json = JSON.stringify(body);
    if (json === undefined) throw invalidArgument('msg.body', 'a Uint8Array or a JSON-able value', body);
    bodyKind = BodyKind.Json;
    bodyLength = Buffer.byteLength(json);
  }
  const encoded = pages && pages.length > 0 ? codec.encode(pages, lz4) : undefined;
  const length = HEAD + bodyLength + (encoded ? encoded.bytes : 0);
  const frame = Buffer.allocUnsafe(LENGTH_BYTES + length);
  frame.writeUInt32LE(length, 0);
  frame[4] = kind;
  frame[5] = bodyKind;
  frame.writeUInt16LE(type, 6);
  frame.writeUInt32LE(requestId, 8);
  frame.writeUInt32LE(bodyLength, 12);
  frame.fill(0, LENGTH_BYTES + SEQ_AT, LENGTH_BYTES + HEAD);
  let off = LENGTH_BYTES + HEAD;
  if (bytes) {
    frame.set(bytes, off);
    off += bytes.length;
  } else if (json !== undefined) off += frame.write(json, off, 'utf8');
  if (encoded) codec.write(frame, off, encoded);
  return { frame, pages: encoded };
}

/** Decodes a frame whose kind byte is a message kind; throws EPROTO on anything amiss. */
export function decodeMessage(frame: Buffer, codec: PageCodec): DecodedMessage {
  if (frame.length < HEAD) throw protocolError(`a message frame of ${frame.length} bytes, shorter than its ${HEAD}-byte head`);
  const bodyKind = frame[1]!;
  const type = frame.readUInt16LE(2);
  const requestId = frame.readUInt32LE(4);
  const bodyLength = frame.readUInt32LE(8);
  const seq = readU64(frame, SEQ_AT, 'a sequence number');
  const ack = readU64(frame, ACK_AT, 'an acknowledgement');
  const bodyEnd = HEAD + bodyLength;
  if (bodyEnd > frame.length) throw protocolError(`a body of ${bodyLength} bytes in a frame of ${frame.length}`);
  const msg: Message = { type };
  switch (bodyKind) {
    case BodyKind.None:
      if (bodyLength !== 0) throw protocolError(`${bodyLength} body bytes in a frame that says it has no body`);
      break;
    case BodyKind.Bytes:
      msg.body = frame.subarray(HEAD, bodyEnd);
      break;
    case BodyKind.Json:
      try {
        msg.body = JSON.parse(frame.toString('utf8', HEAD, bodyEnd));
      } catch {
        throw protocolError('a JSON body that does not parse');
      }
      break;
    default:
      throw protocolError(`body kind ${bodyKind}`);
  }
  if (bodyEnd < frame.length) {
    msg.pages = codec.decode(frame, bodyEnd);
    msg.pageWireBytes = frame.length - bodyEnd;
  }
  return { kind: frame[0]!, requestId, seq, ack, msg };
}
