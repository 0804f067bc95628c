// The cluster a fault-injection run works on, and the handles the fault kinds use: a
// 2-host x 2-node local cluster (test/helpers/cluster.ts), hosts in network namespaces
// behind tbf-shaped veth links where that is possible (src/netns.ts), loopback
// otherwise; segments on a tmpfs of their own (disk.ts) where root can mount one. It
// keeps every node's state (up, down, stopped) and life (one more each time a node comes
// back), tells its listener when a node fails or comes back, and restarts a node that
// exits without being told to (a crash), which it reports.
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, type ClusterConfig } from '../../src/config.js';
import { waitForLinks } from '../../src/local-cluster.js';
import { makeHostNetwork, namespacesUnavailable, type HostNetwork } from '../../src/netns.js';
import { makeCluster, type TestCluster } from '../helpers/cluster.js';
import { SegmentDisk } from './disk.js';

export interface EnvOptions {
  hosts: number;
  nodesPerHost: number;
  regionBytes: number;
  heartbeatMs: number;
  peerTimeoutMs: number;
  /** Try network namespaces (root, ip netns, tc tbf); loopback when false or impossible. */
  namespaces: boolean;
  log(line: string): void;
}

export type NodeState = 'up' | 'down' | 'stopped';

/** What the workload hears from the environment. */
export interface EnvListener {
  /** `node` failed at `at` because of fault `kind`; its apps must be told by `deadline`. */
  failed(node: number, at: number, deadline: number, kind: string): void;
  /** The apps of failed node `node` must now be told by `deadline` at the latest. */
  tellBy(node: number, deadline: number): void;
  /** `node` exited on its own. */
  crashed(node: number, at: number, detail: string): void;
}

/**
 * How soon an app must be told once its node is gone (its process has exited, so the
 * app's socket to it is closed) or knows it was frozen (SIGCONT): the app hears at its
 * next event-loop turn, which comes every stretch of 25 ms; the rest is scheduling slack.
 */
export const PROMPT_MS = 500;
/**
 * Scheduling slack on a loaded 2-core machine, added to every deadline derived from the
 * product's timeouts: a deadline is judged on timestamps taken by processes that may
 * have waited that long for a CPU.
 */
export const SLACK_MS = 500;
/** How long a node that crashed stays down before it is restarted (and the step between tries). */
const CRASH_RESTART_MS = 500;
const RESTART_ATTEMPTS = 10;
const RELINK_TIMEOUT_MS = 20_000;

export class FaultEnv {
  private readonly state = new Map<number, NodeState>();
  private readonly lives = new Map<number, number>();
  /** Node exits the environment caused (SIGKILL, teardown): not crashes. */
  private readonly expectedExit = new Set<number>();
  private readonly stoppedSpans = new Map<number, Array<[number, number]>>();
  private readonly stoppedSince = new Map<number, number>();
  private closing = false;
  listener: EnvListener | undefined;

  private constructor(
    readonly options: EnvOptions,
    readonly cluster: TestCluster,
    readonly config: ClusterConfig,
    readonly network: HostNetwork | undefined,
    /** Why namespaces are not used, when they are not. */
    readonly networkUnavailable: string | undefined,
    readonly disk: SegmentDisk | undefined,
    readonly diskUnavailable: string | undefined,
  ) {}

  static async create(options: EnvOptions): Promise<FaultEnv> {
    const tag = `nf${process.pid % 100000}`;
    const networkUnavailable = options.namespaces ? namespacesUnavailable() : '--loopback was given';
    const diskUnavailable = SegmentDisk.unavailable();
    let network: HostNetwork | undefined;
    let disk: SegmentDisk | undefined;
    try {
      if (!networkUnavailable) network = makeHostNetwork(tag, options.hosts, { rate: '1gbit' });
      if (!diskUnavailable) disk = SegmentDisk.mount(`naplus-faults-${process.pid}`);
      const cluster = await makeCluster({
        hosts: options.hosts, nodesPerHost: options.nodesPerHost, network, segmentPrefix: disk && path.join(disk.dir, 'segment'), start: false,
        regions: [{ name: 'data', size: options.regionBytes, placement: 'block' }],
        transport: { heartbeatMs: options.heartbeatMs, peerTimeoutMs: options.peerTimeoutMs },
      });
      const config = loadConfig(cluster.files.configPath);
      disk?.fit(config.hosts.reduce((n, h) => n + h.segment.size, 0));
      const env = new FaultEnv(options, cluster, config, network, networkUnavailable, disk, diskUnavailable);
      for (const n of cluster.files.nodes) await env.start(n.id);
      if (!(await env.whole())) throw new Error('the cluster did not link up');
      return env;
    } catch (err) {
      disk?.unmount();
      network?.destroy();
      throw err;
    }
  }

  get nodeIds(): number[] {
    return this.cluster.files.nodes.map((n) => n.id);
  }

  nodeFile(id: number): (typeof this.cluster.files.nodes)[number] {
    return this.cluster.files.nodes.find((n) => n.id === id)!;
  }

  /** The address a node listens at (host:port). */
  listenOf(id: number): string {
    const { host, port } = this.config.nodes.find((n) => n.id === id)!.listen;
    return `${host}:${port}`;
  }

  stateOf(id: number): NodeState {
    return this.state.get(id) ?? 'down';
  }

  lifeOf(id: number): number {
    return this.lives.get(id) ?? 0;
  }

  pidOf(id: number): number | undefined {
    return this.cluster.nodes.get(id)?.pid;
  }

  /** Nodes that are up, in id order. */
  upNodes(): number[] {
    return this.nodeIds.filter((id) => this.stateOf(id) === 'up');
  }

