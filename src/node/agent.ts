// naplus-mount's engine: one node of a cluster. It maps its host's segment, serves each
// region's apps through a memfd and their userfaultfds, and answers control requests
// (stats, trace streaming) on `<socketDir>/control.sock`.
import fs from 'node:fs';
import path from 'node:path';
import { Userfaultfd } from '../uffd/index.js';
import { NaplusError } from '../errors.js';
import { checkHostPaths, findNode, formatSize, type ClusterConfig, type RegionConfig } from '../config.js';
import type { Logger } from '../log.js';
import { RegionLayout, planSegment, tableAreaName } from './layout.js';
import { SegmentHomeTable } from './home-table.js';
import { Segment } from './segment.js';
import { DEFAULT_READAHEAD, RegionService } from './region.js';
import { AttachServer } from './attach-server.js';
import { TraceLog } from './trace.js';
import { ControlServer } from './control-server.js';
import { prepareSocketDir } from './socket-dir.js';
import { Transport } from '../transport/index.js';
import { NodeCoherence, type Placement } from '../coherence/node-coherence.js';
import { SyncNode } from '../coherence/sync-node.js';
import type { Done } from '../coherence/sync-service.js';
import type { AppLink } from './region.js';
import { realClock } from './clock.js';
import { transportLinks } from './links.js';
import { SegmentDirectory } from './segment-directory.js';
import { SegmentNotices, SegmentVersions } from './segment-versions.js';
import { checkAtomic } from '../coherence/release/atomics.js';

/** Bytes of a transport page; every region's page size is a multiple of it. */
const WIRE_PAGE = 4096;
/**
 * How long a page granted to this node is kept before another node may take it: long
 * enough for the app whose fault was served to make its access (see cache.ts).
 */
const HOLD_MS = 0.2;
/** How long a clean stop waits for dirty pages to come home. */
const STOP_TIMEOUT_MS = 10_000;

export interface NodeOptions {
  config: ClusterConfig;
  nodeId: number;
  socketDir: string;
  /** Bytes of region data this node may cache (per region); past it pages are evicted. */
  cacheBytes?: number;
  /** Largest readahead window in pages (default DEFAULT_READAHEAD); 0 turns readahead off. */
  readaheadPages?: number;
  tracePath?: string;
  log: Logger;
}

export interface ServedRegion {
  index: number;
  service: RegionService;
  server: AttachServer;
}

export class NodeAgent {
  readonly regions = new Map<string, ServedRegion>();
  readonly trace: TraceLog;
  private control: ControlServer | undefined;
  private segment: Segment | undefined;
  private transport: Transport | undefined;
  private coherence: NodeCoherence | undefined;
  private stopping: Promise<void> | undefined;
  private sync!: SyncNode;
  readonly started = Date.now();

  private constructor(
    readonly options: NodeOptions,
    readonly host: string,
  ) {
    this.trace = new TraceLog(65536, options.tracePath);
  }

  static async start(options: NodeOptions): Promise<NodeAgent> {
    const { config, nodeId, log } = options;
    const me = findNode(config, nodeId);
    checkHostPaths(config, me.host);
    checkUserfaultfd();
    const agent = new NodeAgent(options, me.host);
    try {
      await agent.open();
    } catch (err) {
      await agent.stop('startup failed');
      throw err;
    }
    log('info', `node ${nodeId} of cluster ${config.cluster} on host ${me.host} ready; sockets in ${options.socketDir}`);
    return agent;
  }

