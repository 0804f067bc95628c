#!/usr/bin/env node
// naplus-mount: runs one Naplus node in the foreground.
import { Command, Option } from 'commander';
import { loadConfig, secretFileWarning } from '../src/config.js';
import { NodeAgent } from '../src/node/agent.js';
import { DEFAULT_SOCKET_DIR } from '../src/client/attach.js';
import { LOG_FORMATS, LOG_LEVELS, makeLogger, stderrIsJournal, type LogFormat, type LogLevel, type Logger } from '../src/log.js';
import { sdNotify } from '../src/systemd.js';
import { VERSION, intFlag, sizeFlag } from './args.js';

const program = new Command()
  .name('naplus-mount')
  .description('Run one Naplus node: join the cluster, map this host\'s segment, and serve the regions to local apps.')
  .version(VERSION)
  .requiredOption('-c, --cluster <file>', 'cluster file (JSON) shared by every node')
  .requiredOption('-n, --node <id>', 'this node\'s id in the cluster file')
  .option('--cache <size>', 'bytes of each region this node may cache (e.g. 256M); past it clean pages are dropped and dirty ones written home')
  .option('--readahead <pages>', 'largest window of pages fetched ahead of sequential read faults (0 turns readahead off)', '64')
  .option('--socket-dir <dir>', 'where apps find the region sockets and the control socket', process.env.NAPLUS_SOCKET_DIR ?? DEFAULT_SOCKET_DIR)
  .option('--trace <file>', 'append every resolved fault as a JSON line to this file')
  .addOption(new Option('--log-level <level>', 'least severe level logged').choices(LOG_LEVELS).default('info'))
  .addOption(new Option('--log-format <format>', 'text lines, or one JSON object per line (time, level, node, msg)').choices(LOG_FORMATS).default('text'))
  .addHelpText('after', `
Logs go to stderr. Under systemd (stderr is the journal) every line starts with its
syslog priority, so 'journalctl -p warning' filters, and text lines leave the time to the
journal. With Type=notify the node tells systemd it is ready once its sockets are up.

Examples:
  naplus-mount --cluster /etc/naplus/cluster.json --node 1
  naplus-mount -c cluster.json -n 2 --cache 512M --socket-dir /tmp/naplus-2 --trace faults.jsonl

Apps attach with attach('<region>', { socketDir }) or NAPLUS_SOCKET_DIR=<dir>.
SIGINT/SIGTERM stop the node cleanly: apps are told, dirty pages go home.`);

program.parse();
const opts = program.opts<{ cluster: string; node: string; cache?: string; readahead: string; socketDir: string; trace?: string; logLevel: LogLevel; logFormat: LogFormat }>();
const write = makeLogger({ node: /^\d+$/.test(opts.node) ? Number(opts.node) : opts.node, min: opts.logLevel, format: opts.logFormat, journal: stderrIsJournal() });
// Until the node is ready, info and debug lines wait: a startup that fails says so in one
// line (the error), not after lines of progress and a "stopped". Warnings pass at once.
let held: Array<[LogLevel, string]> | undefined = [];
const log: Logger = (level, msg) => (held && (level === 'info' || level === 'debug') ? held.push([level, msg]) : write(level, msg));

try {
  const nodeId = intFlag('--node', opts.node, 1, 65535);
  const readaheadPages = intFlag('--readahead', opts.readahead, 0, 512);
  const cacheBytes = opts.cache === undefined ? undefined : sizeFlag('--cache', opts.cache);
  const config = loadConfig(opts.cluster);
  const exposed = secretFileWarning(config.secretFile);
  if (exposed) log('warn', exposed);
  const agent = await NodeAgent.start({ config, nodeId, socketDir: opts.socketDir, cacheBytes, readaheadPages, tracePath: opts.trace, log });
  for (const [level, msg] of held) write(level, msg);
  held = undefined;
  sdNotify({ READY: '1', STATUS: `node ${nodeId} of cluster ${config.cluster} serving; sockets in ${opts.socketDir}` });
  const stop = (signal: string) => {
    log('info', `${signal} received, stopping`);
    sdNotify({ STOPPING: '1', STATUS: 'writing dirty pages home' });
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
