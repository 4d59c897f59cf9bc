#!/usr/bin/env bash
# The test suite inside a Debian root file system of another architecture.
#
# Usage: tests/matrix/debian.sh ARCH [pytest arguments...]
#        ARCH is a Debian architecture: i386, arm64, s390x, armhf, ...
#        Arguments after ARCH replace the default selection (the whole suite).
#
# Each architecture is a real interpreter of that ABI, not a simulation of one:
#   - i386 on an amd64 kernel (or armhf on arm64) runs natively through chroot;
#   - any other runs through qemu-user-static, registered with binfmt_misc, so
#     chroot starts the foreign python3.11 as though it were native.  Every
#     syscall poorio makes reaches this kernel through qemu's translation, with
#     the foreign structure layouts: arm64's epoll_event is the natural
#     16-byte one, x86's the packed 12-byte one; s390x is big-endian.
# Emulated runs are serial (no xdist): emulated start-up of each xdist worker
# costs more than the second core gives back.
#
# Needs root (mmdebstrap --mode=root, chroot, mount, binfmt_misc).  Installs
# mmdebstrap and, for emulation, qemu-user-static and binfmt-support if
# missing.  The root file system and the test wheels are cached under
# $POORIO_MATRIX_DIR/ARCH (default /tmp/poorio-matrix/ARCH): about 10 s to
# build, 30 s for the wheels, then only the test run on later calls.
#
# Env: POORIO_MATRIX_DIR, POORIO_BACKEND (passed through), POORIO_DEBIAN_MIRROR
#      (default: the machine's own apt source for the suite, else deb.debian.org).
# Prints one PASS/FAIL/SKIP line and its time; exits non-zero on failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ARCH=${1:?usage: debian.sh ARCH [pytest arguments...]}
shift
WORK=${POORIO_MATRIX_DIR:-/tmp/poorio-matrix}/$ARCH
SUITE=bookworm  # its python3.11 is the interpreter under test
PY=3.11
FS=$WORK/rootfs
WHEELS=/opt/poorio-test  # inside $FS
# The interpreter, and CPython's own test.test_selectors, which
# tests/test_selector.py runs against poorio's selectors.
PACKAGES=python$PY-minimal,libpython$PY-stdlib,libpython$PY-testsuite
LOG=$WORK/$ARCH.log
# shellcheck source=tests/matrix/verdict.sh
. "$ROOT/tests/matrix/verdict.sh"

# The mirror this machine's apt already uses for $SUITE: passing it explicitly
# keeps mmdebstrap from reaching for the security suite's index, which fails
# from time to time.
mirror() {
    local uri=${POORIO_DEBIAN_MIRROR:-}
    [ -n "$uri" ] || uri=$(awk -v suite="$SUITE" '
        /^$/ { u = "" } /^URIs:/ { u = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite && u != "") { print u; exit } }' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null)
    [ -n "$uri" ] || uri=$(awk -v suite="$SUITE" '$1 == "deb" { for (i = 2; i < NF; i++) if ($(i + 1) == suite && $i ~ /^https?:/) { print $i; exit } }' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)
    echo "${uri:-http://deb.debian.org/debian}"
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "$@"
}

# Which architectures this kernel runs without help: its own, and the 32-bit
# one its CPU executes directly.
native() {
    local host
    host=$(dpkg --print-architecture 2>/dev/null || uname -m)
    case "$host:$ARCH" in
        "$ARCH:$ARCH" | amd64:i386 | x86_64:i386) return 0 ;;
    esac
    return 1
}

# qemu's name for a Debian architecture.
qemu_arch() {
    case "$ARCH" in
        arm64) echo aarch64 ;; armhf | armel) echo arm ;; i386) echo i386 ;;
        amd64) echo x86_64 ;; ppc64el) echo ppc64le ;; *) echo "$ARCH" ;;
    esac
}

# Registers qemu-user-static for $ARCH with the kernel's binfmt_misc.  The
# Debian package registers with the F (fix binary) flag: the kernel opens the
# emulator now, so it need not exist inside the chroot.
enable_emulation() {
    local q
    q=$(qemu_arch)
    if [ ! -x "/usr/bin/qemu-$q-static" ] || ! command -v update-binfmts >/dev/null; then
        apt_install qemu-user-static binfmt-support || return 1
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/register ] &&
        ! mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; then
        return 2  # this kernel (or container) gives us no binfmt_misc
    fi
    # A kernel may refuse a container the registration (EPERM): a fact of the
    # machine, like a missing binfmt_misc, not a failure of poorio's.
    local entry=/proc/sys/fs/binfmt_misc/qemu-$q
    grep -qsx enabled "$entry" || update-binfmts --enable "qemu-$q" || return 2
    grep -qsx enabled "$entry" || return 2
}

