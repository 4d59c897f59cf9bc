#!/usr/bin/env bash
# The test suite on 32-bit x86 (4-byte pointers, 4-aligned int64, the packed
# 12-byte epoll_event): a Debian i386 chroot, run natively on an amd64 kernel.
# See debian.sh; arguments go to pytest.
exec "$(dirname "$0")/debian.sh" i386 "$@"
