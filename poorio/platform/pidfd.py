"""Linux process fds through ctypes: ``pidfd_open(pid)``, an fd that turns readable when the child exits; nothing else of the pidfd API.

Facts that shaped this module:

* **What a pidfd is.**  ``pidfd_open(pid, 0)`` (Linux 5.3) returns an fd
  that refers to the process itself, not to its pid number, so a recycled
  pid can never be confused with it.  It polls readable (``POLLIN``) once
  the process has exited -- with epoll and with poll(2) alike -- so a child
  exit becomes one more readable fd in the scheduler's pool.  Reading it is
  not the way to learn the status: the parent still reaps the child with
  ``waitpid``, which after readiness returns at once.
* **Always close-on-exec.**  The kernel sets ``O_CLOEXEC`` on every pidfd
  (``pidfd_open(2)``); flags other than 0 (``PIDFD_NONBLOCK``, 5.10) are not
  needed, since the fd is never read.
* **Where the function comes from.**  glibc 2.36 exports ``pidfd_open``;
  older glibc and musl do not, so we fall back to ``syscall(2)``.  Its
  number is 434 on every architecture that uses the generic syscall table
  or numbered the syscall from the common 424+ range of Linux 5.1: x86-64,
  i386, arm, aarch64, riscv, loongarch, powerpc, s390x, sparc, parisc, m68k.
  It differs on x32 (434 | ``__X32_SYSCALL_BIT``), alpha (544) and the
  three MIPS ABIs (4434, 5434, 6434), so there we use the raw syscall only
  for the table below and otherwise report the call as unavailable.
* **Unavailable** means ``ENOSYS`` (kernel older than 5.3, or no binding
  here) or ``EPERM`` (a seccomp filter, as older container runtimes
  install): the caller falls back to ``SIGCHLD``.  ``available()`` says
  which case applies without spawning anything.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys

from ._libc import MULTIARCH, bind, os_error

__all__ = ["pidfd_open", "available", "UNAVAILABLE_ERRNOS"]

UNAVAILABLE_ERRNOS = (errno.ENOSYS, errno.EPERM)  # no pidfd here: fall back, do not fail

_X32_SYSCALL_BIT = 0x40000000


def _syscall_number() -> int | None:
    """``__NR_pidfd_open`` for this interpreter's ABI (see the module docstring), or None."""
    arch = MULTIARCH
    if arch.startswith("x86_64") and arch.endswith("gnux32"):
        return 434 | _X32_SYSCALL_BIT
    if arch.startswith("alpha"):
        return 544
    if arch.startswith("mips"):
        if arch.endswith("abin32") or "n32" in arch:
            return 6434
        if arch.startswith("mips64"):
            return 5434
        return 4434
    for prefix in ("x86_64", "i386", "i486", "i586", "i686", "arm", "aarch64", "riscv", "loongarch",
                   "powerpc", "s390", "sparc", "hppa", "m68k"):
        if arch.startswith(prefix):
            return 434
    return None


def _bind():
    if not sys.platform.startswith("linux"):
        return None
    func = bind("pidfd_open", ctypes.c_int, ctypes.c_int, ctypes.c_uint)  # glibc >= 2.36
    if func is not None:
        return func
    number = _syscall_number()
    syscall = bind("syscall", ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long)
    if number is None or syscall is None:
        return None
    return lambda pid, flags: syscall(number, pid, flags)


_pidfd_open = _bind()


def pidfd_open(pid: int) -> int:
    """A new close-on-exec fd for process ``pid``, readable once it has exited.

    Raises:
        OSError: from the kernel, unmodified -- ``ENOSYS``/``EPERM`` mean "no
            pidfds here" (``UNAVAILABLE_ERRNOS``), ``ESRCH`` no such process,
            ``EMFILE`` too many fds.  ``ENOSYS`` too when there is no binding.
    """
    if _pidfd_open is None:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))
    fd = _pidfd_open(pid, 0)
    if fd < 0:
        raise os_error()
    return fd


_probed = None  # the answer of available(), once asked


def available() -> bool:
    """Whether ``pidfd_open`` works here (probed once, on this process's own pid)."""
    global _probed
    if _probed is None:
        try:
            os.close(pidfd_open(os.getpid()))
            _probed = True
        except OSError as error:
            if error.errno not in UNAVAILABLE_ERRNOS:
                raise
            _probed = False
    return _probed
