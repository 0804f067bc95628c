#!/usr/bin/env node
// naplus: a local virtual cluster for trying Naplus without VMs, live node stats, and
// the demo.
import { Command, Option } from 'commander';
import { clusterDown, clusterEnv, clusterRestart, clusterStatus, clusterUp, DEFAULT_CLUSTER } from './local.js';
import { checkClusterName } from './cluster-state.js';
import { statsCommand } from './stats.js';
import { demo } from './demo.js';
import { VERSION, runCommand } from './args.js';
import { vmCommand } from './vm.js';

const program = new Command()
  .name('naplus')
  .description('Distributed shared memory for virtual clusters: local clusters, stats and a demo.')
  .version(VERSION)
  .showHelpAfterError();

const nameOption = () => new Option('--name <name>', 'cluster name').default(DEFAULT_CLUSTER).argParser(checkClusterName);

const cluster = program.command('cluster').description('a local virtual cluster on this machine: one /dev/shm segment per simulated host, nodes as background processes');

cluster
  .command('up')
  .description('generate a cluster file and secret, and start every node in the background; on a cluster that exists, start its stopped nodes')
  .addOption(nameOption())
  .option('--hosts <n>', 'simulated hosts (one /dev/shm segment each)', '2')
  .option('--nodes-per-host <m>', 'nodes (VMs) per host', '2')
  .option('--size <size>', 'size of the region "data"', '64M')
  .addOption(new Option('--placement <policy>', 'where pages have their home').choices(['block', 'interleave', 'first-touch']).default('block'))
  .option('--cache <size>', 'per-node cache limit (naplus-mount --cache)')
  .addHelpText('after', `
The cluster file, secret, sockets and node logs go in a private directory
($XDG_RUNTIME_DIR/naplus/<name>, or naplus-<uid> in the temp dir).

Examples:
  npx naplus cluster up                          # 2 hosts x 2 nodes, region "data" of 64M
  npx naplus cluster up --hosts 1 --nodes-per-host 1 --size 1G --cache 256M
Then attach from an app with NAPLUS_SOCKET_DIR set to a node's socket directory:
  env $(npx naplus cluster env 1) node app.js`)
  .action(async (opts) => {
    await clusterUp(opts);
  });

cluster
  .command('status')
  .description('show the nodes of a local cluster, whether they run, and their apps and faults')
  .addOption(nameOption())
  .option('--json', 'print one JSON object instead of the table')
  .addHelpText('after', `
Exit status: 0 if every node runs, 3 if any does not, 1 if there is no such cluster.`)
  .action(clusterStatus);

cluster
  .command('env')
  .description("print the environment that attaches an app through a node: NAPLUS_SOCKET_DIR=<its socket directory>")
  .argument('<node>', 'node id')
  .addOption(nameOption())
  .addHelpText('after', `
Example:
  env $(npx naplus cluster env 2) node app.js     # app.js attaches through node 2`)
  .action(clusterEnv);

cluster
  .command('restart')
  .description('stop a node of a local cluster cleanly (if it runs) and start it again')
  .argument('<node>', 'node id')
  .addOption(nameOption())
  .action(clusterRestart);

cluster
  .command('down')
  .description('stop every node cleanly (dirty pages go home), remove the segments, sockets and cluster file; keep the node logs')
  .addOption(nameOption())
  .action(clusterDown);

program
  .command('stats')
  .description('counters of running nodes: faults by source, upgrades, readahead, cache, links')
  .option('--node <dir>', "a node's socket directory (its --socket-dir) or control socket")
  .option('--name <name>', `local cluster name (default: ${DEFAULT_CLUSTER})`, checkClusterName)
  .option('--id <id>', 'node id in the local cluster (default: every node)')
  .option('--json', 'print one JSON object (with --watch, one per line)')
  .option('--watch [seconds]', 'print again every N seconds (default 1) until Ctrl-C')
  .addHelpText('after', `
Without --node, --name or --id: the node of NAPLUS_SOCKET_DIR if it is set, else the
local cluster '${DEFAULT_CLUSTER}' if it is up, else /run/naplus. The exit status is 1 if a
node does not answer.

Examples:
  npx naplus stats
  npx naplus stats --node /run/naplus --json
  npx naplus stats --id 2 --watch`)
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
  npx naplus demo                                # 2 hosts x 2 nodes, 256x256 matrices
  npx naplus demo --n 512 --svg faults.svg
  npx naplus demo --hosts 1 --nodes-per-host 1 --keep`)
  .action(demo);

program.addCommand(vmCommand());

runCommand('naplus', program);
