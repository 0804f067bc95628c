// One helper that starts a local cluster (real naplus-mount processes, real segments,
// loopback TCP) and real app processes for any test.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startNode, waitForLinks, writeLocalCluster, type LocalClusterFiles, type LocalClusterSpec, type RegionSpec, type RunningNode } from '../../src/local-cluster.js';

const APP = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/app.js');
let clusters = 0;

export interface TestCluster {
  dir: string;
  files: LocalClusterFiles;
  nodes: Map<number, RunningNode>;
  start(id: number, extraArgs?: string[]): Promise<RunningNode>;
  stopNode(id: number, signal?: NodeJS.Signals): Promise<number | null>;
  app(nodeId: number, region: string): Promise<TestApp>;
  /** Resolves once every running node has its links to all the others up. */
  linked(): Promise<void>;
  /** A node's log lines so far (running or not). */
  nodeLog(id: number): string[];
  close(): Promise<void>;
}

export interface TestApp {
  child: ChildProcess;
  hello: Record<string, any>;
  cmd(c: Record<string, unknown>): Promise<Record<string, any>>;
  /** Exit code, null when a signal ended it. */
  exited: Promise<number | null>;
  /** The signal that ended it, if one did. */
  signal: Promise<NodeJS.Signals | null>;
}

export interface ClusterOptions extends Pick<LocalClusterSpec, 'network' | 'transport' | 'segmentPrefix'> {
  hosts?: number;
  nodesPerHost?: number;
  regions: RegionSpec[];
  start?: boolean;
  nodeArgs?: string[];
}

export async function makeCluster(opts: ClusterOptions): Promise<TestCluster> {
  const name = `t${process.pid}x${clusters++}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-cluster-'));
  const files = await writeLocalCluster({
    name, dir, hosts: opts.hosts ?? 1, nodesPerHost: opts.nodesPerHost ?? 1, regions: opts.regions, network: opts.network, transport: opts.transport, segmentPrefix: opts.segmentPrefix,
  });
  const nodes = new Map<number, RunningNode>();
  const apps: TestApp[] = [];
  const cluster: TestCluster = {
    dir,
    files,
    nodes,
    async start(id, extraArgs = opts.nodeArgs ?? []) {
      const n = files.nodes.find((x) => x.id === id)!;
      const node = await startNode(files.configPath, id, n.socketDir, n.logPath, extraArgs, { netns: n.netns });
      nodes.set(id, node);
      return node;
    },
    async stopNode(id, signal = 'SIGTERM') {
      const node = nodes.get(id)!;
      nodes.delete(id);
      node.process.kill(signal);
      return node.exited;
    },
    linked() {
      return waitForLinks(files.nodes.filter((n) => nodes.has(n.id)).map((n) => n.socketDir));
    },
    nodeLog(id) {
      const file = files.nodes.find((x) => x.id === id)!.logPath;
      return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    },
    async app(nodeId, region) {
      const app = await startApp(files.nodes.find((x) => x.id === nodeId)!.socketDir, region);
      apps.push(app);
      return app;
    },
    async close() {
      for (const a of apps) a.child.kill('SIGKILL');
      await Promise.all([...nodes.keys()].map((id) => cluster.stopNode(id)));
      for (const s of files.segments) fs.rmSync(s, { force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  if (opts.start !== false) {
    try {
      for (const n of files.nodes) await cluster.start(n.id);
      await cluster.linked();
    } catch (err) {
      await cluster.close(); // the nodes that did start must not outlive the test
      throw err;
    }
  }
  return cluster;
}

/** Starts the scriptable app; `launch` may wrap its command line (to run it in a guest). */
export async function startApp(socketDir: string, region: string, launch: (argv: string[]) => string[] = (argv) => argv): Promise<TestApp> {
  const [cmd, ...args] = launch([process.execPath, APP, region, socketDir]);
  const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! });
  let onHello: (v: Record<string, any>) => void;
  const helloLine = new Promise<Record<string, any>>((resolve) => (onHello = resolve));
  const waiting = new Map<number, (v: Record<string, any>) => void>();
  lines.on('line', (l) => {
    const msg = JSON.parse(l);
    if (msg.id === undefined) return onHello(msg);
    waiting.get(msg.id)?.(msg.reply);
    waiting.delete(msg.id);
  });
  let gone: Record<string, any> | undefined;
  let onSignal: (s: NodeJS.Signals | null) => void;
  const signal = new Promise<NodeJS.Signals | null>((resolve) => (onSignal = resolve));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, sig) => {
    gone = { error: `app exited with ${code ?? sig}`, signal: sig };
    onHello(gone);
    for (const w of waiting.values()) w(gone);
    waiting.clear();
    onSignal(sig);
    resolve(code);
  }));
  const hello = await helloLine;
  let nextId = 1;
  return {
    child,
    hello,
    exited,
    signal,
    cmd(c) {
      if (gone) return Promise.resolve(gone);
      const id = nextId++;
      const reply = new Promise<Record<string, any>>((resolve) => waiting.set(id, resolve));
      child.stdin!.write(`${JSON.stringify({ ...c, id })}\n`);
      return reply;
    },
  };
}
