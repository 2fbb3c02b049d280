#!/bin/busybox sh
# PID 1 of the HIL guest (busybox initramfs built by tests/hil/setup.sh).
# Kernel command line (set by tests/hil/harness.py):
#   hil.xchg=<abs path>    host path of the read-write exchange share; mounted at the same path in the chroot
#   hil.python=<abs path>  interpreter for the agent (the host venv, seen through the read-only root share)
#   hil.agent=<abs path>   tests/hil/guest/agent.py
#   hil.rootcache=<mode>   9p cache mode of the read-only host root (default none)
# The agent runs chrooted into an overlay of the host root (tmpfs upper), so the guest runs the host's
# userland (bash, udevadm, python, the project venv) while its writes stay in guest memory.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Debian's vfat default charset is nls_ascii: the kernel loads it through request_module().
echo /bin/modprobe > /proc/sys/kernel/modprobe
say() { echo "HIL: $* uptime=$(cut -d' ' -f1 /proc/uptime)"; }
fail() { echo "HIL: FATAL $*"; poweroff -f; sleep 1000000; }
say "init start"
for m in @BOOT_MODULES@; do
    # two dummy UDCs: two gadget recorders can be docked at once (buses 3 and 4)
    case "$m" in dummy_hcd) args="num=2" ;; *) args="" ;; esac
    modprobe "$m" $args || echo "HIL: modprobe $m failed"
done
say "modules loaded"
for kv in $(cat /proc/cmdline); do
    case "$kv" in
        hil.xchg=*) XCHG=${kv#hil.xchg=} ;;
        hil.python=*) PY=${kv#hil.python=} ;;
        hil.agent=*) AGENT=${kv#hil.agent=} ;;
        hil.rootcache=*) ROOTCACHE=${kv#hil.rootcache=} ;;
    esac
done
[ -n "$XCHG" ] && [ -n "$PY" ] && [ -n "$AGENT" ] || fail "hil.xchg/hil.python/hil.agent missing on the command line"
# cache=loose keeps what the guest read of the host root (files, directory entries, attributes)
# instead of asking QEMU again at every lookup: a Python start makes thousands of them.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro,cache=${ROOTCACHE:-none} hostroot /hostroot \
    || fail "9p hostroot mount"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none xchg /xchg || fail "9p xchg mount"
mount -t tmpfs -o size=768m tmpfs /run || fail "tmpfs"
mkdir -p /run/ov/upper /run/ov/work
mount -t overlay overlay -o lowerdir=/hostroot,upperdir=/run/ov/upper,workdir=/run/ov/work /newroot \
    || fail "overlay"
R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t configfs configfs $R/sys/kernel/config || fail "configfs"
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t tmpfs tmpfs $R/run
# the guest kernel's modules, for kmod/udev inside the chroot
K=$(uname -r)
mkdir -p $R/lib/modules/$K && mount -o bind /lib/modules/$K $R/lib/modules/$K
mkdir -p "$R$XCHG" && mount -o bind /xchg "$R$XCHG" || fail "bind xchg to $XCHG"
say "chroot ready"
# udevadm refuses to act in a chroot unless told otherwise.
SYSTEMD_IGNORE_CHROOT=1 chroot $R "$PY" "$AGENT"
echo "HIL: agent exited rc=$?"
poweroff -f
sleep 1000000