  private async open(): Promise<void> {
    const { config, nodeId, socketDir, log } = this.options;
    const layouts = config.regions.map((r) => new RegionLayout(config, r));
    const hostIndex = config.hosts.findIndex((h) => h.name === this.host);
    prepareSocketDir(socketDir);
    const plan = planSegment(layouts, this.host);
    this.segment = Segment.open(config.hosts[hostIndex]!, plan, config.cluster, `hosts[${hostIndex}]`);
    log('info', `segment ${this.segment.path} ${this.segment.formatted ? 'formatted' : 'checked'} (${formatSize(plan.needed)} used)`);
    if (config.nodes.length > 1) this.transport = await this.startTransport();
    const services = layouts.map((layout) => {
      const region = layout.region;
      const cachePages = Math.max(16, Math.floor((this.options.cacheBytes ?? region.size) / region.pageSize));
      return new RegionService(
        region, nodeId,
        { store: this.segment!, offset: this.segment!.area(region.name).offset },
        cachePages, this.options.readaheadPages ?? DEFAULT_READAHEAD, this.trace, log,
      );
    });
    const nodes = config.nodes.map((n) => n.id);
    const t = config.transport;
    const links = transportLinks(nodeId, this.transport, log);
    // How long a node cut off may go on as if it were not. Declaring it lost took this
    // node peerTimeoutMs of silence; the node itself hears of it within about a heartbeat
    // (the transport tells it the session is gone, or its own silence is as long), and
    // if it is stopped, its apps' guardians fence them within a heartbeat of that. Three
    // heartbeats cover both, with one to spare.
    const quarantineMs = 3 * t.heartbeatMs;
    // Release consistency keeps page versions and this node's notices in the segment.
    const coresident = config.nodes.filter((n) => n.host === this.host).findIndex((n) => n.id === nodeId);
    const versions = layouts.map((l) => (l.region.consistency === 'release' ? new SegmentVersions(this.segment!, l.region.name) : undefined));
    const notices = layouts.map((l) => (l.region.consistency === 'release' ? new SegmentNotices(this.segment!, l.region.name, l.pages, l.noticeBytes, coresident) : undefined));
    this.coherence = new NodeCoherence(
      services.map((service, i) => ({
        pages: service.pages,
        pageSize: service.pageSize,
        slots: layouts[i]!.slots,
        hostOf: (n: number) => layouts[i]!.hostOfNodeId(n),
        placement: this.placement(layouts[i]!, i),
        protocol: service.config.consistency,
        memory: service,
        master: service.masters,
        directory: new SegmentDirectory(this.segment!, service.config.name, nodes, nodeId),
        versions: versions[i],
        notices: notices[i],
      })),
      {
        nodes, links, clock: realClock, wirePageSize: WIRE_PAGE, maxDataBytes: 1 << 20,
        holdMs: HOLD_MS, graceMs: t.peerTimeoutMs, quarantineMs, log,
      },
    );
    const notify = (app: number, message: string, data: unknown) => {
      for (const r of this.regions.values()) r.server.notify(app, message, data);
    };
    versions.forEach((v, i) => v?.placeBy(this.coherence!.topologies[i]!.homes));
    this.sync = new SyncNode(links, nodes, realClock, t.peerTimeoutMs, quarantineMs, log, notify, (done) => this.coherence!.release(done), this.coherence.losses, this.coherence.notices);
    const party = (app: AppLink) => ({ node: nodeId, app: app.id, pid: app.pid });
    services.forEach((service, index) => {
      const region = service.config;
      service.useProtocol(this.coherence!.protocols[index]!, this.coherence!.topologies[index]!.homes);
      // Apps judge the node as its peers do: a node silent for peerTimeoutMs is gone.
      const liveness = { heartbeatMs: t.heartbeatMs, timeoutMs: t.peerTimeoutMs };
      const identity = { cluster: config.cluster, host: this.host, local: layouts[index]!.homedOn(this.host), liveness };
      const server = new AttachServer(service, path.join(socketDir, `${region.name}.sock`), identity, log);
      server.handlers.set('stats', () => this.stats());
      // Lock and barrier names are cluster-wide, so one service serves every region.
      server.handlers.set('lock', (app, args) => promised((done) => this.sync.lock(party(app), String(args.name), done)));
      server.handlers.set('unlock', (app, args) => promised((done) => this.sync.unlock(party(app), String(args.name), done)));
      server.handlers.set('barrier', (app, args) => promised((done) => this.sync.barrier(party(app), String(args.name), Number(args.parties), done)));
      server.handlers.set('flush', (app) => promised((done) => this.sync.flush(party(app), done)));
      server.onAttach = (app) => this.sync.appAttached(party(app));
      server.handlers.set('consistency', () => region.consistency);
      server.handlers.set('atomic', (_app, args) => this.atomic(index, region, args));
      server.onDetach = (app) => this.sync.appGone(party(app));
      this.regions.set(region.name, { index, service, server });
      log('info', `region ${region.name} ready: ${formatSize(region.size)}, ${region.pageSize}-byte pages, cache ${formatSize(service.cacheLimitPages * region.pageSize)}`);
    });
    this.control = new ControlServer(path.join(socketDir, 'control.sock'), () => this.stats(), this.trace, log);
  }

