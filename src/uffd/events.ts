// Decoding of struct uffd_msg (32 bytes each, little-endian on every Linux Naplus runs on).
import { K } from './native.js';

export type UffdEvent =
  | { kind: 'fault'; address: number; write: boolean; wp: boolean; minor: boolean; tid: number }
  | { kind: 'fork'; uffd: number }
  | { kind: 'remap'; from: number; to: number; length: number }
  | { kind: 'remove'; start: number; end: number }
  | { kind: 'unmap'; start: number; end: number };

const MSG = 32;

export function decodeEvents(buf: Buffer): UffdEvent[] {
  const out: UffdEvent[] = [];
  for (let at = 0; at + MSG <= buf.length; at += MSG) {
    const event = buf.readUInt8(at);
    const u64 = (off: number) => Number(buf.readBigUInt64LE(at + off));
    switch (event) {
      case K.UFFD_EVENT_PAGEFAULT: {
        const flags = u64(8);
        out.push({
          kind: 'fault',
          address: u64(16),
          write: (flags & K.UFFD_PAGEFAULT_FLAG_WRITE!) !== 0,
          wp: (flags & K.UFFD_PAGEFAULT_FLAG_WP!) !== 0,
          minor: (flags & K.UFFD_PAGEFAULT_FLAG_MINOR!) !== 0,
          tid: buf.readUInt32LE(at + 24),
        });
        break;
      }
      case K.UFFD_EVENT_FORK:
        out.push({ kind: 'fork', uffd: buf.readUInt32LE(at + 8) });
        break;
      case K.UFFD_EVENT_REMAP:
        out.push({ kind: 'remap', from: u64(8), to: u64(16), length: u64(24) });
        break;
      case K.UFFD_EVENT_REMOVE:
        out.push({ kind: 'remove', start: u64(8), end: u64(16) });
        break;
      case K.UFFD_EVENT_UNMAP:
        out.push({ kind: 'unmap', start: u64(8), end: u64(16) });
        break;
      default:
        break; // a newer kernel's event we never asked for
    }
  }
  return out;
}
