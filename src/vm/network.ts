// The guests' network: a network namespace of the cluster's own, holding a bridge and
// one tap device per guest (QEMU, started in the namespace, opens its guest's tap).
// Guests get static addresses on 10.78.0.0/24; the namespace's side of the bridge is
// 10.78.0.1, where the gateway (gateway.ts) reaches the agents from. Since all of it
// is inside the namespace, every cluster may use the same addresses, and deleting the
// namespace removes the bridge and the taps at once, whatever state they are in.
import { execFileSync, spawnSync } from 'node:child_process';
import { NaplusError } from '../errors.js';

export const SUBNET_PREFIX = '10.78.0';
const BRIDGE = 'br0';

/** Address (with prefix length) of guest number `n` (1-based). */
export const guestAddress = (n: number) => `${SUBNET_PREFIX}.${10 + n}`;
export const tapName = (guest: string) => `tap-${guest}`;

function ip(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new NaplusError('ENETUNREACH', `Could not set up the guests' network (ip ${args.join(' ')}): ${stderr || (err as Error).message}`);
  }
}

export function namespaceExists(ns: string): boolean {
  return spawnSync('ip', ['netns', 'pids', ns], { stdio: 'ignore' }).status === 0;
}

/** Makes namespace `ns` with the bridge and a tap for each of `guests`. */
export function createNetwork(ns: string, guests: string[]): void {
  try {
    ip(['netns', 'add', ns]);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    ip(['-n', ns, 'link', 'add', BRIDGE, 'type', 'bridge']);
    ip(['-n', ns, 'addr', 'add', `${SUBNET_PREFIX}.1/24`, 'dev', BRIDGE]);
    ip(['-n', ns, 'link', 'set', BRIDGE, 'up']);
    for (const g of guests) {
      ip(['-n', ns, 'tuntap', 'add', 'dev', tapName(g), 'mode', 'tap']);
      ip(['-n', ns, 'link', 'set', tapName(g), 'master', BRIDGE]);
      ip(['-n', ns, 'link', 'set', tapName(g), 'up']);
    }
  } catch (err) {
    destroyNetwork(ns);
    throw err;
  }
}

/** Deletes the namespace (with its bridge and taps); nothing if it is not there. */
export function destroyNetwork(ns: string): void {
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

