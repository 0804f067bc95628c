// One line per notable event: `2026-11-24T22:30:01.123Z node 1 info  region data ready`.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, msg: string) => void;

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
export const LOG_LEVELS = Object.keys(RANK) as LogLevel[];

export function makeLogger(prefix: string, min: LogLevel = 'info', out: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Logger {
  return (level, msg) => {
    if (RANK[level] >= RANK[min]) out(`${new Date().toISOString()} ${prefix} ${level.padEnd(5)} ${msg}`);
  };
}
