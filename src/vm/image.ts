// The guest image: a Debian kernel and an initramfs of busybox, the few modules the
// guest needs and guest-init.ts's /init. Built once from Debian packages and kept in a
// cache folder (NAPLUS_VM_CACHE, else $XDG_CACHE_HOME/naplus/vm, else ~/.cache/naplus/vm):
//   <package>_<version>_amd64/   vmlinuz and modules/*.ko of the kernel package
//   busybox-static_<version>_amd64/busybox
//   initrd-<hash>.cpio           rebuilt whenever its parts (or /init) change
// Each entry is made in a temporary folder and renamed into place, so an interrupted
// build leaves nothing half-made behind.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NaplusError } from '../errors.js';
import { cpioArchive, type CpioEntry } from './cpio.js';
import { fetchAndUnpack, newestKernelPackage } from './debian.js';
import { GUEST_MODULES, initScript } from './guest-init.js';

export interface GuestImage {
  kernel: string;
  initrd: string;
  /** e.g. linux-image-6.1.0-57-amd64_6.1.192-3_amd64 */
  kernelPackage: string;
}

export function imageCacheDir(): string {
  if (process.env.NAPLUS_VM_CACHE) return path.resolve(process.env.NAPLUS_VM_CACHE);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'naplus', 'vm');
}

/** The newest complete cache entry whose name starts with `prefix` (by the number after it). */
function cached(cache: string, prefix: RegExp): string | undefined {
  const found = fs.existsSync(cache) ? fs.readdirSync(cache).filter((f) => prefix.test(f)) : [];
  const rank = (f: string) => Number(/(\d+)/.exec(f.replace(prefix, ''))?.[1] ?? 0);
  const best = found.sort((a, b) => rank(b) - rank(a) || b.localeCompare(a))[0];
  return best && path.join(cache, best);
}

/** Fetches `pkg`, lets `keep(unpacked root, out dir)` copy what we need, and renames that into the cache. */
function buildEntry(cache: string, pkg: string, keep: (root: string, out: string) => void): string {
  const tmp = fs.mkdtempSync(path.join(cache, '.build-'));
  try {
    const name = fetchAndUnpack(pkg, tmp);
    const out = path.join(tmp, 'out');
    fs.mkdirSync(out);
    keep(path.join(tmp, 'root'), out);
    const entry = path.join(cache, name);
    try {
      fs.renameSync(out, entry);
    } catch (err) {
      // Another `vm up` built the same entry meanwhile: use theirs.
      if (!fs.existsSync(entry)) throw err;
    }
    return entry;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function findFile(dir: string, name: string): string | undefined {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      const found = findFile(p, name);
      if (found) return found;
    } else if (e.name === name) {
      return p;
    }
  }
  return undefined;
}

function kernelEntry(cache: string, say: (line: string) => void): string {
  const have = cached(cache, /^linux-image-6\.1\.0-/);
  if (have) return have;
  const pkg = newestKernelPackage();
  say(`  fetching ${pkg} with apt-get download (about 70 MB) and unpacking it…`);
  return buildEntry(cache, pkg, (root, out) => {
    const boot = path.join(root, 'boot');
    const vmlinuz = fs.readdirSync(boot).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new NaplusError('EPKG', `${pkg} holds no boot/vmlinuz-*`);
    fs.copyFileSync(path.join(boot, vmlinuz), path.join(out, 'vmlinuz'));
    fs.mkdirSync(path.join(out, 'modules'));
    for (const m of GUEST_MODULES) {
      const ko = findFile(path.join(root, 'lib', 'modules'), `${m}.ko`);
      if (!ko) throw new NaplusError('EPKG', `${pkg} has no module ${m}.ko, which the guest needs`);
      fs.copyFileSync(ko, path.join(out, 'modules', `${m}.ko`));
    }
  });
}

function busyboxEntry(cache: string, say: (line: string) => void): string {
  const have = cached(cache, /^busybox-static_/);
  if (have) return have;
  say('  fetching busybox-static with apt-get download…');
  return buildEntry(cache, 'busybox-static', (root, out) => fs.copyFileSync(path.join(root, 'bin', 'busybox'), path.join(out, 'busybox')));
}

function initramfs(cache: string, kernel: string, busybox: string): string {
  const script = Buffer.from(initScript());
  const parts = [script, fs.readFileSync(busybox), ...GUEST_MODULES.map((m) => fs.readFileSync(path.join(kernel, 'modules', `${m}.ko`)))];
  const hash = crypto.createHash('sha256');
  for (const p of parts) hash.update(crypto.createHash('sha256').update(p).digest());
  const file = path.join(cache, `initrd-${hash.digest('hex').slice(0, 16)}.cpio`);
  if (fs.existsSync(file)) return file;
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'proc', 'sys', 'modules'].map((d): CpioEntry => ({ kind: 'dir', path: d })),
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'file', path: 'bin/busybox', data: parts[1]!, mode: 0o755 },
    { kind: 'file', path: 'init', data: script, mode: 0o755 },
    ...GUEST_MODULES.map((m, i): CpioEntry => ({ kind: 'file', path: `modules/${m}.ko`, data: parts[2 + i]! })),
  ];
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, cpioArchive(entries));
  fs.renameSync(tmp, file);
  // Older initramfs files are of an older /init; a running guest has its copy in memory.
  for (const f of fs.readdirSync(cache)) if (/^initrd-[0-9a-f]+\.cpio$/.test(f) && f !== path.basename(file)) fs.rmSync(path.join(cache, f), { force: true });
  return file;
}

/** The cached image, building what is missing (and saying so through `say`). */
export function ensureImage(say: (line: string) => void): GuestImage {
  const cache = imageCacheDir();
  fs.mkdirSync(cache, { recursive: true });
  const kernel = kernelEntry(cache, say);
  const busybox = busyboxEntry(cache, say);
  return {
    kernel: path.join(kernel, 'vmlinuz'),
    initrd: initramfs(cache, kernel, path.join(busybox, 'busybox')),
    kernelPackage: path.basename(kernel),
  };
}
