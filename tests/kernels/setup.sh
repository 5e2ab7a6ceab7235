#!/bin/bash
# tests/kernels/setup.sh [SERIES...]: makes the host ready to boot Debian kernels under qemu.
#
#   * installs qemu, virtiofsd, kmod, a static busybox and the decompressors with apt (as root),
#     running `apt-get update` only when an install, a search or a download fails;
#   * for each kernel series (default: $BPFKIT_KERNELS, else "6.1 6.12") finds the newest
#     linux-image-<series>...-cloud-amd64-unsigned package in the apt lists, downloads it and
#     prepares $BPFKIT_KERNELS_CACHE/<series> (default /var/tmp/bpfkit-kernels/<series>):
#       root/         the unpacked package, with modules.dep (depmod)
#       vmlinux       the uncompressed kernel, booted directly
#       initrd.cpio   busybox + the root-fs modules + init.sh
#       fs            virtiofs or 9p: how the guest mounts the host's /
#       stamp         the package and version prepared; the work is skipped while it matches
# Safe to run concurrently (a lock) and repeatedly (stamps); a second run takes about a second.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${BPFKIT_KERNELS_CACHE:-/var/tmp/bpfkit-kernels}
if [ $# -gt 0 ]; then SERIES=("$@"); else read -r -a SERIES <<<"${BPFKIT_KERNELS:-6.1 6.12}"; fi
HOST_PKGS=(qemu-system-x86 kmod busybox-static xz-utils zstd lz4)

log() { echo "kernels/setup: $*" >&2; }
die() { log "$*"; exit 1; }

quietly() {   # runs a command, showing its output only if it fails
    local out rc
    out=$("$@" 2>&1) && return 0
    rc=$?
    echo "$out" >&2
    return $rc
}

UPDATED=
apt_update() {   # once per run; returns 1 if it already ran (so callers stop retrying)
    [ -z "$UPDATED" ] || return 1
    UPDATED=1
    log "apt-get update"
    quietly apt-get update -q || log "apt-get update failed (going on with the lists there are)"
}

apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    [ "$(id -u)" = 0 ] || die "need root to apt-get install ${missing[*]}"
    log "installing ${missing[*]}"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
        { apt_update && quietly apt-get install -y -q --no-install-recommends "${missing[@]}"; } ||
        die "apt-get install ${missing[*]} failed"
}

# qemu 7.2 (Debian 12) ships the C virtiofsd in /usr/lib/qemu; later qemus leave it to the Rust
# virtiofsd package (/usr/libexec/virtiofsd). vm.sh looks in the same places.
find_virtiofsd() {
    local p
    for p in "${VIRTIOFSD:-}" /usr/lib/qemu/virtiofsd /usr/libexec/virtiofsd /usr/lib/virtiofsd; do
        [ -n "$p" ] && [ -x "$p" ] && { echo "$p"; return 0; }
    done
    command -v virtiofsd
}

# The newest package of a series, e.g. 6.1 -> linux-image-6.1.0-NN-cloud-amd64-unsigned,
# 6.12 -> linux-image-6.12.NN+deb12-cloud-amd64-unsigned ("6.1" never matches 6.12's packages).
newest_package() {
    local re="^linux-image-${1//./\\.}[.-][^ ]*-cloud-amd64-unsigned\$"
    { apt-cache search --names-only "$re" 2>/dev/null || true; } | awk '{print $1}' | { grep -E "$re" || true; } |
        sort -V | tail -n 1
}

candidate_version() {
    { apt-cache policy "$1" 2>/dev/null || true; } | awk '/Candidate:/ && !v {v = $2} END {print v}'
}

# Everything that goes into an initrd; a change to any of it rebuilds the initrds.
initrd_inputs_sum() {
    { cat "$HERE/init.sh" /bin/busybox "$1"; declare -f build_initrd; } | sha256sum | cut -d' ' -f1
}

build_initrd() {   # build_initrd KDIR
    local kdir=$1 kroot=$1/root kver mods w m ko b
    kver=$(cat "$kdir/kver")
    # virtio_blk: the scratch disk vm.sh gives the guest for /tmp (ext4 is built in).
    if [ "$(cat "$kdir/fs")" = 9p ]; then mods="virtio_pci virtio_mmio virtio_console virtio_blk 9pnet_virtio 9p overlay"
    else mods="virtio_pci virtio_mmio virtio_console virtio_blk virtiofs overlay"; fi
    w=$(mktemp -d)
    mkdir -p "$w"/{bin,dev,proc,sys,modules}
    cp /bin/busybox "$w/bin/busybox"
    cp "$HERE/init.sh" "$w/init" && chmod 755 "$w/init"
    : >"$w/modules.order"
    for m in $mods; do   # each module after its dependencies, decompressed (busybox insmod)
        modprobe -d "$kroot" -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}' |
            while read -r ko; do
                b=$(basename "$ko"); b=${b%.xz}; b=${b%.zst}
                grep -qxF "$b" "$w/modules.order" && continue
                case $ko in
                    *.xz) xz -dc "$ko" >"$w/modules/$b" ;;
                    *.zst) zstd -qdc "$ko" >"$w/modules/$b" ;;
                    *) cp "$ko" "$w/modules/$b" ;;
                esac
                echo "$b" >>"$w/modules.order"
            done
    done
    (cd "$w" && find . | busybox cpio -o -H newc 2>/dev/null) >"$kdir/initrd.cpio.new"
    mv "$kdir/initrd.cpio.new" "$kdir/initrd.cpio"
    log "$(basename "$kdir"): initrd $(du -h "$kdir/initrd.cpio" | cut -f1), modules: $(tr '\n' ' ' <"$w/modules.order")"
    rm -rf "$w"
}

