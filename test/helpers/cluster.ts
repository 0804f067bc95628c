// One helper that starts a local cluster (real naplus-mount processes, real segments,
// loopback TCP) and real app processes for any test.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startNode, writeLocalCluster, type LocalClusterFiles, type RegionSpec, type RunningNode } from '../../src/local-cluster.js';

const APP = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/app.js');
let clusters = 0;

export interface TestCluster {
  dir: string;
  files: LocalClusterFiles;
  nodes: Map<number, RunningNode>;
  start(id: number, extraArgs?: string[]): Promise<RunningNode>;
  stopNode(id: number, signal?: NodeJS.Signals): Promise<number | null>;
  app(nodeId: number, region: string): Promise<TestApp>;
  close(): Promise<void>;
}

export interface TestApp {
  child: ChildProcess;
  hello: Record<string, any>;
  cmd(c: Record<string, unknown>): Promise<Record<string, any>>;
  exited: Promise<number | null>;
}

export async function makeCluster(opts: { hosts?: number; nodesPerHost?: number; regions: RegionSpec[]; start?: boolean; nodeArgs?: string[] }): Promise<TestCluster> {
  const name = `t${process.pid}x${clusters++}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-cluster-'));
  const files = await writeLocalCluster({ name, dir, hosts: opts.hosts ?? 1, nodesPerHost: opts.nodesPerHost ?? 1, regions: opts.regions });
  const nodes = new Map<number, RunningNode>();
  const apps: TestApp[] = [];
  const cluster: TestCluster = {
    dir,
    files,
    nodes,
    async start(id, extraArgs = opts.nodeArgs ?? []) {
      const n = files.nodes.find((x) => x.id === id)!;
      const node = await startNode(files.configPath, id, n.socketDir, n.logPath, extraArgs);
      nodes.set(id, node);
      return node;
    },
    async stopNode(id, signal = 'SIGTERM') {
      const node = nodes.get(id)!;
      nodes.delete(id);
      node.process.kill(signal);
      return node.exited;
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
  if (opts.start !== false) for (const n of files.nodes) await cluster.start(n.id);
  return cluster;
}

export async function startApp(socketDir: string, region: string): Promise<TestApp> {
  const child = spawn(process.execPath, [APP, region, socketDir], { stdio: ['pipe', 'pipe', 'inherit'] });
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
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    onHello({ error: `app exited with ${code}` });
    for (const w of waiting.values()) w({ error: `app exited with ${code}` });
    waiting.clear();
    resolve(code);
  }));
  const hello = await helloLine;
  let nextId = 1;
  return {
    child,
    hello,
    exited,
    cmd(c) {
      const id = nextId++;
      const reply = new Promise<Record<string, any>>((resolve) => waiting.set(id, resolve));
      child.stdin!.write(`${JSON.stringify({ ...c, id })}\n`);
      return reply;
    },
  };
}
