// Runs the package's commands as a user does, each test file in its own private state
// directory (XDG_RUNTIME_DIR), so that its local clusters meet no one else's.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = (name: string) => path.join(ROOT, 'dist/cli', `${name}.js`);

export interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** A private runtime directory (mode 0700) for this test process. */
export function privateRuntimeDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-cli-test-'));
  fs.chmodSync(dir, 0o700);
  return dir;
}

export function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}, timeout = 120_000): Run {
  const r = spawnSync(process.execPath, [BIN(command), ...args], { encoding: 'utf8', timeout, env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
