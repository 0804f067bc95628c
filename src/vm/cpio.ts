// A cpio archive in the "newc" format, the one the kernel unpacks as an initramfs.
// Written here rather than by the cpio tool, so that building a guest image needs no
// package beyond QEMU, and so that entries the builder could not create as a file
// (the /dev/console device node, owned by root) are plain header fields.

export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Uint8Array; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

const TYPE = { dir: 0o040000, file: 0o100000, symlink: 0o120000, chardev: 0o020000 } as const;
const DEFAULT_MODE = { dir: 0o755, file: 0o644, symlink: 0o777, chardev: 0o600 } as const;

const hex8 = (n: number) => n.toString(16).padStart(8, '0');
const pad4 = (n: number) => (4 - (n % 4)) % 4;

function record(ino: number, mode: number, name: string, data: Uint8Array, rdev: [number, number] = [0, 0]): Buffer {
  const nameBytes = Buffer.from(`${name}\0`);
  const fields = [ino, mode, 0, 0, 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0];
  const header = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
  return Buffer.concat([header, nameBytes, Buffer.alloc(pad4(header.length + nameBytes.length)), data, Buffer.alloc(pad4(data.length))]);
}

/** The archive holding `entries` in order (parents before children), with its trailer. */
export function cpioArchive(entries: CpioEntry[]): Buffer {
  const parts = entries.map((e, i) => {
    const name = e.path.replace(/^\/+/, '');
    if (name === '' || name.split('/').includes('..')) throw new Error(`cpio: bad entry path '${e.path}'`);
    const mode = TYPE[e.kind] | (('mode' in e && e.mode) || DEFAULT_MODE[e.kind]);
    switch (e.kind) {
      case 'dir':
        return record(i + 1, mode, name, new Uint8Array(0));
      case 'file':
        return record(i + 1, mode, name, e.data);
      case 'symlink':
        return record(i + 1, mode, name, Buffer.from(e.target));
      case 'chardev':
        return record(i + 1, mode, name, new Uint8Array(0), [e.major, e.minor]);
    }
  });
  return Buffer.concat([...parts, record(0, 0, 'TRAILER!!!', new Uint8Array(0))]);
}
