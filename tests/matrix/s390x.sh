#!/usr/bin/env bash
# The test suite on a big-endian machine (IBM Z): a Debian s390x chroot, run
# through qemu-user-static.  Every struct poorio packs is read back byte-swapped
# if it assumed little-endian anywhere.  See debian.sh; arguments go to pytest.
exec "$(dirname "$0")/debian.sh" s390x "$@"
