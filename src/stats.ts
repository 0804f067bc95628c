// One vocabulary for a node's counters, wherever they are shown (the API's
// region.stats(), `naplus stats`, `naplus cluster status`, the demo, fault traces): a
// fault is served from the node's *cache* (the page was there: no copy), its host's
// *segment* (a local copy), or another host (*remote*, over a link); the three add up
// to `faults`. Apart from them: *upgrades*, faults that were writes to a page held
// read-only (each is also one of the faults), and *readahead*, pages mapped ahead of
// sequential faults (they never fault, so they are not faults).
import type { Consistency } from './config.js';
import type { ProtocolCounters } from './coherence/protocol.js';
import type { RegionCounters } from './node/region.js';
import type { FaultSource } from './trace/fault-event.js';
import type { PeerStats } from './transport/index.js';

/** A region's entry in a node's `stats` answer on its control or region socket. */
export interface RegionReply extends RegionCounters {
  apps: number;
  residentPages: number;
  cacheLimitPages: number;
  consistency: Consistency;
  coherence: ProtocolCounters;
}

/** A node's answer to `stats`. */
export interface StatsReply {
  node: number;
  host: string;
  cluster: string;
  regions: Record<string, RegionReply>;
  peers: Record<string, PeerStats>;
}

export interface RegionFigures {
  consistency: Consistency;
  apps: number;
  /** Faults resolved: bySource.cache + bySource.segment + bySource.remote. */
  faults: number;
  bySource: Record<FaultSource, number>;
  /** Of those faults, writes to a page this node held read-only. */
  upgrades: number;
  /** Pages mapped ahead of sequential faults (not faults). */
  readahead: number;
  /** Clean pages dropped and dirty ones written home to stay within --cache. */
  evictions: number;
  /** Dirty pages written to their home. */
  writebacks: number;
  /** Bytes of page data that crossed links for this region's faults. */
  wireBytes: number;
  residentPages: number;
  cacheLimitPages: number;
  /** Release consistency only: twins made, diffs sent home and their bytes. */
  release?: { twins: number; diffs: number; diffBytes: number };
}

export function regionFigures(r: RegionReply): RegionFigures {
  const bySource = { cache: r.servedFromCache, segment: r.servedFromSegment, remote: r.servedFromRemote };
  const c = r.coherence;
  return {
    consistency: r.consistency,
    apps: r.apps,
    faults: bySource.cache + bySource.segment + bySource.remote,
    bySource,
    upgrades: r.writeUpgrades,
    readahead: r.prefetched,
    evictions: r.evictions,
    writebacks: r.writebacks,
    wireBytes: r.wireBytes,
    residentPages: r.residentPages,
    cacheLimitPages: r.cacheLimitPages,
    ...(r.consistency === 'release' ? { release: { twins: c.twins ?? 0, diffs: c.diffs ?? 0, diffBytes: c.diffBytes ?? 0 } } : {}),
  };
}
