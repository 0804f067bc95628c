// Simulated hosts with a real network path between them: one network namespace per
// host, each joined by a veth pair to a bridge in a namespace of its own, with the
// host side's egress rate-shaped by `tc tbf` (this kernel has tbf and htb, no netem).
// Host h gets address 10.77.<id>.<h+1>; nodes of that host listen there. Unix sockets
// live in the file system, not in a namespace, so apps attach to nodes as usual.
import { execFileSync, spawnSync } from 'node:child_process';
import { NaplusError } from './errors.js';

export interface HostNetwork {
  /** Namespace of each host, in host order. */
  namespaces: string[];
  /** IPv4 address of each host. */
  addresses: string[];
  /** Removes every namespace (and with them the links). */
  destroy(): void;
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * The command line that runs `argv` in network namespace `ns` (unchanged without one).
 * `ip netns exec` execs the command, so the process keeps its pid and descriptors.
 */
export function inNamespace(ns: string | undefined, argv: string[]): string[] {
  return ns ? ['ip', 'netns', 'exec', ns, ...argv] : argv;
}

/** Why namespaces cannot be made here, or undefined when they can. */
export function namespacesUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  const probe = `naplus-probe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.status !== 0) return `ip netns add failed: ${(add.stderr || add.error?.message || '').trim()}`;
  const tbf = spawnSync('ip', ['netns', 'exec', probe, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'tbf', 'rate', '1gbit', 'burst', '256kb', 'latency', '10ms'], { encoding: 'utf8' });
  spawnSync('ip', ['netns', 'del', probe]);
  if (tbf.status !== 0) return `tc tbf is not available: ${(tbf.stderr || tbf.error?.message || '').trim()}`;
  return undefined;
}

/**
 * Makes `hosts` namespaces on one bridge. `rate` (e.g. "1gbit", "10gbit") shapes each
 * host's outgoing traffic; `id` (0-255) keeps concurrent networks apart.
 */
export function makeHostNetwork(prefix: string, hosts: number, options: { rate?: string; id?: number } = {}): HostNetwork {
  const id = options.id ?? process.pid % 250;
  const bridgeNs = `${prefix}-br`;
  const namespaces = Array.from({ length: hosts }, (_, h) => `${prefix}-h${h + 1}`);
  const addresses = namespaces.map((_, h) => `10.77.${id}.${h + 1}`);
  const destroy = () => {
    for (const ns of [...namespaces, bridgeNs]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  };
  try {
    ip(['netns', 'add', bridgeNs]);
    ip(['-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', bridgeNs, 'link', 'set', 'br0', 'up']);
    namespaces.forEach((ns, h) => {
      ip(['netns', 'add', ns]);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      // Created inside the host namespace, then one end moved to the bridge's.
      ip(['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${h}`]);
      ip(['-n', ns, 'link', 'set', `p${h}`, 'netns', bridgeNs]);
      ip(['-n', bridgeNs, 'link', 'set', `p${h}`, 'master', 'br0']);
      ip(['-n', bridgeNs, 'link', 'set', `p${h}`, 'up']);
      ip(['-n', ns, 'addr', 'add', `${addresses[h]}/24`, 'dev', 'eth0']);
      ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      if (options.rate) {
        execFileSync('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', options.rate, 'burst', '512kb', 'latency', '20ms'], { stdio: ['ignore', 'ignore', 'pipe'] });
      }
    });
  } catch (err) {
    destroy();
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new NaplusError('ENETUNREACH', `Could not build the host network: ${stderr || (err as Error).message}`);
  }
  return { namespaces, addresses, destroy };
}
