// Command-line values, checked the way the API checks its arguments: a bad one is a
// NaplusError (EINVAL) that names the flag, what it takes, and what it got.
import { createRequire } from 'node:module';
import type { Command } from 'commander';
import { invalidArgument } from '../src/errors.js';
import { parseSize } from '../src/config.js';

/** An integer flag within [min, max]. */
export function intFlag(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < min || n > max) throw invalidArgument(flag, `an integer from ${min} to ${max}`, value);
  return n;
}

/** A size flag: 4096, 64M, 2G. */
export function sizeFlag(flag: string, value: string): number {
  try {
    return parseSize(value, flag);
  } catch {
    throw invalidArgument(flag, 'a positive size such as 4096, 64M or 2G', value);
  }
}

/** This package's version, for every command's --version. */
export const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/**
 * Parses and runs a command; any error is one line, `<command>: <message>`, and exit
 * status 1 (commander's own usage errors say theirs the same way).
 */
export function runCommand(name: string, program: Command): void {
  program.parseAsync().catch((err) => {
    console.error(`${name}: ${(err as Error).message}`);
    process.exit(1);
  });
}