prepare() {   # prepare SERIES PACKAGE (PACKAGE empty: none in the apt lists)
    local series=$1 pkg=$2 kdir=$CACHE/$1 ver want new deb kver vmlinuz cfg
    if [ -z "$pkg" ]; then
        [ -f "$kdir/stamp" ] || die "no linux-image-$series*-cloud-amd64-unsigned package in the apt lists"
        log "$series: no package found in the apt lists; keeping $(cut -d' ' -f1 "$kdir/stamp")"
    else
        ver=$(candidate_version "$pkg")
        want="$pkg $ver"
        if [ "$(cat "$kdir/stamp" 2>/dev/null)" != "$want" ]; then
            log "$series: preparing $pkg $ver"
            new=$CACHE/.new-$series
            rm -rf "$new" && mkdir -p "$new/deb"
            (cd "$new/deb" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
                { apt_update && (cd "$new/deb" && quietly apt-get download -q "$pkg"); } ||
                die "apt-get download $pkg failed"
            deb=$(ls "$new"/deb/*.deb)
            dpkg -x "$deb" "$new/root"
            rm -rf "$new/deb"
            # Packages of later Debian releases ship only usr/lib/modules.
            [ -d "$new/root/lib/modules" ] || ln -s usr/lib "$new/root/lib"
            kver=$(ls "$new/root/lib/modules")
            [ "$(echo "$kver" | wc -l)" = 1 ] || die "$pkg: expected one kernel in lib/modules, found: $kver"
            echo "$kver" >"$new/kver"
            mkdir -p "$new/root/boot"
            cfg=$new/root/boot/config-$kver
            [ -e "$cfg" ] || ln -s "../lib/modules/$kver/config" "$cfg"
            vmlinuz=$new/root/boot/vmlinuz-$kver
            [ -e "$vmlinuz" ] || vmlinuz=$new/root/lib/modules/$kver/vmlinuz
            python3 "$HERE/extract_vmlinux.py" "$vmlinuz" "$new/vmlinux"
            depmod -b "$new/root" "$kver"   # the packages ship no modules.dep
            if grep -q '^CONFIG_VIRTIO_FS=' "$cfg"; then echo virtiofs; else echo 9p; fi >"$new/fs"
            grep -q '^CONFIG_KPROBES=y' "$cfg" || log "$series: warning: $kver has no CONFIG_KPROBES"
            rm -rf "$kdir"
            mv "$new" "$kdir"
            echo "$want" >"$kdir/stamp"
        fi
    fi
    # The initrd depends on the harness's init.sh and the host's busybox too.
    local sum
    sum=$(initrd_inputs_sum "$kdir/stamp")
    if [ ! -f "$kdir/initrd.cpio" ] || [ "$(cat "$kdir/initrd.sum" 2>/dev/null)" != "$sum" ]; then
        build_initrd "$kdir"
        echo "$sum" >"$kdir/initrd.sum"
    fi
    log "$series: ready: $(cat "$kdir/kver") ($(cat "$kdir/stamp")), root over $(cat "$kdir/fs")"
}

[ "$(id -u)" = 0 ] || die "run as root (apt, and qemu's virtiofsd shares / with the guest)"
apt_install "${HOST_PKGS[@]}"
if ! find_virtiofsd >/dev/null; then
    apt_install virtiofsd
    find_virtiofsd >/dev/null || die "no virtiofsd after installing qemu and virtiofsd"
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
# Pick every series' package first, so that an `apt-get update` that one of them needs (lists too
# old to know it) comes before any choice is made.
declare -A PKG
resolve() { local s; for s in "${SERIES[@]}"; do PKG[$s]=$(newest_package "$s"); done; }
resolve
for s in "${SERIES[@]}"; do
    if [ -z "${PKG[$s]}" ]; then apt_update && resolve; break; fi
done
for s in "${SERIES[@]}"; do prepare "$s" "${PKG[$s]}"; done
