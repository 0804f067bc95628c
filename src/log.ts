// One line per notable event. As text, `2026-11-24T22:30:01.123Z node 1 info  region data ready`;
// as JSON (--log-format json), `{"time":"…","level":"info","node":1,"msg":"region data ready"}`.
// When stderr is the systemd journal, each line starts with its syslog priority (`<6>`),
// which journald strips and stores (so `journalctl -p warning` filters), and text lines
// carry no timestamp of their own: the journal stamps every line already.
import fs from 'node:fs';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, msg: string) => void;
export type LogFormat = 'text' | 'json';

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
export const LOG_LEVELS = Object.keys(RANK) as LogLevel[];
export const LOG_FORMATS: LogFormat[] = ['text', 'json'];
/** syslog priorities (sd-daemon(3)): err, warning, info, debug. */
const PRIORITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };

export interface LoggerOptions {
  /** The node id, or whatever names the process in its lines. */
  node: number | string;
  min?: LogLevel;
  format?: LogFormat;
  /** Prefix priorities and leave out the timestamp of text lines (see stderrIsJournal). */
  journal?: boolean;
  out?: (line: string) => void;
}

/**
 * True when stderr is a stream to the journal: systemd sets JOURNAL_STREAM to the
 * "device:inode" of the stream it connects, and a process whose stderr was redirected
 * since then has another one.
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env, fd = 2): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}

export function makeLogger(options: LoggerOptions): Logger {
  const { node, min = 'info', format = 'text', journal = false, out = (l: string) => process.stderr.write(`${l}\n`) } = options;
  return (level, msg) => {
    if (RANK[level] < RANK[min]) return;
    const line = format === 'json'
      ? JSON.stringify({ time: new Date().toISOString(), level, node, msg })
      : `${journal ? '' : `${new Date().toISOString()} `}node ${node} ${level.padEnd(5)} ${msg}`;
    out(journal ? `<${PRIORITY[level]}>${line}` : line);
  };
}
