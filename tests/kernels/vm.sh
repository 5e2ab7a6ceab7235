#!/bin/bash
# tests/kernels/vm.sh KDIR COMMAND: boots the kernel that setup.sh prepared in KDIR under qemu and
# runs the shell COMMAND in it as root, in the current directory; exits with COMMAND's exit code,
# or 255 if the guest died first (then the tail of the kernel's console is printed).
#
# The guest sees the host's / read-only under a tmpfs overlay (init.sh), so it runs the host's
# programs and files; its writes vanish when it powers off. COMMAND's stdout and stderr come back
# as ours. Software emulation (TCG): no KVM is needed.
#
# Env: VM_SMP (1) VM_MEM (2G) VM_TIMEOUT (seconds, 1800) VM_STATS=FILE (writes "launch_to_cmd_s
# guest_uptime_s") VM_CONSOLE_LOG=FILE (keep the kernel's console) VM_APPEND (more kernel
# parameters) VM_QEMU_OPTS (more qemu options) VIRTIOFSD (its path).
set -uo pipefail
KDIR=$(realpath "$1")
CMD=$2
KVER=$(cat "$KDIR/kver")
FS=$(cat "$KDIR/fs")
MEM=${VM_MEM:-2G}

JOB=$(mktemp -d /tmp/bpfkit-vm.XXXXXX)
QPID= VFSPID= CATPID= WATCHPID=
cleanup() {   # never leave qemu or virtiofsd behind
    for p in $QPID $VFSPID $CATPID $WATCHPID; do kill "$p" 2>/dev/null; done
    rm -rf "$JOB"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

{
    echo "export PATH='$PATH' HOME=/root TERM=dumb LANG=C.UTF-8"
    printf 'cd %q 2>/dev/null || cd /\n' "$PWD"
    printf '%s\n' "$CMD"
} >"$JOB/cmd.sh"

# microvm: no PCI, BIOS or ACPI to emulate, so it boots in ~3 s under TCG. Its virtio-mmio is
# switched to the modern interface, which vhost-user (virtiofsd) requires.
MACHINE="-M microvm -global virtio-mmio.force-legacy=false"
# microvm has no PIT or HPET to calibrate the TSC against; TCG's rdtsc runs at the host's rate.
TSC=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Detected \([0-9]*\)\.\([0-9]\{3\}\).*MHz.*/\1\2/p' | head -n 1)
[ -n "$TSC" ] || TSC=$(awk -F: '/cpu MHz/ {printf "%d", $2 * 1000; exit}' /proc/cpuinfo)
APPEND="console=ttyS0 quiet loglevel=1 panic=-1 tsc_early_khz=$TSC tsc=reliable"
APPEND="$APPEND vm_fs=$FS vm_job=$JOB vm_moddir=$KDIR/root/lib/modules/$KVER vm_kconfig=$KDIR/root/boot/config-$KVER"

if [ "$FS" = virtiofs ]; then
    VFS=${VIRTIOFSD:-}
    for p in /usr/lib/qemu/virtiofsd /usr/libexec/virtiofsd /usr/lib/virtiofsd "$(command -v virtiofsd)"; do
        [ -z "$VFS" ] && [ -n "$p" ] && [ -x "$p" ] && VFS=$p
    done
    [ -n "$VFS" ] || { echo "vm: no virtiofsd (run tests/kernels/setup.sh)" >&2; exit 255; }
    if "$VFS" --help 2>&1 | grep -q -- --shared-dir; then   # the Rust virtiofsd
        "$VFS" --socket-path="$JOB/vfs.sock" --shared-dir=/ --cache=always --sandbox=chroot --log-level=error &
    else                                                   # qemu's own (C) virtiofsd
        "$VFS" --socket-path="$JOB/vfs.sock" -o source=/ -o cache=always -o sandbox=chroot -o log_level=err &
    fi 2>/dev/null
    VFSPID=$!
    for _ in $(seq 200); do [ -S "$JOB/vfs.sock" ] && break; sleep 0.05; done
    [ -S "$JOB/vfs.sock" ] || { echo "vm: virtiofsd ($VFS) did not start" >&2; exit 255; }
    ROOTFS="-object memory-backend-memfd,id=mem,size=$MEM,share=on -machine memory-backend=mem
            -chardev socket,id=vfs,path=$JOB/vfs.sock -device vhost-user-fs-device,chardev=vfs,tag=hostroot"
else
    ROOTFS="-fsdev local,id=r,path=/,security_model=none,readonly=on,multidevs=remap
            -device virtio-9p-device,fsdev=r,mount_tag=hostroot"
fi

# A scratch disk, ext4 on virtio-blk, that init.sh mounts on /scratch, the job's TMPDIR: block I/O for the
# block tools' tests (biosnoop, biotop), which the overlay's tmpfs cannot give. Sparse, 1 GiB.
truncate -s 1G "$JOB/scratch.img" && mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 "$JOB/scratch.img" ||
    { echo "vm: cannot make the scratch disk (mkfs.ext4, from e2fsprogs)" >&2; exit 255; }
SCRATCH="-drive file=$JOB/scratch.img,if=none,format=raw,id=scratch,cache=unsafe -device virtio-blk-device,drive=scratch"

# The guest's stderr console writes into a fifo that cat copies to our stderr.
mkfifo "$JOB/err"
cat "$JOB/err" >&2 &
CATPID=$!
: >"$JOB/status"
LAUNCH=$(date +%s.%N)
if [ -n "${VM_STATS:-}" ]; then   # note when the command starts, by the host's clock
    (while ! grep -q '^boot_s' "$JOB/status" 2>/dev/null; do sleep 0.1; done; date +%s.%N >"$JOB/started") &
    WATCHPID=$!
fi

# shellcheck disable=SC2086  # MACHINE, ROOTFS, SCRATCH and VM_QEMU_OPTS are option lists
timeout -k 5 "${VM_TIMEOUT:-1800}" qemu-system-x86_64 $MACHINE -accel tcg,thread=multi -cpu max \
    -m "$MEM" -smp "${VM_SMP:-1}" -nodefaults -no-user-config -display none -no-reboot \
    -serial file:"$JOB/console.log" \
    -device virtio-serial-device \
    -chardev stdio,id=out,signal=off -device virtconsole,chardev=out \
    -chardev pipe,id=err,path="$JOB/err" -device virtconsole,chardev=err \
    -chardev file,id=st,path="$JOB/status" -device virtconsole,chardev=st \
    -kernel "$KDIR/vmlinux" -initrd "$KDIR/initrd.cpio" -append "$APPEND ${VM_APPEND:-}" \
    $ROOTFS $SCRATCH ${VM_QEMU_OPTS:-} </dev/null &
QPID=$!
wait $QPID
qrc=$?
QPID=
: <>"$JOB/err"   # lets cat finish if qemu died before it opened the fifo
wait $CATPID
CATPID=

rc=$(sed -n 's/^rc \([0-9]*\).*/\1/p' "$JOB/status")
if [ -z "$rc" ]; then
    rc=255
    [ "$qrc" = 124 ] && echo "vm: timed out after ${VM_TIMEOUT:-1800} s" >&2
    echo "vm: the guest stopped without the command's exit code; kernel console tail:" >&2
    tail -n 40 "$JOB/console.log" >&2
fi
if [ -n "${VM_STATS:-}" ]; then
    kill $WATCHPID 2>/dev/null
    wait $WATCHPID 2>/dev/null
    WATCHPID=
    started=$(cat "$JOB/started" 2>/dev/null)
    boot=$(sed -n 's/^boot_s //p' "$JOB/status")
    if [ -n "$started" ]; then
        awk -v s="$started" -v l="$LAUNCH" -v b="${boot:-?}" 'BEGIN {printf "%.1f %s\n", s - l, b}' >"$VM_STATS"
    else
        echo "? ${boot:-?}" >"$VM_STATS"
    fi
fi
[ -n "${VM_CONSOLE_LOG:-}" ] && cp "$JOB/console.log" "$VM_CONSOLE_LOG"
exit "$rc"
