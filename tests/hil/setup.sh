#!/usr/bin/env bash
# Prepare the host for the QEMU hardware-in-the-loop (HIL) tests. Idempotent: a second run only checks.
#
#   tests/hil/setup.sh            install host packages, fetch the pinned guest kernel, build the initramfs
#   tests/hil/setup.sh --rebuild  rebuild the initramfs even if it looks current
#
# Everything it produces lives in tests/hil/cache/ (gitignored):
#   debs/<kernel>.deb   the cached kernel package (70 MB; never re-downloaded once present)
#   vmlinuz, initrd.gz  what tests/hil/harness.py boots
#   kernel.txt          "<package> <version> <uname -r>" of the kernel inside the initrd
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="$HERE/cache"
# The guest kernel is pinned so captures and timings are reproducible. Debian's security pool
# supersedes ABI packages; when the pin is gone from the pool we fall back to whatever
# linux-image-amd64 depends on and say so loudly (update the pin after checking the results).
PIN_PKG="linux-image-6.1.0-56-amd64"
PIN_VER="6.1.192-2"
APT_PACKAGES=(qemu-system-x86 qemu-utils busybox-static udev kmod dosfstools mtools fdisk)
# Loaded at boot, in this order (xhci before dummy_hcd keeps bus numbers stable: xhci = 1 and 2,
# dummy_hcd = 3). Dependencies are resolved from modules.dep.
# virtio_blk + ext4 (+ crc32c for its metadata checksums): the dock's evidence store lives on a virtual disk (SQLite's WAL cannot live
# on 9p: its shared-memory file needs a shared mmap, which 9p with cache=none refuses).
BOOT_MODULES=(virtio_pci virtio_console virtio_blk crc32c_generic ext4 9pnet_virtio 9p overlay
              xhci_pci usb_storage uas sd_mod sg vfat nls_ascii nls_cp437 nls_iso8859_1 nls_utf8
              usbserial ftdi_sio cdc_acm
              libcomposite usb_f_mass_storage usb_f_acm usb_f_fs dummy_hcd)

log() { printf 'hil-setup: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (installs packages with apt-get)"
REBUILD=0
[ "${1:-}" = "--rebuild" ] && REBUILD=1

ensure_packages() {
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

fetch_kernel() {
    mkdir -p "$CACHE/debs"
    local deb
    deb=$(ls "$CACHE"/debs/linux-image-6.1.*-amd64_*.deb 2>/dev/null | head -1 || true)
    if [ -n "$deb" ]; then echo "$deb"; return 0; fi
    local pkg="$PIN_PKG" ver="$PIN_VER"
    if ! (cd "$CACHE/debs" && apt-get download -qq "$pkg=$ver" >/dev/null 2>&1); then
        pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/{print $2; exit}')
        [ -n "$pkg" ] || die "pinned kernel $PIN_PKG=$PIN_VER is gone from the pool and linux-image-amd64 has no 6.x dependency"
        log "WARNING: pinned kernel $PIN_PKG=$PIN_VER no longer in the pool; falling back to $pkg"
        log "WARNING: update PIN_PKG/PIN_VER in tests/hil/setup.sh and re-check docs/hil.md timings"
        (cd "$CACHE/debs" && apt-get download -qq "$pkg" >/dev/null) || die "apt-get download $pkg failed"
    fi
    ls "$CACHE"/debs/linux-image-6.1.*-amd64_*.deb | head -1
}

build_initramfs() {
    local deb=$1 kroot="$CACHE/kroot" ir="$CACHE/initramfs"
    rm -rf "$kroot" "$ir"
    dpkg -x "$deb" "$kroot"
    local kver
    kver=$(ls "$kroot/lib/modules" | head -1)
    local src="$kroot/lib/modules/$kver"
    [ -f "$src/modules.dep" ] || busybox depmod -b "$kroot" "$kver"
    mkdir -p "$ir"/{bin,sbin,proc,sys,dev,tmp,run,hostroot,newroot,xchg,"lib/modules/$kver"}
    python3 - "$src" "${BOOT_MODULES[@]}" > "$CACHE/modlist.txt" <<'PY'
import os
import sys

src, want = sys.argv[1], sys.argv[2:]
deps: dict[str, list[str]] = {}
with open(os.path.join(src, "modules.dep")) as f:
    for line in f:
        key, _, rest = line.partition(":")
        deps[key] = rest.split()
by_name = {os.path.basename(k).split(".ko")[0].replace("-", "_"): k for k in deps}
builtin = {os.path.basename(line.strip()).split(".ko")[0].replace("-", "_")
           for line in open(os.path.join(src, "modules.builtin"))}
out: set[str] = set()
for name in want:
    if name in builtin:
        continue
    if name not in by_name:
        sys.exit(f"module {name} is neither built in nor in modules.dep")
    out.add(by_name[name])
    out.update(deps[by_name[name]])
print("\n".join(sorted(out)))
PY
    while read -r p; do
        mkdir -p "$ir/lib/modules/$kver/$(dirname "$p")"
        cp "$src/$p" "$ir/lib/modules/$kver/$p"
    done < "$CACHE/modlist.txt"
    cp "$src"/modules.builtin "$src"/modules.order "$ir/lib/modules/$kver/"
    busybox depmod -b "$ir" "$kver"
    cp "$(command -v busybox)" "$ir/bin/busybox"
    sed -e "s/@BOOT_MODULES@/${BOOT_MODULES[*]}/" "$HERE/guest/init.sh" > "$ir/init"
    chmod +x "$ir/init"
    (cd "$ir" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > "$CACHE/initrd.gz.new")
    mv "$CACHE/initrd.gz.new" "$CACHE/initrd.gz"
    cp "$kroot/boot/vmlinuz-$kver" "$CACHE/vmlinuz"
    echo "$(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version) $kver" > "$CACHE/kernel.txt"
    rm -rf "$kroot" "$ir"   # the unpacked tree is ~400 MB; only vmlinuz + initrd.gz are needed
    log "initrd: $(wc -l < "$CACHE/modlist.txt") modules, $(du -h "$CACHE/initrd.gz" | cut -f1)"
}

ensure_packages
busybox true || die "busybox-static is not usable"
DEB=$(fetch_kernel)
if [ $REBUILD = 1 ] || [ ! -s "$CACHE/initrd.gz" ] || [ ! -s "$CACHE/vmlinuz" ] \
   || [ "$HERE/guest/init.sh" -nt "$CACHE/initrd.gz" ] || [ "$0" -nt "$CACHE/initrd.gz" ]; then
    build_initramfs "$DEB"
fi
log "ready: $(cat "$CACHE/kernel.txt")"