  /** region.atomics in a release-consistent region: the operation at the word's home; its old value, as a decimal string. */
  private atomic(index: number, region: RegionConfig, args: Record<string, unknown>): Promise<string> {
    if (region.consistency !== 'release') {
      return Promise.reject(new NaplusError('ENOTSUP', `Region '${region.name}' runs sequential consistency: region.atomics are done in the app's own mapping there`));
    }
    const request = checkAtomic(args as Parameters<typeof checkAtomic>[0], region);
    return new Promise((resolve, reject) => this.coherence!.atomic(index, request, (err, old) => {
      if (err !== undefined) reject(new NaplusError('EPEERLOST', `Atomic ${request.op} at offset ${request.offset} of region '${region.name}' failed: ${err}`));
      else resolve(old!.toString());
    }));
  }

  /** Fixed homes from the cluster file, or first-touch with this node's table in the segment. */
  private placement(layout: RegionLayout, region: number): Placement {
    if (!layout.firstTouch) return { kind: 'static', home: layout.home, slot: layout.slot };
    const { config, nodeId } = this.options;
    const hosts = config.hosts.map((h) => h.name);
    const coresident = config.nodes.filter((n) => n.host === this.host);
    const table = this.segment!.area(tableAreaName(layout.region.name)).offset + coresident.findIndex((n) => n.id === nodeId) * layout.tableBytes;
    return {
      kind: 'first-touch',
      shape: { region, pages: layout.pages, nodes: config.nodes.map((n) => n.id), hostOf: (n) => layout.hostOfNodeId(n), hosts, poolSize: layout.poolSize },
      table: new SegmentHomeTable(this.segment!.mapping, table),
    };
  }

  /** Links to every other node of the cluster file (they come up as those nodes start). */
  private startTransport(): Promise<Transport> {
    const { config, nodeId, log } = this.options;
    const me = findNode(config, nodeId);
    const t = config.transport;
    const tls = t.tls && { key: fs.readFileSync(t.tls.key), cert: fs.readFileSync(t.tls.cert), ca: fs.readFileSync(t.tls.ca) };
    return Transport.start({
      cluster: config.cluster,
      nodeId,
      listen: me.listen,
      peers: config.nodes.filter((n) => n.id !== nodeId).map((n) => ({ id: n.id, host: n.listen.host, port: n.listen.port })),
      secret: config.secret,
      pageSize: WIRE_PAGE,
      tls,
      heartbeatMs: t.heartbeatMs,
      peerTimeoutMs: t.peerTimeoutMs,
      replayBufferBytes: t.replayBufferBytes,
      compress: t.compress,
      log,
    });
  }

  stats(): Record<string, unknown> {
    return {
      node: this.options.nodeId,
      host: this.host,
      cluster: this.options.config.cluster,
      uptimeMs: Date.now() - this.started,
      faultsTraced: this.trace.total,
      regions: Object.fromEntries(
        [...this.regions].map(([name, r]) => [
          name,
          {
            consistency: r.service.config.consistency,
            apps: r.service.apps.size, residentPages: r.service.residentPages, cacheLimitPages: r.service.cacheLimitPages,
            ...r.service.counters, coherence: this.coherence!.counters(r.index),
          },
        ]),
      ),
      peers: this.transport?.stats() ?? {},
      sync: this.sync.stats(),
    };
  }

  /** Clean stop: apps told and detached, dirty pages written home, everything closed. */
  stop(reason = 'node stopping'): Promise<void> {
    this.stopping ??= (async () => {
      this.control?.close();
      for (const r of this.regions.values()) r.server.close(reason);
      if (this.coherence) {
        const { flushed, unfinished } = await this.coherence.stop(STOP_TIMEOUT_MS);
        if (flushed > 0) this.options.log('info', `${flushed} dirty page(s) written home`);
        if (unfinished > 0) this.options.log('warn', `${unfinished} page(s) homed here did not come home from the nodes that held them dirty`);
      }
      await this.transport?.close();
      for (const r of this.regions.values()) r.service.close();
      this.segment?.close();
      await this.trace.close();
      this.options.log('info', `node ${this.options.nodeId} stopped (${reason})`);
    })();
    return this.stopping;
  }
}

/** A callback-style call as a promise. */
function promised(call: (done: Done) => void): Promise<void> {
  return new Promise((resolve, reject) => call((err) => (err ? reject(err) : resolve())));
}

/** Fails at startup, with the remedy, when apps here could not create a userfaultfd. */
function checkUserfaultfd(): void {
  try {
    Userfaultfd.open({ events: [] }).close();
  } catch (err) {
    throw new NaplusError((err as NaplusError).code ?? 'EPERM', `This node's apps could not use userfaultfd: ${(err as Error).message}`);
  }
}