  /** Milliseconds of [from, to] during which `node` was stopped (SIGSTOP) by a fault. */
  stoppedWithin(node: number, from: number, to: number): number {
    let ms = 0;
    const spans = [...(this.stoppedSpans.get(node) ?? [])];
    if (this.stateOf(node) === 'stopped') spans.push([this.stoppedSince.get(node)!, Infinity]);
    for (const [a, b] of spans) ms += Math.max(0, Math.min(b, to) - Math.max(a, from));
    return ms;
  }

  private async start(id: number): Promise<void> {
    const node = await this.cluster.start(id);
    this.expectedExit.delete(id);
    this.state.set(id, 'up');
    this.lives.set(id, this.lifeOf(id) + 1);
    void node.exited.then((code) => {
      if (this.expectedExit.has(id) || this.closing || this.cluster.nodes.get(id) !== node) return;
      this.onCrash(id, `exit code ${code}; its log ends: ${node.log().slice(-4).map((l) => l.trim()).join(' | ')}`);
    });
  }

  /**
   * Restarts a node that is down (same segment); resolves once it answers. A start that
   * fails (its log says why) is tried again, a little later each time.
   */
  async restart(id: number): Promise<void> {
    for (let attempt = 1; this.stateOf(id) === 'down' && !this.closing; attempt++) {
      try {
        await this.start(id);
      } catch (err) {
        this.options.log(`node ${id} did not start (attempt ${attempt}): ${(err as Error).message.split('\n').slice(0, 2).join(' ')}`);
        if (attempt === RESTART_ATTEMPTS) throw err;
        await new Promise((r) => setTimeout(r, CRASH_RESTART_MS * attempt));
      }
    }
  }

  /**
   * SIGKILL: the node's apps must be told as soon as it is gone (PROMPT_MS after its exit
   * is seen: on a loaded machine a killed process may take a while to die and close its
   * sockets).
   */
  async kill(id: number, kind: string): Promise<void> {
    const node = this.cluster.nodes.get(id)!;
    this.expectedExit.add(id);
    this.state.set(id, 'down');
    this.listener?.failed(id, Date.now(), Infinity, kind);
    node.process.kill('SIGKILL');
    this.cluster.nodes.delete(id);
    await node.exited;
    this.listener?.tellBy(id, Date.now() + PROMPT_MS);
  }

  /**
   * SIGSTOP: once the node's peers have declared it lost and forgotten its copies
   * (peerTimeoutMs plus two heartbeats), its apps' mapped pages may be stale; by then they
   * must have been told.
   */
  stop(id: number, kind: string): void {
    const at = Date.now();
    this.state.set(id, 'stopped');
    this.stoppedSince.set(id, at);
    this.listener?.failed(id, at, at + this.options.peerTimeoutMs + 2 * this.options.heartbeatMs + SLACK_MS, kind);
    this.cluster.nodes.get(id)!.process.kill('SIGSTOP');
  }

  /** SIGCONT: the node knows it was frozen the moment it runs, so its apps must hear at once. */
  cont(id: number): void {
    this.cluster.nodes.get(id)!.process.kill('SIGCONT');
    const at = Date.now();
    const spans = this.stoppedSpans.get(id) ?? [];
    spans.push([this.stoppedSince.get(id)!, at]);
    this.stoppedSpans.set(id, spans);
    this.stoppedSince.delete(id);
    this.state.set(id, 'up');
    this.lives.set(id, this.lifeOf(id) + 1); // apps attached from now on are of its new life
    this.listener?.tellBy(id, at + PROMPT_MS);
  }

  private onCrash(id: number, detail: string): void {
    const at = Date.now();
    this.state.set(id, 'down');
    this.cluster.nodes.delete(id);
    this.listener?.crashed(id, at, detail);
    void this.restartAfterCrash(id);
  }

  private async restartAfterCrash(id: number): Promise<void> {
    await new Promise((r) => setTimeout(r, CRASH_RESTART_MS));
    await this.restart(id).catch(() => undefined); // still down: the run's end reports it
  }

  /** Resolves true once every node is up and linked to all the others, false after the timeout. */
  async whole(timeoutMs = RELINK_TIMEOUT_MS): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !this.closing) {
      if (this.upNodes().length === this.nodeIds.length) {
        const dirs = this.cluster.files.nodes.map((n) => n.socketDir);
        const left = deadline - Date.now();
        // A node between lives makes waitForLinks fail at once: ask again.
        const linked = waitForLinks(dirs, left).then(() => true, () => false);
        const late = new Promise<false>((r) => setTimeout(() => r(false), left).unref());
        if (await Promise.race([linked, late])) return true;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  /** The last log lines of a node, for reports. */
  nodeLog(id: number, lines = 5): string[] {
    return this.cluster.nodeLog(id).slice(-lines);
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const id of this.nodeIds) if (this.stateOf(id) === 'stopped') this.cluster.nodes.get(id)?.process.kill('SIGCONT');
    for (const id of this.nodeIds) this.expectedExit.add(id);
    // A node that does not stop on SIGTERM must not keep the run from ending.
    const nodes = [...this.cluster.nodes.values()];
    const killer = setTimeout(() => nodes.forEach((n) => n.process.kill('SIGKILL')), 15_000);
    await this.cluster.close();
    clearTimeout(killer);
    this.disk?.unmount();
    this.network?.destroy();
  }

  /** Undoes what close() would, synchronously, on the way out of an aborted run. */
  abort(): void {
    this.closing = true;
    for (const n of this.cluster.nodes.values()) n.process.kill('SIGKILL');
    for (const s of this.cluster.files.segments) fs.rmSync(s, { force: true });
    this.disk?.unmount();
    this.network?.destroy();
    fs.rmSync(this.cluster.dir, { recursive: true, force: true });
  }
}
