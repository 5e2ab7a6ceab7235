#!/bin/busybox sh
# /init of the initrd that tests/kernels/setup.sh builds and tests/kernels/vm.sh boots.
#
# The guest's root is the host's / (shared read-only over virtiofs, or 9p for kernels without
# virtiofs) under a tmpfs overlay, so the host's venv, build and sources are all visible and every
# write vanishes at power-off. The job to run is $vm_job/cmd.sh on the host (vm.sh writes it).
# Parameters come from the kernel command line, which the kernel hands to init as environment:
#   vm_fs=virtiofs|9p  vm_job=DIR  vm_moddir=DIR (the kernel's modules on the host)  vm_kconfig=FILE
# The job's stdout and stderr go to the virtio consoles hvc0 and hvc1; hvc2 is a status channel
# ("boot_s <uptime>" when the job starts, "rc <code>" when it ends). The kernel's console is ttyS0.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

die() { echo "vm-init: $*"; sync; reboot -f; }

# Modules the root file system needs (virtio transport, virtiofs or 9p, overlay), in dependency
# order; insmod of one built into this kernel fails harmlessly.
for m in $(cat /modules.order); do insmod "/modules/$m" 2>/dev/null; done

mkdir -p /host /upper /newroot
if [ "$vm_fs" = 9p ]; then
    mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host
else
    mount -t virtiofs -o ro hostroot /host
fi || die "cannot mount the host's root ($vm_fs)"
mount -t tmpfs -o mode=755 tmpfs /upper && mkdir -p /upper/u /upper/w
mount -t overlay overlay -o lowerdir=/host,upperdir=/upper/u,workdir=/upper/w /newroot || die "overlay failed"

R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t tmpfs tmpfs $R/run
# vm.sh's scratch disk (ext4 on virtio-blk) is /scratch, and the job's TMPDIR: the block tools'
# tests need a file on a disk. (Not /tmp, where the host keeps the job's files.)
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 0.2; done
mkdir -p $R/scratch && mount -t ext4 /dev/vda $R/scratch && chmod 1777 $R/scratch ||
    die "cannot mount the scratch disk (/dev/vda) on /scratch"
mount -t securityfs securityfs $R/sys/kernel/security
mount -t tracefs tracefs $R/sys/kernel/tracing
mount -t debugfs debugfs $R/sys/kernel/debug
mount -t bpf bpf $R/sys/fs/bpf
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup

# modprobe and libbpf's __kconfig look for /lib/modules/$(uname -r) and /boot/config-$(uname -r)
# (Debian kernels have no /proc/config.gz): point them at the unpacked package on the host.
KV=$(uname -r)
mkdir -p $R/lib/modules $R/boot
rm -rf "$R/lib/modules/$KV"
[ -n "$vm_moddir" ] && ln -s "$vm_moddir" "$R/lib/modules/$KV"
[ -n "$vm_kconfig" ] && ln -sf "$vm_kconfig" "$R/boot/config-$KV"
# The kernel loads a module it needs (veth for `ip link add ... type veth`, say) by running
# modprobe in its own root, this initrd, which has neither kmod nor the modules: run the host's
# modprobe in the guest's root instead.
printf '#!/bin/sh\nexec /bin/chroot %s /sbin/modprobe "$@"\n' "$R" >/bin/modprobe-in-root
chmod 755 /bin/modprobe-in-root
echo /bin/modprobe-in-root >/proc/sys/kernel/modprobe

hostname vm
ip link set lo up 2>/dev/null

OUT=/dev/console ERR=/dev/console ST=/dev/console
[ -e /dev/hvc0 ] && OUT=/dev/hvc0
[ -e /dev/hvc1 ] && ERR=/dev/hvc1
[ -e /dev/hvc2 ] && ST=/dev/hvc2
exec 3>$OUT 4>$ERR 5>$ST                          # held open so the raw mode below sticks
for fd in 3 4 5; do stty raw -echo <&$fd 2>/dev/null; done   # no \n -> \r\n
echo "boot_s $(cut -d' ' -f1 /proc/uptime)" >&5
env -i TMPDIR=/scratch chroot $R /bin/sh "$vm_job/cmd.sh" </dev/null >&3 2>&4 3>&- 4>&- 5>&-
echo "rc $?" >&5
sync
reboot -f
