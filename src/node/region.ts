// One region as served by one node. Who does what:
// - the region's protocol (src/coherence, chosen by the cluster file) decides what this
//   node may do with each page and when that changes;
// - FaultIntake takes the apps' faults and resolves them as the protocol permits;
// - Mapper carries out what that means for each app's mapping (batched ioctls);
// - CacheStore holds the node's single cached copy (the memfd every app maps);
// - SegmentMasters reads and writes the master copies in this host's segment;
// - Evictor keeps the cache within its limit.
// This class assembles them and is the CacheMemory the protocol calls.
import type { UffdEvent } from '../uffd/index.js';
import type { RegionConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { CacheMemory, Grant, Homes, RegionProtocol } from '../coherence/protocol.js';
import type { Segment } from './segment.js';
import type { TraceLog } from './trace.js';
import { CacheStore } from './cache-store.js';
import { SegmentMasters } from './master-store.js';
import { Mapper, type AppLink } from './mapper.js';
import { FaultIntake, type IntakeCounters } from './fault-intake.js';
import { Evictor } from './evictor.js';

export type { AppLink } from './mapper.js';

/** Default largest readahead window, in pages. */
export const DEFAULT_READAHEAD = 64;

export interface RegionCounters extends IntakeCounters {
  /** Pages brought into the cache, faulted or read ahead, by source. */
  pagesFromSegment: number;
  pagesFromRemote: number;
  writeUpgrades: number;
  evictions: number;
  writebacks: number;
  wireBytes: number;
}

export class RegionService implements CacheMemory {
  readonly pageSize: number;
  readonly pages: number;
  readonly store: CacheStore;
  readonly masters: SegmentMasters;
  private readonly mapper: Mapper;
  private intake!: FaultIntake;
  private evictor!: Evictor;
  private readonly arrivals = { pagesFromSegment: 0, pagesFromRemote: 0, writeUpgrades: 0, wireBytes: 0 };
  private flushQueued = false;

  constructor(
    readonly config: RegionConfig,
    readonly nodeId: number,
    /** The host segment and this region's area offset in it. */
    segment: { store: Segment; offset: number },
    readonly cacheLimitPages: number,
    /** Largest readahead window in pages; 0 turns readahead off. */
    readonly maxReadahead: number,
    private readonly trace: TraceLog,
    private readonly log: Logger,
  ) {
    this.pageSize = config.pageSize;
    this.pages = config.size / config.pageSize;
    this.masters = new SegmentMasters(segment.store, segment.offset, segment.store.area(config.name).length, this.pageSize);
    this.store = new CacheStore(config.name, config.size, this.pageSize, this.masters);
    this.mapper = new Mapper(this.pageSize, (page, count) => {
      this.store.refill(page, count);
      log('warn', `pages ${page}..${page + count - 1} of region ${config.name} were punched out of its memfd by an app; they read as zeros now`);
    }, log);
  }

  /** Plugs in the region's protocol and the pages' homes; faults are served from then on. */
  useProtocol(protocol: RegionProtocol, homes: Homes): void {
    this.masters.placeBy(homes);
    this.intake = new FaultIntake({ name: this.config.name, pages: this.pages, pageSize: this.pageSize, consistency: this.config.consistency }, this.nodeId, protocol, homes, this.mapper, this.trace, this.log);
    this.evictor = new Evictor(this.cacheLimitPages, protocol, (page) => this.intake.busy(page));
  }

  get memfd(): CacheStore['memfd'] {
    return this.store.memfd;
  }

  get apps(): ReadonlyMap<number, AppLink> {
    return this.mapper.apps;
  }

  get residentPages(): number {
    return this.evictor.resident;
  }

  /** Waiting faults not yet granted, for tests and stats. */
  get waiting(): number {
    return this.intake.waiting;
  }

  get counters(): RegionCounters {
    return { ...this.intake.counters, ...this.arrivals, evictions: this.evictor.evictions, writebacks: this.masters.writes };
  }

  /** Handles one batch of events from an app's userfaultfd. */
  onEvents(app: AppLink, events: UffdEvent[]): void {
    this.intake.onEvents(app, events);
    this.flush();
  }

  /** Carries out pending work: pages into the memfd, then the mappings that show them. */
  private flush(): void {
    this.flushQueued = false;
    this.store.writeFills();
    this.mapper.flush();
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  // ---- effects the protocol carries out (CacheMemory) ----------------------------

  fillFromSegment(page: number): void {
    this.store.fill(page, undefined);
    this.scheduleFlush();
  }

  install(page: number, data: Uint8Array): void {
    this.store.fill(page, data);
    this.scheduleFlush();
  }

  copyOut(page: number): Uint8Array {
    return this.store.copyOut(page);
  }

  copyInto(page: number, into: Uint8Array): void {
    this.store.copyInto(page, into);
  }

  writeBack(page: number): void {
    this.masters.write(page, this.store.copyOut(page));
  }

  protect(page: number): void {
    this.store.writeFills();
    this.mapper.protect(page);
  }

  drop(page: number): void {
    this.flush(); // mapping work queued before this must not land after it
    this.store.drop(page);
    this.evictor.dropped();
  }

  granted(page: number, grant: Grant): void {
    if (grant.arrived) this.evictor.arrived(page);
    if (grant.upgrade) this.arrivals.writeUpgrades++;
    if (grant.source === 'segment') this.arrivals.pagesFromSegment++;
    if (grant.source === 'remote') this.arrivals.pagesFromRemote++;
    this.arrivals.wireBytes += grant.wireBytes;
    this.intake.granted(page, grant);
    this.scheduleFlush();
    this.evictor.enforce();
  }

  failed(page: number, reason: string): void {
    this.intake.failed(page, reason);
  }

  lose(page: number, reason: string): void {
    this.mapper.poison(page, reason);
  }

  // ---- apps ----------------------------------------------------------------------

  addApp(app: AppLink): void {
    this.mapper.add(app);
  }

  /** Forgets an app (it exited or detached): its faults no longer wait for anything. */
  removeApp(app: AppLink): void {
    this.mapper.remove(app);
    this.intake.forget(app);
  }

  close(): void {
    this.store.close();
  }
}
