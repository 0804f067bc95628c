// The figures of a fault trace: what faulted, where pages came from, how long apps
// waited, and which pages were hot or moved between nodes.
import type { FaultEvent, FaultKind, FaultSource } from './fault-event.js';
import { KINDS, SOURCES } from './events.js';

export interface Share {
  count: number;
  /** Of all events, 0-100. */
  percent: number;
}

/** Nearest-rank percentiles of a set of wait times, µs. */
export interface WaitFigures {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface PageFigures {
  region: string;
  page: number;
  faults: number;
  /** Nodes that faulted the page, ascending. */
  nodes: number[];
  meanWaitUs: number;
  /** Faults on the page from another node than the page's previous fault, in time order. */
  moves: number;
}

export interface TraceFigures {
  events: number;
  /** ms since the epoch of the first and last event. */
  start: number;
  end: number;
  nodes: number[];
  regions: string[];
  apps: number;
  byKind: Record<FaultKind, Share>;
  bySource: Record<FaultSource, Share>;
  /** Over all events, and per source (null where a source has no events). */
  waitUs: { all: WaitFigures } & Record<FaultSource, WaitFigures | null>;
  wireBytes: number;
  /** Top pages by faults. */
  hottest: PageFigures[];
  /** Top pages by moves, only pages that moved at all. */
  pingPong: PageFigures[];
}

/** The value at rank ceil(p/100 · n) of an ascending, non-empty sample (nearest-rank). */
function percentile(ascending: ArrayLike<number>, p: number): number {
  return ascending[Math.max(0, Math.ceil((p / 100) * ascending.length) - 1)]!;
}

function waitFigures(waits: number[]): WaitFigures | null {
  if (waits.length === 0) return null;
  const s = Float64Array.from(waits).sort();
  return { count: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s[s.length - 1]! };
}

function shares<K extends string>(keys: readonly K[], events: FaultEvent[], of: (e: FaultEvent) => K): Record<K, Share> {
  const counts = Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
  for (const e of events) counts[of(e)]++;
  return Object.fromEntries(keys.map((k) => [k, { count: counts[k], percent: (100 * counts[k]) / events.length }])) as Record<K, Share>;
}

interface PageTally {
  region: string;
  page: number;
  faults: number;
  nodes: Set<number>;
  waitSum: number;
  moves: number;
  lastNode: number;
}

/** Figures of a non-empty trace whose events are in time order; `top` bounds both page lists. */
export function analyze(events: FaultEvent[], top: number): TraceFigures {
  const pages = new Map<string, PageTally>();
  const waits: Record<FaultSource, number[]> = { cache: [], segment: [], remote: [] };
  let wireBytes = 0;
  for (const e of events) {
    waits[e.source].push(e.waitUs);
    wireBytes += e.wireBytes;
    const key = `${e.region}\0${e.page}`;
    let p = pages.get(key);
    if (!p) pages.set(key, (p = { region: e.region, page: e.page, faults: 0, nodes: new Set(), waitSum: 0, moves: 0, lastNode: e.node }));
    if (e.node !== p.lastNode) p.moves++;
    p.lastNode = e.node;
    p.faults++;
    p.waitSum += e.waitUs;
    p.nodes.add(e.node);
  }
  const all = [...pages.values()].map((p): PageFigures => ({
    region: p.region, page: p.page, faults: p.faults, nodes: [...p.nodes].sort((a, b) => a - b), meanWaitUs: p.waitSum / p.faults, moves: p.moves,
  }));
  const byPlace = (a: PageFigures, b: PageFigures) => (a.region < b.region ? -1 : a.region > b.region ? 1 : a.page - b.page);
  return {
    events: events.length,
    start: events[0]!.t,
    end: events[events.length - 1]!.t,
    nodes: [...new Set(events.map((e) => e.node))].sort((a, b) => a - b),
    regions: [...new Set(events.map((e) => e.region))].sort(),
    apps: new Set(events.map((e) => `${e.node}:${e.app}`)).size,
    byKind: shares(KINDS, events, (e) => e.kind),
    bySource: shares(SOURCES, events, (e) => e.source),
    waitUs: { all: waitFigures(events.map((e) => e.waitUs))!, cache: waitFigures(waits.cache), segment: waitFigures(waits.segment), remote: waitFigures(waits.remote) },
    wireBytes,
    hottest: [...all].sort((a, b) => b.faults - a.faults || byPlace(a, b)).slice(0, top),
    pingPong: all.filter((p) => p.moves > 0).sort((a, b) => b.moves - a.moves || b.faults - a.faults || byPlace(a, b)).slice(0, top),
  };
}
