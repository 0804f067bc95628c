// What runs first in a guest: the initramfs's /init, a busybox shell script. It loads
// the few modules the guest needs (the kernel package has no modules.dep for us, so the
// order is fixed here), mounts the host's root read-only over 9p with a tmpfs overlay
// on top, mounts the cluster's writable share at the same path it has on the host,
// sets the guest's address, enables the ivshmem device, and runs the guest agent in a
// chroot of that overlay: the host's Node and this checkout run there unchanged.
// One initramfs serves every guest; what differs per guest comes on the kernel
// command line (`naplus.*=`), which is why no value may contain a space.

/** Modules in load order: virtio and 9p for the file systems, then the network. */
export const GUEST_MODULES = [
  'virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_pci',
  'netfs', 'fscache', '9pnet', '9pnet_virtio', '9p', 'overlay',
  'failover', 'net_failover', 'virtio_net',
];

/** 9p mount tags of the two shares (QEMU `mount_tag=`). */
export const ROOT_TAG = 'hostroot';
export const SHARE_TAG = 'naplus';

/** Printed on the console once the agent is about to start; `vm up` waits for the agent itself. */
export const INIT_DONE = 'naplus-init: starting the guest agent';

export interface GuestParams {
  /** Guest name (its hostname), e.g. g1. */
  name: string;
  /** Address with prefix length, e.g. 10.78.3.11/24. */
  address: string;
  /** The cluster's writable share: a host directory, mounted at the same path. */
  share: string;
  /** Absolute paths of the Node binary and the agent script, as on the host. */
  node: string;
  agent: string;
}

/** The kernel command line's `naplus.*` part for one guest. */
export function guestKernelArgs({ name, address, share, node, agent }: GuestParams): string[] {
  return Object.entries({ name, address, share, node, agent }).map(([k, v]) => {
    if (/\s|"/.test(v)) throw new Error(`guest parameter ${k} may not contain spaces or quotes: '${v}'`);
    return `naplus.${k}=${v}`;
  });
}

export function initScript(): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
fail() { echo "naplus-init: $*"; sleep 2; poweroff -f; }
for m in ${GUEST_MODULES.join(' ')}; do
  insmod /modules/$m.ko || fail "insmod $m failed"
done
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    naplus.name=*) NAME="\${arg#*=}" ;;
    naplus.address=*) ADDRESS="\${arg#*=}" ;;
    naplus.share=*) SHARE="\${arg#*=}" ;;
    naplus.node=*) NODE="\${arg#*=}" ;;
    naplus.agent=*) AGENT="\${arg#*=}" ;;
  esac
done
[ -n "$NAME" ] && [ -n "$ADDRESS" ] && [ -n "$SHARE" ] && [ -n "$NODE" ] && [ -n "$AGENT" ] || fail "naplus.* kernel parameters missing"
hostname "$NAME"
mkdir -p /lower /upper /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro ${ROOT_TAG} /lower || fail "cannot mount the host root"
mount -t tmpfs -o mode=755 upper /upper
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot || fail "cannot mount the overlay"
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mkdir -p /newroot/dev/shm /newroot/dev/pts
mount -t tmpfs -o mode=1777 shm /newroot/dev/shm
mount -t tmpfs -o mode=755 run /newroot/run
mkdir -p "/newroot$SHARE"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 ${SHARE_TAG} "/newroot$SHARE" || fail "cannot mount the share"
ip link set lo up
ip addr add "$ADDRESS" dev eth0 && ip link set eth0 up || fail "cannot configure eth0"
for d in /sys/bus/pci/devices/*; do
  if [ "$(cat $d/vendor)" = 0x1af4 ] && [ "$(cat $d/device)" = 0x1110 ]; then echo 1 > $d/enable; fi
done
echo "${INIT_DONE}"
while :; do
  chroot /newroot "$NODE" "$AGENT" --name "$NAME" --share "$SHARE"
  echo "naplus-init: the guest agent exited ($?); restarting it"
  sleep 1
done
`;
}
