// What the host must offer before guests can start, each missing piece a clear error
// with its remedy: root (for the network namespace, bridge and taps), QEMU, iproute2.
// And whether KVM can run the guests, or TCG (emulation, much slower) has to.
import fs from 'node:fs';
import path from 'node:path';
import { NaplusError } from '../errors.js';

export const QEMU = 'qemu-system-x86_64';
/** The one package `naplus vm up` needs installed; the rest comes into its cache. */
export const INSTALL_COMMAND = 'apt-get install --no-install-recommends qemu-system-x86';

export type Accel = 'kvm' | 'tcg';

export function findCommand(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Why KVM cannot run guests here, or undefined when it can. */
export function kvmUnusable(): string | undefined {
  try {
    fs.closeSync(fs.openSync('/dev/kvm', 'r+'));
  } catch (err) {
    return `/dev/kvm cannot be opened (${(err as NodeJS.ErrnoException).code})`;
  }
  const cpu = fs.readFileSync('/proc/cpuinfo', 'utf8');
  if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(cpu)) return 'the CPU shows no vmx/svm flag (this machine is itself a VM without nested virtualization)';
  return undefined;
}

export interface HostReady {
  qemu: string;
  accel: Accel;
  /** Said to the user when the guests run under TCG. */
  notice?: string;
}

/** Checks root, QEMU and iproute2, and picks the accelerator (`auto`: KVM where it works). */
export function checkHost(accel: Accel | 'auto'): HostReady {
  if (process.getuid?.() !== 0) {
    throw new NaplusError('EPERM', 'naplus vm needs root: it makes a network namespace with a bridge and tap devices for the guests. Run it as root (e.g. with sudo)');
  }
  const qemu = findCommand(QEMU);
  if (!qemu) throw new NaplusError('ENOENT', `QEMU is not installed (no ${QEMU} in PATH); install it with \`${INSTALL_COMMAND}\``);
  if (!findCommand('ip')) throw new NaplusError('ENOENT', 'The ip command is missing; install it with `apt-get install iproute2`');
  const why = kvmUnusable();
  if (accel === 'kvm' && why) throw new NaplusError('ENODEV', `--accel kvm: KVM is not usable here: ${why}`);
  if (accel === 'tcg' || why) {
    return { qemu, accel: 'tcg', notice: why && accel === 'auto' ? `KVM is not usable here (${why}): the guests run under TCG emulation, many times slower (fine for trying and testing, not for speed)` : undefined };
  }
  return { qemu, accel: 'kvm' };
}
