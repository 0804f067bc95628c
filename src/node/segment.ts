// A host's segment: the ivshmem object every VM on that host maps (a PCI resource2
// file in a guest, a /dev/shm file on a bare machine or in tests). One code path maps
// both. The first node formats its header; co-resident nodes check it. Formatting
// writes only the header, and two nodes formatting at once write the same bytes, so
// no lock is needed and data written before a restart survives.
import fs from 'node:fs';
import { Mapping, reserveSpace } from '../uffd/index.js';
import { NaplusError } from '../errors.js';
import { formatSize, type HostConfig } from '../config.js';
import { SEGMENT_HEADER_BYTES, checkSegmentSize, type RegionArea, type SegmentPlan } from './layout.js';

const MAGIC = Buffer.from('NAPLUSSG');
/**
 * 2: each region's area has the owners of its pages beside them (SegmentDirectory).
 * 3: release-consistent regions have their pages' versions and their nodes' notices too.
 */
const LAYOUT_VERSION = 3;

interface Header {
  cluster: string;
  host: string;
  regions: RegionArea[];
}

export class Segment {
  /**
   * Whether the file takes positional reads and writes. A /dev/shm file does, and they
   * are cheaper than touching the mapping (a page first touched through a mapping costs
   * a page fault, ~4 µs here); a PCI BAR file takes only mmap.
   */
  private readonly positional: boolean;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    readonly mapping: Mapping,
    private readonly areas: Map<string, RegionArea>,
    /** True when this node wrote the header (the segment was new). */
    readonly formatted: boolean,
  ) {
    try {
      fs.readSync(fd, Buffer.alloc(1), 0, 1, 0);
      this.positional = true;
    } catch {
      this.positional = false;
    }
  }

  /** Reads `into.length` bytes at `offset`. */
  readAt(offset: number, into: Uint8Array): void {
    this.mapping.check(offset, into.length);
    if (this.positional) fs.readSync(this.fd, into, 0, into.length, offset);
    else this.mapping.read(offset, into);
  }

  /** Reads into `buffers` back to back from `offset` (one system call where the file allows). */
  readvAt(offset: number, buffers: Uint8Array[]): void {
    const length = buffers.reduce((n, b) => n + b.length, 0);
    this.mapping.check(offset, length);
    if (this.positional && fs.readvSync(this.fd, buffers, offset) === length) return;
    for (let at = offset, i = 0; i < buffers.length; at += buffers[i]!.length, i++) this.readAt(at, buffers[i]!);
  }

  /** Writes `from` at `offset`. */
  writeAt(offset: number, from: Uint8Array): void {
    this.mapping.check(offset, from.length);
    if (this.positional) fs.writeSync(this.fd, from, 0, from.length, offset);
    else this.mapping.write(offset, from);
  }

  /**
   * Opens (creating it under /dev/shm if missing) and maps the segment of `host`,
   * then formats or checks its header against `plan`. `field` names the cluster-file
   * field for error messages.
   */
  static open(host: HostConfig, plan: SegmentPlan, cluster: string, field: string): Segment {
    const { path, size } = host.segment;
    checkSegmentSize(plan, size, path, `${field}.segment.size`);
    const fd = openFile(path, size);
    try {
      const actual = fs.fstatSync(fd).size;
      if (actual < size) {
        throw new NaplusError('ENOSPC', `Segment ${path} is only ${formatSize(actual)} but the cluster file says ${formatSize(size)}`);
      }
      reserve(fd, size, path);
      const mapping = Mapping.map(fd, size);
      const want: Header = { cluster, host: host.name, regions: plan.areas };
      let formatted = false;
      try {
        formatted = formatOrCheck(mapping, want, path);
      } catch (err) {
        mapping.unmap();
        throw err;
      }
      return new Segment(path, fd, mapping, new Map(plan.areas.map((a) => [a.name, a])), formatted);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  area(region: string): RegionArea {
    const a = this.areas.get(region);
    if (!a) throw new NaplusError('ENOENT', `Segment ${this.path} has no area for region '${region}'`);
    return a;
  }

  close(): void {
    this.mapping.unmap();
    fs.closeSync(this.fd);
  }
}

/**
 * Reserves the segment's space up front: a write-back must never fail, or a store through
 * the mapping fault, because the file system filled up meanwhile. A PCI BAR is memory
 * of its own and needs (and takes) no reservation.
 */
function reserve(fd: number, size: number, path: string): void {
  try {
    reserveSpace(fd, size);
  } catch (err) {
    if ((err as NaplusError).code !== 'ENOSPC') throw err;
    let free = '';
    try {
      const st = fs.statfsSync(path);
      free = ` (${formatSize(st.bavail * st.bsize)} free there)`;
    } catch {
      // the size asked for is the remedy either way
    }
    throw new NaplusError('ENOSPC', `Segment ${path} needs ${formatSize(size)} reserved on its file system, which has not the room${free}; free space there or make the segment smaller`);
  }
}

function openFile(path: string, size: number): number {
  try {
    return fs.openSync(path, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !path.startsWith('/dev/shm/')) {
      throw new NaplusError('ENOENT', `Cannot open segment ${path}: ${(err as Error).message}`);
    }
  }
  const fd = fs.openSync(path, 'w+', 0o660);
  fs.ftruncateSync(fd, size);
  return fd;
}

function encodeHeader(h: Header): Buffer {
  const json = Buffer.from(JSON.stringify(h));
  const buf = Buffer.alloc(16 + json.length);
  MAGIC.copy(buf, 0);
  buf.writeUInt32LE(LAYOUT_VERSION, 8);
  buf.writeUInt32LE(json.length, 12);
  json.copy(buf, 16);
  if (buf.length > SEGMENT_HEADER_BYTES) {
    throw new NaplusError('ECONFIG', `Too many regions: the segment header needs ${buf.length} bytes, at most ${SEGMENT_HEADER_BYTES}`);
  }
  return buf;
}

function formatOrCheck(mapping: Mapping, want: Header, path: string): boolean {
  const encoded = encodeHeader(want);
  const magic = Buffer.alloc(16);
  mapping.read(0, magic);
  if (!magic.subarray(0, 8).equals(MAGIC)) {
    // Body first, magic last: a co-resident node that reads a header sees it whole.
    mapping.write(8, encoded.subarray(8));
    mapping.write(0, encoded.subarray(0, 8));
    return true;
  }
  const version = magic.readUInt32LE(8);
  const length = magic.readUInt32LE(12);
  if (version !== LAYOUT_VERSION || length > SEGMENT_HEADER_BYTES - 16) {
    throw new NaplusError('ECONFIG', `Segment ${path} has layout version ${version}; this Naplus writes version ${LAYOUT_VERSION}. Remove the segment (its data is lost) to start afresh`);
  }
  const body = Buffer.alloc(length);
  mapping.read(16, body);
  let have: Header;
  try {
    have = JSON.parse(body.toString()) as Header;
  } catch {
    throw new NaplusError('ECONFIG', `Segment ${path} has a damaged header. Remove the segment (its data is lost) to start afresh`);
  }
  if (JSON.stringify(have) !== JSON.stringify(want)) {
    throw new NaplusError(
      'ECONFIG',
      `Segment ${path} was formatted for cluster '${have.cluster}', host '${have.host}', regions ` +
        `${have.regions.map((r) => `${r.name}@${r.offset}+${r.length}`).join(', ')}; the cluster file now asks for cluster '${want.cluster}', host '${want.host}', regions ` +
        `${want.regions.map((r) => `${r.name}@${r.offset}+${r.length}`).join(', ')}. Restore the old cluster file, or remove the segment (its data is lost)`,
    );
  }
  return false;
}
