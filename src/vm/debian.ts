// Debian packages as the guest image's raw material: fetched with `apt-get download`
// and unpacked with `dpkg -x` into a folder of ours. Nothing is installed on the host.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { NaplusError } from '../errors.js';
import { findCommand } from './host.js';

/** The guest kernel: Debian 12's 6.1 series (its modules are what guest-init.ts loads). */
const KERNEL_PACKAGE = /^linux-image-6\.1\.0-(\d+)-amd64$/;

function run(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '').trim().split('\n').filter((l) => !l.startsWith('W: ')).slice(-3).join('; ');
    throw new NaplusError('EPKG', `${cmd} ${args.join(' ')} failed: ${stderr || (err as Error).message}`);
  }
}

function needApt(): void {
  for (const tool of ['apt-get', 'apt-cache', 'dpkg']) {
    if (!findCommand(tool)) {
      throw new NaplusError('ENOENT', `Building the guest image needs Debian's ${tool} (the kernel and busybox come from Debian packages); run naplus vm up on a Debian or Ubuntu host`);
    }
  }
}

/** The newest linux-image-6.1.0-N-amd64 apt knows of. */
export function newestKernelPackage(): string {
  needApt();
  const names = run('apt-cache', ['search', '--names-only', '^linux-image-6\\.1\\.0-[0-9]+-amd64$'])
    .split('\n').map((l) => l.split(' ')[0]!).filter((n) => KERNEL_PACKAGE.test(n));
  if (names.length === 0) {
    throw new NaplusError('ENOENT', 'apt knows no linux-image-6.1.0-*-amd64 package: run `apt-get update` (the guests need Debian 12 "bookworm" package sources)');
  }
  return names.sort((a, b) => Number(KERNEL_PACKAGE.exec(b)![1]) - Number(KERNEL_PACKAGE.exec(a)![1]))[0]!;
}

/**
 * Downloads `pkg` into `dir` and unpacks it into `dir/root`; returns the .deb's base
 * name (package_version_arch), which names the cache entry made from it.
 */
export function fetchAndUnpack(pkg: string, dir: string): string {
  needApt();
  // As root apt drops to the _apt user to download, and _apt cannot write in root's home.
  const sandbox = process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
  run('apt-get', ['download', ...sandbox, pkg], dir);
  const deb = fs.readdirSync(dir).find((f) => f.endsWith('.deb'));
  if (!deb) throw new NaplusError('EPKG', `apt-get download ${pkg} left no .deb in ${dir}`);
  run('dpkg', ['-x', path.join(dir, deb), path.join(dir, 'root')]);
  return deb.replace(/\.deb$/, '');
}
