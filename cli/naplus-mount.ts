#!/usr/bin/env node
// naplus-mount: runs one Naplus node in the foreground.
import { Command, Option } from 'commander';
import { loadConfig, parseSize } from '../src/config.js';
import { NodeAgent } from '../src/node/agent.js';
import { DEFAULT_SOCKET_DIR } from '../src/client/attach.js';
import { LOG_LEVELS, makeLogger, type LogLevel } from '../src/log.js';

const program = new Command()
  .name('naplus-mount')
  .description('Run one Naplus node: join the cluster, map this host\'s segment, and serve the regions to local apps.')
  .requiredOption('-c, --cluster <file>', 'cluster file (JSON) shared by every node')
  .requiredOption('-n, --node <id>', 'this node\'s id in the cluster file')
  .option('--cache <size>', 'bytes of each region this node may cache (e.g. 256M); past it clean pages are dropped and dirty ones written home')
  .option('--readahead <pages>', 'largest window of pages fetched ahead of sequential read faults (0 turns readahead off)', '64')
  .option('--socket-dir <dir>', 'where apps find the region sockets and the control socket', process.env.NAPLUS_SOCKET_DIR ?? DEFAULT_SOCKET_DIR)
  .option('--trace <file>', 'append every resolved fault as a JSON line to this file')
  .addOption(new Option('--log-level <level>', 'least severe level logged').choices(LOG_LEVELS).default('info'))
  .addHelpText('after', `
Examples:
  naplus-mount --cluster /etc/naplus/cluster.json --node 1
  naplus-mount -c cluster.json -n 2 --cache 512M --socket-dir /tmp/naplus-2 --trace faults.jsonl

Apps attach with attach('<region>', { socketDir }) or NAPLUS_SOCKET_DIR=<dir>.
SIGINT/SIGTERM stop the node cleanly: apps are told, dirty pages go home.`);

program.parse();
const opts = program.opts<{ cluster: string; node: string; cache?: string; readahead: string; socketDir: string; trace?: string; logLevel: LogLevel }>();
const nodeId = Number(opts.node);
const log = makeLogger(`node ${opts.node}`, opts.logLevel);

try {
  if (!Number.isInteger(nodeId) || nodeId < 1) throw new Error(`--node must be a positive integer, got '${opts.node}'`);
  const readahead = Number(opts.readahead);
  if (!Number.isInteger(readahead) || readahead < 0 || readahead > 512) throw new Error(`--readahead must be an integer from 0 to 512 (pages), got '${opts.readahead}'`);
  const config = loadConfig(opts.cluster);
  const agent = await NodeAgent.start({
    config,
    nodeId,
    socketDir: opts.socketDir,
    cacheBytes: opts.cache === undefined ? undefined : parseSize(opts.cache, '--cache'),
    readaheadPages: readahead,
    tracePath: opts.trace,
    log,
  });
  const stop = (signal: string) => {
    log('info', `${signal} received, stopping`);
    agent.stop(`${signal} received`).then(
      () => process.exit(0),
      (err) => {
        log('error', `stop failed: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
} catch (err) {
  log('error', (err as Error).message);
  process.exit(1);
}
