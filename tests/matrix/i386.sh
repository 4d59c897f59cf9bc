#!/usr/bin/env bash
# The test suite on 32-bit x86: a Debian i386 root file system, run natively through chroot.
#
# An x86-64 kernel runs i386 binaries as they are, so this is a real 32-bit
# CPython (4-byte pointers, 4-aligned int64, i386-linux-gnu), not an emulation.
# Needs root (mmdebstrap --mode=root, chroot, mount).  Installs mmdebstrap if
# missing.  The root file system and the test wheels are cached under
# $POORIO_MATRIX_DIR/i386 (default /tmp/poorio-matrix/i386): about 25 s to build,
# 30 s for the wheels, then only the test run on later calls.
#
# Env: POORIO_MATRIX_DIR, POORIO_BACKEND (passed through), POORIO_DEBIAN_MIRROR
#      (default: the machine's own apt source for the suite, else deb.debian.org).
# Prints one PASS/FAIL/SKIP line and its time; exits non-zero on failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${POORIO_MATRIX_DIR:-/tmp/poorio-matrix}/i386
SUITE=bookworm  # its python3.11 is the 32-bit interpreter under test
PY=3.11
FS=$WORK/rootfs
WHEELS=/opt/poorio-test  # inside $FS

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

build_rootfs() {
    [ -x "$FS/usr/bin/python$PY" ] && return 0
    command -v mmdebstrap >/dev/null || {
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq mmdebstrap
    } || return 1
    rm -rf "$FS.new"
    # variant=extract: just these packages and their dependencies, unpacked --
    # no shell, no apt; the interpreter is all the suite needs.
    mmdebstrap --mode=root --variant=extract --arch=i386 \
        --include="python$PY-minimal,libpython$PY-stdlib" "$SUITE" "$FS.new" "$(mirror)" &&
        mkdir -p "$FS.new/proc" "$FS.new/work" &&
        # No package writes /etc/hosts; tests resolve "localhost".
        printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$FS.new/etc/hosts" &&
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
    umount "$FS/work" 2>/dev/null || umount -l "$FS/work" 2>/dev/null
    umount "$FS/proc" 2>/dev/null || umount -l "$FS/proc" 2>/dev/null
    umount "$FS/dev/pts" 2>/dev/null || umount -l "$FS/dev/pts" 2>/dev/null
    return 0
}

main() {
    local start=$SECONDS log=$WORK/i386.log status
    if [ "$(id -u)" != 0 ]; then
        echo "SKIP i386: needs root (mmdebstrap --mode=root, chroot, mount)"
        echo "!!!! i386 was NOT tested on this machine !!!!"
        return 0
    fi
    mkdir -p "$WORK"
    if ! { build_rootfs && install_wheels; } >"$log" 2>&1; then
        echo "FAIL i386: could not build the root file system or install the wheels -- the end of $log:"
        tail -n 20 "$log"
        return 1
    fi
    trap unmount EXIT
    mkdir -p "$FS/dev/pts"  # the pty tests need a devpts of their own, reached through /dev/ptmx
    ln -sf pts/ptmx "$FS/dev/ptmx"
    mount -t proc proc "$FS/proc" && mount -t devpts -o newinstance,ptmxmode=0666 devpts "$FS/dev/pts" &&
        mount --bind "$ROOT" "$FS/work" || { echo "FAIL i386: mount failed"; return 1; }
    # The checkout is shared with the host: the chroot only reads it.
    mount -o remount,bind,ro "$FS/work" 2>/dev/null || echo "note: the checkout stays writable in the chroot"
    env -i PATH=/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 \
        PYTHONPATH="/work:$WHEELS" POORIO_BACKEND="${POORIO_BACKEND:-}" \
        "$(command -v chroot)" "$FS" "/usr/bin/python$PY" -c 'import os, sys, pytest; os.chdir("/work"); sys.exit(pytest.main(sys.argv[1:]))' \
        -q -n 2 -p no:cacheprovider >>"$log" 2>&1
    status=$?
    unmount
    local result
    result=$(grep -E '^=* ?[0-9]+ (passed|failed|error)' "$log" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//')
    if [ $status -eq 0 ]; then
        echo "PASS i386 (python$PY, $((SECONDS - start)) s): $result"
        return 0
    fi
    echo "FAIL i386 (python$PY, $((SECONDS - start)) s): ${result:-pytest exited $status} -- see $log"
    grep -E '^(FAILED|ERROR) ' "$log" | sort -u | head -n 40
    return 1
}

# Parsed whole before it runs, so editing this file mid-run cannot derail it.
main "$@"
exit
