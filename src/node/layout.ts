// Where every page of every region lives: its home node, the home's host, and the slot
// that holds its master copy in that host's segment. Every node computes the same
// answer from the same cluster file, so no node needs to ask another.
//
// Segment of one host:  [ header (64 KiB) | region A's pages homed here | region B's … ]
// Within a region's area a page's slot is its rank among the region's pages homed on
// that host, so a host's segment holds only what is homed there: the shared space can
// be as large as the sum of the segments.
//
// First-touch regions have no fixed homes: each host's area holds an equal share of the
// region's pages (rounded up), cut into one pool per node (each node is the manager of
// every N-th page and hands out slots from its pools, see coherence/first-touch.ts), and
// a table area where the managers on that host keep which page went where.
//
// Release-consistent regions have two more areas: each page's version beside the master
// copies (a u32 per slot), and each node's notices as a home of locks and barriers (a
// u32 per page of the region, per node of the host), see coherence/release/.
import type { ClusterConfig, RegionConfig } from '../config.js';
import { formatSize } from '../config.js';
import { NaplusError } from '../errors.js';

export const SEGMENT_HEADER_BYTES = 64 * 1024;

/**
 * Home node of every page. `block`: contiguous blocks per host, then per node within a
 * host; `interleave`: page i on node i mod N, in cluster-file order.
 */
function homeTable(placement: string, pages: number, hosts: number[][]): Uint16Array {
  const home = new Uint16Array(pages);
  if (placement === 'interleave') {
    const all = hosts.flat();
    for (let p = 0; p < pages; p++) home[p] = all[p % all.length]!;
    return home;
  }
  if (placement !== 'block') throw new NaplusError('ENOTSUP', `Placement '${placement}' has no fixed homes`);
  hosts.forEach((nodes, h) => {
    const from = Math.floor((h * pages) / hosts.length);
    const to = Math.floor(((h + 1) * pages) / hosts.length);
    nodes.forEach((node, n) => {
      const a = from + Math.floor((n * (to - from)) / nodes.length);
      const b = from + Math.floor(((n + 1) * (to - from)) / nodes.length);
      home.fill(node, a, b);
    });
  });
  return home;
}

/** Bytes of one entry of a first-touch manager's table. */
export const HOME_ENTRY_BYTES = 8;

export class RegionLayout {
  readonly pages: number;
  readonly firstTouch: boolean;
  /** Home node of each page (static placements only). */
  readonly home: Uint16Array;
  /** Slot of each page within its home host's area (static placements only). */
  readonly slot: Uint32Array;
  /** Page slots in each host's area, by host name. */
  readonly hostPages = new Map<string, number>();
  /** First-touch: slots in each manager's pool on each host, and bytes of each manager's table. */
  readonly poolSize: number = 0;
  readonly tableBytes: number = 0;
  private readonly hostOfNode = new Map<number, string>();

  constructor(
    readonly config: ClusterConfig,
    readonly region: RegionConfig,
  ) {
    this.pages = region.size / region.pageSize;
    for (const n of config.nodes) this.hostOfNode.set(n.id, n.host);
    this.firstTouch = region.placement === 'first-touch';
    if (this.firstTouch) {
      const nodes = config.nodes.length;
      this.poolSize = Math.ceil(Math.ceil(this.pages / config.hosts.length) / nodes);
      this.tableBytes = Math.ceil((Math.ceil(this.pages / nodes) * HOME_ENTRY_BYTES) / 4096) * 4096;
      for (const h of config.hosts) this.hostPages.set(h.name, nodes * this.poolSize);
      this.home = new Uint16Array(0);
      this.slot = new Uint32Array(0);
      return;
    }
    this.home = homeTable(region.placement, this.pages, config.hosts.map((h) => h.nodes.map((n) => n.id)));
    this.slot = new Uint32Array(this.pages);
    for (const h of config.hosts) this.hostPages.set(h.name, 0);
    for (let p = 0; p < this.pages; p++) {
      const host = this.hostOfNode.get(this.home[p]!)!;
      const rank = this.hostPages.get(host)!;
      this.slot[p] = rank;
      this.hostPages.set(host, rank + 1);
    }
  }

  /** Most page slots any host's area has. */
  get slots(): number {
    return Math.max(...this.hostPages.values());
  }

