// `naplus stats`: live counters of running nodes.
import { controlRequest } from '../src/control-client.js';
import { formatTable } from '../bench/lib/report.js';
import { readState } from './local.js';
import type { PeerStats } from '../src/transport/index.js';

interface RegionStats {
  apps: number; faults: number; minor: number; servedFromSegment: number; servedFromRemote: number;
  writeUpgrades: number; evictions: number; writebacks: number; residentPages: number; cacheLimitPages: number; prefetched: number;
  consistency: string; coherence: { twins?: number; diffs?: number; diffBytes?: number };
}

async function snapshot(targets: Array<{ label: string; socket: string }>): Promise<string> {
  const rows = [];
  for (const t of targets) {
    try {
      const s = await controlRequest<{ node: number; host: string; regions: Record<string, RegionStats>; peers: Record<string, PeerStats> }>(t.socket, 'stats');
      const peers = Object.values(s.peers);
      const mib = (k: 'bytesOut' | 'bytesIn') => (peers.reduce((n, p) => n + p[k], 0) / (1 << 20)).toFixed(1);
      for (const [region, r] of Object.entries(s.regions)) {
        rows.push({
          node: s.node, host: s.host, region, apps: r.apps, faults: r.faults, 'minor (no copy)': r.minor,
          'from segment': r.servedFromSegment, 'from remote': r.servedFromRemote, upgrades: r.writeUpgrades,
          prefetched: r.prefetched, evictions: r.evictions, writebacks: r.writebacks,
          cache: `${r.residentPages}/${r.cacheLimitPages} pages`,
          links: `${peers.filter((p) => p.up).length}/${peers.length} up`, 'MiB out/in': `${mib('bytesOut')}/${mib('bytesIn')}`,
          consistency: r.consistency,
          'twins/diffs (KiB)': r.consistency === 'release' ? `${r.coherence.twins}/${r.coherence.diffs} (${Math.round((r.coherence.diffBytes ?? 0) / 1024)})` : '-',
        });
      }
    } catch (err) {
      rows.push({ node: t.label, error: (err as Error).message });
    }
  }
  return formatTable(rows);
}

export async function statsCommand(opts: { node?: string; name: string; id?: string; watch?: string | boolean }): Promise<void> {
  const targets = opts.node
    ? [{ label: opts.node, socket: opts.node }]
    : readState(opts.name).nodes.filter((n) => opts.id === undefined || String(n.id) === opts.id).map((n) => ({ label: String(n.id), socket: n.socketDir }));
  if (targets.length === 0) throw new Error(`No node ${opts.id} in local cluster '${opts.name}'`);
  if (opts.watch === undefined) {
    console.log(await snapshot(targets));
    return;
  }
  const seconds = opts.watch === true ? 1 : Number(opts.watch);
  if (!(seconds > 0)) throw new Error(`--watch takes a number of seconds, got '${opts.watch}'`);
  for (;;) {
    const table = await snapshot(targets);
    process.stdout.write(`\x1b[2J\x1b[H${new Date().toISOString()}  (every ${seconds}s, Ctrl-C to stop)\n\n${table}\n`);
    await new Promise((r) => setTimeout(r, seconds * 1000));
  }
}
