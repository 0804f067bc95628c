// `naplus vm up|status|down|exec`: a local virtual cluster of real QEMU guests.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { parseSize } from '../src/config.js';
import { NaplusError } from '../src/errors.js';
import { agentExec, agentRequest } from '../src/vm/agent-client.js';
import { DEFAULT_GUEST_SOCKETS, vmDestroy, vmDown, vmUp } from '../src/vm/cluster.js';
import { guestNodeStats } from '../src/vm/guest-nodes.js';
import { INSTALL_COMMAND } from '../src/vm/host.js';
import { GUEST_BAR } from '../src/vm/qemu.js';
import { DEFAULT_VM_CLUSTER, agentAddress, nameFlag, ours, readVmState, type VmState } from '../src/vm/state.js';
import { formatTable } from './table.js';

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../examples');

function count(value: string, flag: string, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new NaplusError('EINVAL', `${flag} must be an integer from 1 to ${max}, got '${value}'`);
  return n;
}


function howToUse(state: VmState): string {
  const n = state.guests.length;
  const rows = state.guests.map((g) => ({ guest: g.name, host: g.host, address: g.address, node: g.nodeId, 'segment file on this machine': state.hosts.find((h) => h.name === g.host)!.segmentFile }));
  const ex = (file: string) => path.join(EXAMPLES, file);
  const nodes = state.configPath
    ? `naplus-mount running in each (cluster file ${state.configPath}), sockets at ${DEFAULT_GUEST_SOCKETS}, where apps attach by default`
    : `no nodes started (--no-nodes): each guest's ivshmem BAR2 is at ${GUEST_BAR}_wc`;
  return [
    `\nVirtual cluster '${state.name}' is up (${state.accel.toUpperCase()}): ${state.hosts.length} host(s), ${n} guest(s), ${nodes}.\n`,
    formatTable(rows),
    '\nThe guests see this machine\'s files read-only at the same paths (their writes stay in the guest). Run an app in a guest:',
    `  naplus vm exec${nameFlag(state.name)} g1 -- node ${ex('counter-table.js')} 0 1`,
    'One worker per guest, all sharing one memory:',
    `  for i in $(seq 1 ${n}); do naplus vm exec${nameFlag(state.name)} g$i -- node ${ex('matmul.js')} $((i - 1)) ${n} 256 & done; wait`,
    `Status and faults: naplus vm status${nameFlag(state.name)}    Stop and remove everything: naplus vm down${nameFlag(state.name)}`,
  ].join('\n');
}

async function status(opts: { name: string }): Promise<void> {
  const state = readVmState(opts.name);
  const rows = await Promise.all(state.guests.map(async (g) => {
    const row: Record<string, string | number> = { guest: g.name, host: g.host, address: g.address, qemu: ours(g.pid, state.dir) ? `running (pid ${g.pid})` : 'stopped' };
    try {
      const ping = await agentRequest<{ uptime: number }>(agentAddress(state, g.name), { op: 'ping' }, 5000);
      row.agent = `up ${Math.round(ping.uptime)} s`;
    } catch {
      row.agent = 'not answering';
      return row;
    }
    if (!state.configPath) return row;
    try {
      const s = await guestNodeStats<{ node: number; regions: Record<string, { apps: number; faults: number; servedFromSegment: number; servedFromRemote: number }>; peers: Record<string, { up: boolean }> }>(state, g.name, DEFAULT_GUEST_SOCKETS);
      const r = Object.values(s.regions);
      const peers = Object.values(s.peers);
      Object.assign(row, {
        node: s.node, links: `${peers.filter((p) => p.up).length}/${peers.length} up`, apps: r.reduce((a, x) => a + x.apps, 0), faults: r.reduce((a, x) => a + x.faults, 0),
        'from segment': r.reduce((a, x) => a + x.servedFromSegment, 0), 'from remote': r.reduce((a, x) => a + x.servedFromRemote, 0),
      });
    } catch (err) {
      row.node = `not answering (${(err as Error).message.split('\n')[0]})`;
    }
    return row;
  }));
  console.log(`Virtual cluster '${state.name}' (${state.accel.toUpperCase()}, kernel ${state.image.kernelPackage}), files in ${state.dir}\n`);
  console.log(formatTable(rows));
}

