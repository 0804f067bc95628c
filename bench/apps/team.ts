// What a kernel's worker program gets to work with: its rank among the workers, a
// clock that both versions start and stop at the same points, and either the shared
// region (Naplus) or a mesh of TCP connections (message passing).
import type { Region } from '../../src/index.js';
import type { Mesh } from './mesh.js';

export type Version = 'naplus' | 'mp';

export interface Team {
  rank: number;
  workers: number;
  /** Meets every worker, then starts rank 0's clock: the parallel phase begins. */
  begin(): Promise<void>;
  /** Stops rank 0's clock: the result is available (in the region, or at rank 0). */
  end(): void;
}

export interface NaplusTeam extends Team {
  region: Region;
  /** The run's blocks in the region, as the kernel's `blocks()` sized them. */
  blocks: Float64Array[];
  barrier(name: string): Promise<void>;
}

export interface MpTeam extends Team {
  mesh: Mesh;
}

export interface Kernel<P> {
  /** Bytes of each block the Naplus version keeps in the region. */
  blocks(params: P, workers: number, pageSize: number): number[];
  /** The result computed in one process, to check every run against. */
  sequential(params: P): Float64Array;
  /** Each returns the result at rank 0 (other ranks return undefined). */
  naplus(team: NaplusTeam, params: P): Promise<Float64Array | undefined>;
  mp(team: MpTeam, params: P): Promise<Float64Array | undefined>;
}

/** The clock of a team: `meet` is the version's own barrier. */
export function clock(meet: () => Promise<void>): { begin(): Promise<void>; end(): void; ms(): number } {
  let t0 = 0n;
  let t1 = 0n;
  return {
    async begin() {
      await meet();
      t0 = process.hrtime.bigint();
    },
    end() {
      t1 = process.hrtime.bigint();
    },
    ms: () => Number(t1 - t0) / 1e6,
  };
}