  hostOfNodeId(node: number): string {
    return this.hostOfNode.get(node)!;
  }

  /** Bytes of the first-touch tables of the managers on `host` (0 for static placements). */
  tableAreaBytes(host: string): number {
    return this.tableBytes * this.config.nodes.filter((n) => n.host === host).length;
  }

  /** Release consistency: bytes of one node's notices (a u32 per page), whole pages of 4 KiB. */
  get noticeBytes(): number {
    return pageRound(this.pages * VERSION_BYTES);
  }

  /**
   * The byte ranges [from, to) homed on `host`: `runs` within one period of the pattern
   * of homes (one page per node for 'interleave', the whole region for 'block'), repeated
   * every `period` bytes. So the attach message stays short even for a region interleaved
   * page by page over the hosts. No runs for first-touch: no page has a home before it is
   * touched.
   */
  homedOn(host: string): { period: number; runs: Array<[number, number]> } {
    const ps = this.region.pageSize;
    const period = this.region.placement === 'interleave' ? Math.min(this.config.nodes.length, this.pages) : this.pages;
    const runs: Array<[number, number]> = [];
    for (let p = 0; p < period && !this.firstTouch; p++) {
      if (this.hostOfNodeId(this.home[p]!) !== host) continue;
      const last = runs.at(-1);
      if (last && last[1] === p * ps) last[1] += ps;
      else runs.push([p * ps, (p + 1) * ps]);
    }
    return { period: period * ps, runs };
  }
}

/** The name of a first-touch region's table area in the segment. */
export const tableAreaName = (region: string): string => `${region}#homes`;

/** The name of the area that records the owners of a region's pages homed on the host (SegmentDirectory). */
export const directoryAreaName = (region: string): string => `${region}#owners`;

/** Bytes of one directory entry: u16 owner index + 1 | u16 home index + 1 | u32 page. */
export const DIRECTORY_ENTRY_BYTES = 8;

/** Release consistency: the areas of a region's page versions (by slot) and of its nodes' notices (by node of the host, then page). */
export const versionsAreaName = (region: string): string => `${region}#versions`;
export const noticesAreaName = (region: string): string => `${region}#notices`;
export const VERSION_BYTES = 4;

const pageRound = (bytes: number): number => Math.ceil(bytes / 4096) * 4096;

export interface RegionArea {
  name: string;
  /** Byte offset of the region's area in this host's segment. */
  offset: number;
  length: number;
}

export interface SegmentPlan {
  host: string;
  areas: RegionArea[];
  /** Bytes the segment must have at least. */
  needed: number;
}

/** The areas of one host's segment, in the order of the cluster file's regions. */
export function planSegment(layouts: RegionLayout[], host: string): SegmentPlan {
  let offset = SEGMENT_HEADER_BYTES;
  const areas: RegionArea[] = [];
  const add = (name: string, length: number) => {
    areas.push({ name, offset, length });
    offset += length;
  };
  for (const l of layouts) {
    const slots = l.hostPages.get(host)!;
    add(l.region.name, slots * l.region.pageSize);
    if (l.firstTouch) add(tableAreaName(l.region.name), l.tableAreaBytes(host));
    add(directoryAreaName(l.region.name), pageRound(slots * DIRECTORY_ENTRY_BYTES));
    if (l.region.consistency === 'release') {
      add(versionsAreaName(l.region.name), pageRound(slots * VERSION_BYTES));
      add(noticesAreaName(l.region.name), l.noticeBytes * l.config.nodes.filter((n) => n.host === host).length);
    }
  }
  return { host, areas, needed: offset };
}

/** Throws a startup error naming the size a too-small segment must have. */
export function checkSegmentSize(plan: SegmentPlan, configured: number, path: string, field: string): void {
  if (configured >= plan.needed) return;
  const parts = plan.areas.map((a) => `${a.name}: ${formatSize(a.length)}`).join(', ');
  throw new NaplusError(
    'ENOSPC',
    `Segment ${path} of host ${plan.host} is ${formatSize(configured)} but must be at least ${formatSize(plan.needed)} ` +
      `(header ${formatSize(SEGMENT_HEADER_BYTES)}, ${parts}); set ${field} to "${Math.ceil(plan.needed / (1 << 20))}M" or more`,
  );
}