build_rootfs() {
    [ "$(cat "$FS/.poorio-packages" 2>/dev/null)" = "$PACKAGES" ] && return 0
    command -v mmdebstrap >/dev/null || apt_install mmdebstrap || return 1
    # A stale bind mount of the checkout must never be under rm -rf.
    if grep -qF " $FS/" /proc/mounts; then
        echo "refusing to rebuild $FS: something is still mounted under it"
        return 1
    fi
    rm -rf "$FS.new" "$FS"
    # variant=extract: just these packages and their dependencies, unpacked --
    # no shell, no apt; the interpreter is all the suite needs.
    mmdebstrap --mode=root --variant=extract --arch="$ARCH" \
        --include="$PACKAGES" "$SUITE" "$FS.new" "$(mirror)" &&
        mkdir -p "$FS.new/proc" "$FS.new/work" &&
        # No package writes /etc/hosts; tests resolve "localhost".
        printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$FS.new/etc/hosts" &&
        echo "$PACKAGES" >"$FS.new/.poorio-packages" &&
        mv "$FS.new" "$FS"
}

# Pure-Python wheels only, resolved for the chroot's Python, not this one.
install_wheels() {
    [ -f "$FS$WHEELS/.complete" ] && return 0
    local host_python
    host_python=$(command -v python3) || return 1
    rm -rf "$FS$WHEELS"
    "$host_python" -m pip install -q --disable-pip-version-check --target "$FS$WHEELS" \
        --only-binary=:all: --python-version "$PY" --implementation py --abi none --platform any \
        pytest pytest-xdist hypothesis && touch "$FS$WHEELS/.complete"
}

unmount() {
    local m
    for m in work proc dev/pts; do
        umount "$FS/$m" 2>/dev/null || umount -l "$FS/$m" 2>/dev/null
    done
    return 0
}

main() {
    local start=$SECONDS status how workers result
    if [ "$(id -u)" != 0 ]; then
        echo "SKIP $ARCH: needs root (mmdebstrap --mode=root, chroot, mount)"
        echo "!!!! $ARCH was NOT tested on this machine !!!!"
        return 0
    fi
    mkdir -p "$WORK"
    : >"$LOG"
    unmount  # what an interrupted earlier run may have left
    if native; then
        how=native workers=(-n 2)
    else
        how="qemu-$(qemu_arch)" workers=(-p no:xdist)
        enable_emulation >>"$LOG" 2>&1
        status=$?
        if [ $status -eq 2 ]; then
            echo "SKIP $ARCH: this kernel will not run qemu-$(qemu_arch)-static through binfmt_misc -- see $LOG"
            echo "!!!! $ARCH was NOT tested on this machine !!!!"
            return 0
        elif [ $status -ne 0 ]; then
            echo "FAIL $ARCH: could not register qemu-$(qemu_arch)-static with binfmt_misc -- the end of $LOG:"
            tail -n 20 "$LOG"
            return 1
        fi
    fi
    if ! { build_rootfs && install_wheels; } >>"$LOG" 2>&1; then
        echo "FAIL $ARCH: could not build the root file system or install the wheels -- the end of $LOG:"
        tail -n 20 "$LOG"
        return 1
    fi
    trap unmount EXIT
    mkdir -p "$FS/dev/pts"  # the pty tests need a devpts of their own, reached through /dev/ptmx
    ln -sf pts/ptmx "$FS/dev/ptmx"
    mount -t proc proc "$FS/proc" && mount -t devpts -o newinstance,ptmxmode=0666 devpts "$FS/dev/pts" &&
        mount --bind "$ROOT" "$FS/work" || { echo "FAIL $ARCH: mount failed"; return 1; }
    # The checkout is shared with the host: the chroot only reads it.
    mount -o remount,bind,ro "$FS/work" 2>/dev/null || echo "note: the checkout stays writable in the chroot"
    env -i PATH=/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 \
        PYTHONPATH="/work:$WHEELS" POORIO_BACKEND="${POORIO_BACKEND:-}" \
        "$(command -v chroot)" "$FS" "/usr/bin/python$PY" -c '
import os, platform, struct, sys
os.chdir("/work")
print("interpreter:", sys.implementation._multiarch, struct.calcsize("P") * 8, "bit", sys.byteorder, "endian", flush=True)
import pytest
sys.exit(pytest.main(sys.argv[1:]))' \
        -q -p no:cacheprovider "${workers[@]}" "$@" >>"$LOG" 2>&1
    status=$?
    unmount
    result=$(pytest_summary "$LOG")
    if [ $status -eq 0 ]; then
        echo "PASS $ARCH ($how, python$PY, $((SECONDS - start)) s): $result"
        return 0
    fi
    echo "FAIL $ARCH ($how, python$PY, $((SECONDS - start)) s): ${result:-pytest exited $status} -- see $LOG"
    pytest_failures "$LOG"
    return 1
}

# Parsed whole before it runs, so editing this file mid-run cannot derail it.
main "$@"
exit
