// What one resolved fault looks like, wherever it is seen: the node records it, traces
// carry it, the CLI and the app-side API report on it. Types only, so every layer can
// name them without pulling in any code.

export type FaultKind = 'read' | 'write' | 'minor';
/** Where the page came from: the node's cache (no copy), its host's segment, another host. */
export type FaultSource = 'cache' | 'segment' | 'remote';

export interface FaultEvent {
  /** Wall-clock time of resolution, ms since the epoch (fractional). */
  t: number;
  node: number;
  region: string;
  /** pid of the faulting app. */
  app: number;
  page: number;
  kind: FaultKind;
  source: FaultSource;
  /** Time from the node reading the fault to resolving it, µs. */
  waitUs: number;
  /** Bytes that crossed the network for this fault (0 for local sources). */
  wireBytes: number;
  /** The region's consistency ('sequential' or 'release'; under release a write fault on a page held here makes a twin, no message). */
  consistency?: 'sequential' | 'release';
}
