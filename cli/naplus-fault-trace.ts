#!/usr/bin/env node
// naplus-fault-trace: record the page faults of running nodes, and report on traces
// (tables, JSON, a heatmap).
import { Command } from 'commander';
import { recordCommand } from './fault-trace-record.js';
import { reportCommand } from './fault-trace-report.js';
import { VERSION, runCommand } from './args.js';

const program = new Command()
  .name('naplus-fault-trace')
  .version(VERSION)
  .description('Record the page faults of running Naplus nodes, and report where pages came from, how long apps waited, and which pages were hot or moved between nodes.')
  .showHelpAfterError()
  .addHelpText('after', `
Examples:
  naplus-fault-trace record --node /run/naplus --duration 10s -o trace.jsonl
  naplus-fault-trace report trace.jsonl --svg faults.svg
See 'naplus-fault-trace help record' and 'naplus-fault-trace help report'.`);

program
  .command('record')
  .description('stream every fault of one or more running nodes into a JSON-lines trace, one event per line')
  .requiredOption('--node <socket>', 'a node\'s socket directory (its --socket-dir) or control.sock; repeat for more nodes', (v: string, prev: string[] = []) => [...prev, v])
  .option('--duration <time>', 'stop after this long: 500ms, 10s, 2m, 1h, or plain seconds (default: until Ctrl-C or SIGTERM)')
  .option('-o, --output <file>', 'append the events to this file (default: stdout)')
  .addHelpText('after', `
The duration counts from the moment every node has answered. At the end, every fault the
nodes resolved until then is written before the command exits. Progress (events per
node) is shown on stderr once a second when it is a terminal, and a one-line summary at
the end. Lines of several nodes interleave as they arrive; 'report'
puts them in time order. If a node goes away, what it sent is kept, the others go on
being recorded, and the exit status is 1.

Examples:
  naplus-fault-trace record --node /run/naplus --duration 10s -o trace.jsonl
  naplus-fault-trace record --node /tmp/n1 --node /tmp/n2/control.sock > trace.jsonl   # until Ctrl-C`)
  .action(async (opts) => {
    process.exit(await recordCommand(opts));
  });

program
  .command('report')
  .description('figures of one or more traces (merged in time order): faults by kind and source, wait percentiles, wire bytes, hottest and ping-pong pages')
  .argument('<trace...>', 'JSON-lines files written by \'record\' or by naplus-mount --trace')
  .option('--top <n>', 'rows in the hottest and ping-pong tables', '10')
  .option('--json', 'print one JSON object with every figure instead of tables')
  .option('--svg <file>', 'also draw a heatmap: time across, pages down, coloured by source')
  .addHelpText('after', `
Wait percentiles are nearest-rank (p90 is the smallest wait that at least 90% of faults
did not exceed), in µs from the node reading the fault to resolving it.

Ping-pong: a page's moves are the number of times, in time order, that a fault on the
page comes from a different node than the previous fault on that page. Pages faulted
only from one node have no moves.

Lines that are not fault events are skipped; how many, and the first one's number, is
said on stderr. A file with no events at all is an error.

Examples:
  naplus-fault-trace report trace.jsonl
  naplus-fault-trace report node1.jsonl node2.jsonl --top 20 --svg faults.svg
  naplus-fault-trace report trace.jsonl --json | jq .waitUs.remote`)
  .action(reportCommand);

runCommand('naplus-fault-trace', program);
