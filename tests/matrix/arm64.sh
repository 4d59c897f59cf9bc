#!/usr/bin/env bash
# The test suite on 64-bit ARM (the natural 16-byte epoll_event, the reverse of
# x86-64): a Debian arm64 chroot, run through qemu-user-static on any other host.
# See debian.sh; arguments go to pytest.
exec "$(dirname "$0")/debian.sh" arm64 "$@"