/** Runs `command` in `guest` with this process's stdio, and ends as the command ended (same code, same signal). */
async function exec(guest: string, command: string[], opts: { name: string; cwd?: string; env: string[] }): Promise<void> {
  const state = readVmState(opts.name);
  const env: Record<string, string> = {};
  for (const kv of opts.env) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(kv);
    if (!m) throw new NaplusError('EINVAL', `--env takes NAME=value, got '${kv}'`);
    env[m[1]!] = m[2]!;
  }
  const session = agentExec(agentAddress(state, guest), { op: 'exec', argv: command, cwd: path.resolve(opts.cwd ?? process.cwd()), env }, {
    stdout: (d) => process.stdout.write(d),
    stderr: (d) => process.stderr.write(d),
  });
  const forward = (signal: NodeJS.Signals) => session.signal(signal);
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, forward);
  process.stdin.on('data', (d: Buffer) => session.stdin(d));
  process.stdin.on('end', () => session.stdinEnd());
  process.stdin.on('error', () => session.stdinEnd());
  try {
    await session.started;
    const end = await session.exit;
    for (const s of signals) process.off(s, forward);
    process.stdin.destroy();
    // Let stdout drain before ending the way the command ended.
    process.stdout.write('', () => {
      if (end.signal) {
        process.kill(process.pid, end.signal as NodeJS.Signals);
        setTimeout(() => process.exit(128 + 1), 1000).unref(); // a signal this process ignores
      } else {
        process.exit(end.code ?? 1);
      }
    });
  } catch (err) {
    process.stdin.destroy();
    throw err;
  }
}

export function vmCommand(): Command {
  const vm = new Command('vm').description('a local virtual cluster of real QEMU guests: an ivshmem device per simulated host, guests on a bridge, naplus-mount in each (root)');
  const name = () => new Option('--name <name>', 'virtual cluster name').default(DEFAULT_VM_CLUSTER);
  vm.command('up')
    .description('build the guest image if needed (cached), boot the guests, start naplus-mount in each and link them')
    .addOption(name())
    .option('--hosts <n>', 'simulated hosts (one ivshmem segment each)', '2')
    .option('--guests-per-host <m>', 'guests (VMs) per host, each running one node', '2')
    .option('--memory <size>', 'RAM of each guest', '1G')
    .option('--size <size>', 'size of the region "data" the nodes share', '64M')
    .addOption(new Option('--accel <accel>', 'kvm, tcg, or auto (KVM where it works)').choices(['auto', 'kvm', 'tcg']).default('auto'))
    .option('--boot-timeout <seconds>', 'how long the guests may take to boot', '300')
    .option('--no-nodes', 'boot the guests without starting naplus-mount (to start your own, with a cluster file of your own)')
    .option('--keep', 'if something fails, leave the guests running to look at them (naplus vm down removes them)')
    .addHelpText('after', `
Needs root and QEMU (${INSTALL_COMMAND}); the first run fetches a
Debian kernel and busybox with apt-get download into a cache (~/.cache/naplus/vm, or NAPLUS_VM_CACHE).

Examples:
  naplus vm up                                  # 2 hosts x 2 guests
  naplus vm exec g1 -- node ${path.join(EXAMPLES, 'counter-table.js')} 0 1
  naplus vm up --hosts 1 --guests-per-host 3 --memory 768M --name small`)
    .action(async (o) => {
      const memory = parseSize(o.memory, '--memory');
      if (memory < 256 << 20) throw new NaplusError('EINVAL', `--memory must be at least 256M (Node needs room in the guest), got '${o.memory}'`);
      // Stopped while it works (Ctrl-C): what was made so far goes, unless --keep.
      const abort = (signal: NodeJS.Signals) => {
        if (!o.keep) vmDestroy(o.name);
        console.error(`\nnaplus vm up: ${signal}${o.keep ? '; leaving what was made (--keep)' : ', removed what was made'}`);
        process.exit(130);
      };
      process.once('SIGINT', abort).once('SIGTERM', abort);
      const state = await vmUp({
        name: o.name, hosts: count(o.hosts, '--hosts', 8), guestsPerHost: count(o.guestsPerHost, '--guests-per-host', 8), memoryMiB: Math.floor(memory / (1 << 20)),
        regionBytes: parseSize(o.size, '--size'), accel: o.accel, bootTimeoutMs: count(o.bootTimeout, '--boot-timeout', 3600) * 1000,
        startNodes: o.nodes !== false, keep: Boolean(o.keep), say: (l) => console.log(l),
      });
      console.log(howToUse(state));
    });
  vm.command('status')
    .description('the guests, their agents and their nodes (links, apps, faults by source)')
    .addOption(name())
    .action(status);
  vm.command('down')
    .description('stop every guest and remove the network, the segment files and the folder')
    .addOption(name())
    .action(async (o) => vmDown({ name: o.name, say: (l) => console.log(l) }));
  vm.command('exec')
    .description('run a command in a guest, with this terminal\'s stdio; exits as the command did')
    .argument('<guest>', 'guest name: g1, g2, ...')
    .argument('<command...>', 'the command and its arguments (put -- before it)')
    .addOption(name())
    .option('--cwd <dir>', 'working directory in the guest (default: this one, which the guest sees at the same path)')
    .option('--env <NAME=value>', 'set an environment variable (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .addHelpText('after', `
Examples:
  naplus vm exec g1 -- node ${path.join(EXAMPLES, 'matmul.js')} 0 1 64
  naplus vm exec g2 --env NAPLUS_SOCKET_DIR=/run/naplus -- sh -c 'cat /proc/cpuinfo | head'`)
    .action(async (guest: string, command: string[], o) => exec(guest, command, o));
  return vm;
}
