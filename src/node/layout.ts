// Where every page of every region lives: its home node, the home's host, and the slot
// that holds its master copy in that host's segment. Every node computes the same
// answer from the same cluster file, so no node needs to ask another.
//
// Segment of one host:  [ header (64 KiB) | region A's pages homed here | region B's … ]
// Within a region's area a page's slot is its rank among the region's pages homed on
// that host, so a host's segment holds only what is homed there: the shared space can
// be as large as the sum of the segments.
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
  if (placement !== 'block') {
    throw new NaplusError('ENOTSUP', `Placement '${placement}' is not supported yet; use 'block' or 'interleave'`);
  }
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

export class RegionLayout {
  readonly pages: number;
  /** Home node of each page. */
  readonly home: Uint16Array;
  /** Slot of each page within its home host's area for this region. */
  readonly slot: Uint32Array;
  /** Pages homed on each host, by host name. */
  readonly hostPages = new Map<string, number>();
  /**
   * Pages after which the pattern of homes repeats: the whole region for 'block', one
   * page per node for 'interleave'.
   */
  readonly period: number;
  private readonly hostOfNode = new Map<number, string>();

  constructor(
    readonly config: ClusterConfig,
    readonly region: RegionConfig,
  ) {
    this.pages = region.size / region.pageSize;
    for (const n of config.nodes) this.hostOfNode.set(n.id, n.host);
    this.home = homeTable(region.placement, this.pages, config.hosts.map((h) => h.nodes.map((n) => n.id)));
    this.period = region.placement === 'interleave' ? Math.min(config.nodes.length, this.pages) : this.pages;
    this.slot = new Uint32Array(this.pages);
    for (const h of config.hosts) this.hostPages.set(h.name, 0);
    for (let p = 0; p < this.pages; p++) {
      const host = this.hostOfNode.get(this.home[p]!)!;
      const rank = this.hostPages.get(host)!;
      this.slot[p] = rank;
      this.hostPages.set(host, rank + 1);
    }
  }

  hostOf(page: number): string {
    return this.hostOfNode.get(this.home[page]!)!;
  }

  hostOfNodeId(node: number): string {
    return this.hostOfNode.get(node)!;
  }

  /**
   * Byte ranges [from, to) of the first period homed on `host`, merged. Repeated every
   * period they are every range homed there: an app learns its host's memory from this
   * short list even when the region is interleaved page by page over the hosts.
   */
  hostRuns(host: string): Array<[number, number]> {
    const ps = this.region.pageSize;
    const runs: Array<[number, number]> = [];
    for (let p = 0; p < this.period; p++) {
      if (this.hostOf(p) !== host) continue;
      const last = runs.at(-1);
      if (last && last[1] === p * ps) last[1] += ps;
      else runs.push([p * ps, (p + 1) * ps]);
    }
    return runs;
  }
}

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
  const areas = layouts.map((l) => {
    const length = l.hostPages.get(host)! * l.region.pageSize;
    const area = { name: l.region.name, offset, length };
    offset += length;
    return area;
  });
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
