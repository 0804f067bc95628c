// The filesystem the segments live on during a fault-injection run: a small tmpfs made
// for the run (under /dev/shm, where nodes create segment files), sized for the segments
// plus some room, so that the `diskfull` fault can fill it for real.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Free space left beside the segments, for the fault to take. */
const ROOM_BYTES = 4 << 20;

export class SegmentDisk {
  private filler: string;

  private constructor(readonly dir: string) {
    this.filler = path.join(dir, 'filler');
  }

  /** Why a tmpfs cannot be mounted here, or undefined when it can. */
  static unavailable(): string | undefined {
    return process.getuid?.() === 0 ? undefined : 'mounting a tmpfs for the segments needs root';
  }

  /** Mounts a tmpfs at /dev/shm/<name>, large enough for now (see fit()). */
  static mount(name: string): SegmentDisk {
    const dir = path.join('/dev/shm', name);
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0770', 'tmpfs', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    return new SegmentDisk(dir);
  }

  /** Shrinks the filesystem to `segmentBytes` plus room for the fault to fill. */
  fit(segmentBytes: number): void {
    const pages = Math.ceil((segmentBytes + ROOM_BYTES) / 4096);
    execFileSync('mount', ['-o', `remount,size=${pages * 4096}`, this.dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** Fills every free byte with a file; returns how many bytes it took. */
  fill(): number {
    const fd = fs.openSync(this.filler, 'w');
    let bytes = 0;
    try {
      for (const chunk of [Buffer.alloc(1 << 20, 0xa5), Buffer.alloc(4096, 0xa5)]) {
        for (;;) {
          try {
            bytes += fs.writeSync(fd, chunk);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
            throw err;
          }
        }
      }
    } finally {
      fs.closeSync(fd);
    }
    return bytes;
  }

  /** Deletes the fill file. */
  free(): void {
    fs.rmSync(this.filler, { force: true });
  }

  /** Bytes free on the filesystem now. */
  freeBytes(): number {
    const s = fs.statfsSync(this.dir);
    return s.bavail * s.bsize;
  }

  unmount(): void {
    try {
      execFileSync('umount', ['-l', this.dir], { stdio: 'ignore' });
    } catch {
      // not mounted (any more)
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
