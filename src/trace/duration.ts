// Durations as people type them on a command line: 500ms, 10s, 2m, 1h, or plain seconds.
import { invalidArgument } from '../errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, '': 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds in `text`; anything but a positive finite duration is EINVAL naming `name`. */
export function parseDuration(text: string, name = '--duration'): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|)\s*$/i.exec(text);
  const ms = m ? Number(m[1]) * UNIT_MS[m[2]!.toLowerCase()]! : NaN;
  if (!(ms > 0) || !Number.isFinite(ms)) throw invalidArgument(name, 'a duration such as 500ms, 10s, 2m or 30 (seconds)', text);
  return ms;
}

