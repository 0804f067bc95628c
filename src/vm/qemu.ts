// One guest's QEMU command line. What each option is for:
//   ivshmem-plain on memory-backend-file,share=on: the simulated host's segment, a file
//     under /dev/shm that every guest of that host maps as the device's BAR2; the device
//     sits at PCI slot 5 in every guest, so the BAR is at the same sysfs path in each.
//   two virtio-9p shares: the host's root, read-only (the guest overlays a tmpfs on it
//     and runs the host's Node and this checkout from there), and the cluster's folder,
//     writable (secrets, cluster file, node logs).
//   virtio-net on the guest's tap (romfile= skips the network boot ROM: ~2 s less).
//   the serial console into a file: boot messages and the agent's log, shown when a guest
//     does not come up.
//   tsc=reliable: under TCG the kernel's clocksource watchdog finds the TSC "unstable" and
//     falls back to the emulated HPET, where every clock read (Node makes many) costs
//     ~50 µs instead of ~10 µs; QEMU's TSC follows the host's clock, so it is reliable.
//   no_timer_check: on a busy machine an emulated CPU can miss the early IO-APIC timer
//     check's window, and the kernel then panics ("IO-APIC + timer doesn't work!").
import type { Accel } from './host.js';
import { ROOT_TAG, SHARE_TAG, guestKernelArgs, type GuestParams } from './guest-init.js';

export interface QemuGuest extends GuestParams {
  accel: Accel;
  kernel: string;
  initrd: string;
  /** Guest RAM in MiB. */
  memoryMiB: number;
  /** The host's segment file and its size (a power of two: it becomes a PCI BAR). */
  segmentFile: string;
  segmentBytes: number;
  tap: string;
  mac: string;
  consoleLog: string;
}

export function qemuArgs(g: QemuGuest): string[] {
  return [
    '-name', g.name,
    '-accel', g.accel,
    '-M', 'pc',
    '-cpu', g.accel === 'kvm' ? 'host' : 'max',
    '-smp', '1',
    '-m', `${g.memoryMiB}M`,
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-kernel', g.kernel,
    '-initrd', g.initrd,
    '-append', ['console=ttyS0', 'quiet', 'panic=-1', 'tsc=reliable', 'no_timer_check', ...guestKernelArgs(g)].join(' '),
    '-serial', `file:${g.consoleLog}`,
    '-object', `memory-backend-file,id=segment,size=${g.segmentBytes},share=on,mem-path=${g.segmentFile}`,
    '-device', 'ivshmem-plain,memdev=segment,addr=0x05',
    '-fsdev', 'local,id=root,path=/,readonly=on,security_model=none,multidevs=remap',
    '-device', `virtio-9p-pci,fsdev=root,mount_tag=${ROOT_TAG},addr=0x06`,
    '-fsdev', `local,id=share,path=${g.share},security_model=none`,
    '-device', `virtio-9p-pci,fsdev=share,mount_tag=${SHARE_TAG},addr=0x07`,
    '-netdev', `tap,id=net,ifname=${g.tap},script=no,downscript=no`,
    '-device', `virtio-net-pci,netdev=net,mac=${g.mac},romfile=,addr=0x08`,
  ];
}

/** The BAR2 of the ivshmem device as every guest sees it (slot 5 above). */
export const GUEST_BAR = '/sys/bus/pci/devices/0000:00:05.0/resource2';
