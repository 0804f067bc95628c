// Compiles a benchmark's C baseline with the machine's C compiler, once per source hash.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bench/c directory of the source tree (benchmarks run from dist/bench). */
export const C_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bench/c');

export function compileC(name: string): string {
  const source = path.join(C_DIR, `${name}.c`);
  const text = fs.readFileSync(source, 'utf8') + fs.readFileSync(path.join(C_DIR, 'common.h'), 'utf8');
  const hash = crypto.createHash('sha256').update(text).digest('hex').slice(0, 12);
  const out = path.join(os.tmpdir(), `naplus-bench-${name}-${hash}`);
  if (!fs.existsSync(out)) {
    execFileSync(process.env.CC ?? 'cc', ['-O2', '-Wall', '-o', `${out}.tmp`, source], { stdio: 'inherit' });
    fs.renameSync(`${out}.tmp`, out);
  }
  return out;
}
