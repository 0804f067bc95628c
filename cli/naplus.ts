#!/usr/bin/env node
// naplus: a local virtual cluster for trying Naplus without VMs, live node stats, and
// the demo.
import { Command, Option } from 'commander';
import { clusterDown, clusterStatus, clusterUp, DEFAULT_CLUSTER } from './local.js';
import { statsCommand } from './stats.js';
import { demo } from './demo.js';
import { vmCommand } from './vm.js';

const program = new Command()
  .name('naplus')
  .description('Distributed shared memory for virtual clusters: local clusters, stats and a demo.')
  .showHelpAfterError();

const cluster = program.command('cluster').description('a local virtual cluster on this machine: one /dev/shm segment per simulated host, nodes as background processes');

cluster
  .command('up')
  .description('generate a cluster file and secret, and start every node in the background')
  .option('--name <name>', 'cluster name', DEFAULT_CLUSTER)
  .option('--hosts <n>', 'simulated hosts (one /dev/shm segment each)', '2')
  .option('--nodes-per-host <m>', 'nodes (VMs) per host', '2')
  .option('--size <size>', 'size of the region "data"', '64M')
  .addOption(new Option('--placement <policy>', 'page homes').choices(['block', 'interleave']).default('block'))
  .option('--cache <size>', 'per-node cache limit (naplus-mount --cache)')
  .option('--dir <dir>', 'where the cluster file, sockets and logs go (default: a folder under the temp dir)')
  .addHelpText('after', `
Examples:
  naplus cluster up                              # 2 hosts x 2 nodes, region "data" of 64M
  naplus cluster up --hosts 1 --nodes-per-host 1 --size 1G --cache 256M
Then attach from an app with NAPLUS_SOCKET_DIR set to a node's socket directory (see 'naplus cluster status').`)
  .action(async (opts) => {
    await clusterUp(opts);
  });

cluster
  .command('status')
  .description('show the nodes of a local cluster, whether they run, and their apps and faults')
  .option('--name <name>', 'cluster name', DEFAULT_CLUSTER)
  .action(clusterStatus);

cluster
  .command('down')
  .description('stop every node cleanly (dirty pages go home) and remove the segments and files')
  .option('--name <name>', 'cluster name', DEFAULT_CLUSTER)
  .action(clusterDown);

program
  .command('stats')
  .description('counters of a running node: faults by source, cache, evictions, apps')
  .option('--node <socket>', 'the node\'s control socket or socket directory')
  .option('--name <name>', 'local cluster name (with --id)', DEFAULT_CLUSTER)
  .option('--id <id>', 'node id in the local cluster (default: every node)')
  .option('--watch [seconds]', 'refresh every N seconds (default 1) until Ctrl-C')
  .addHelpText('after', `
Examples:
  naplus stats --node /run/naplus
  naplus stats --id 2 --watch`)
  .action(statsCommand);

program
  .command('demo')
  .description('bring up a local cluster, multiply matrices on all its nodes at once, check the result, report, tear down')
  .option('--n <size>', 'matrix dimension', '256')
  .option('--hosts <n>', 'simulated hosts', '2')
  .option('--nodes-per-host <m>', 'nodes (VMs) per host', '2')
  .option('--svg <file>', 'where to write the heatmap of the recorded faults (default: a file in the temp dir)')
  .option('--keep', 'leave the cluster running afterwards')
  .addHelpText('after', `
Examples:
  naplus demo                                    # 2 hosts x 2 nodes, 256x256 matrices
  naplus demo --n 512 --svg faults.svg
  naplus demo --hosts 1 --nodes-per-host 1 --keep`)
  .action(demo);

program.addCommand(vmCommand());

program.parseAsync().catch((err) => {
  console.error(`naplus: ${(err as Error).message}`);
  process.exit(1);
});
