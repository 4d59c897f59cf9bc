"""Child processes as IO objects: ``open_process`` gives a ``Process`` with pipe streams, ``run_process`` runs one to the end; no shell helpers, no ptys.

``await open_process(args, stdin=PIPE, stdout=PIPE)`` spawns the child with
``subprocess.Popen`` (``close_fds=True``; ``subprocess`` is imported on the
first spawn, not with poorio).  Each ``PIPE`` is a pipe poorio makes itself:
the child's end goes to ``Popen`` and is closed in the parent right after
the spawn; the parent's end becomes a ``poorio.streams.FdStream``
(non-blocking, close-on-exec -- the child's end is a different open file
description, so it stays blocking for the child).  On Windows, where
WSAPoll cannot wait on pipes, the pipe is an overlapped named pipe and
the parent's end a ``ProactorStream`` read and written through the
scheduler's completion port; the child's end is an ordinary synchronous
handle.  Other values (``None``:
inherit, ``DEVNULL``, ``STDOUT`` for stderr, an fd, a file object) pass to
``Popen`` unchanged.

``await proc.wait()`` parks until the child exits and reaps it (see
``poorio._childwatch``: a pidfd on Linux, else ``SIGCHLD``, else a
thread), so no zombie is left; any number of fibers may wait at once.
``aclose()`` (and leaving ``async with``) closes the pipes, kills a child
that is still running and reaps it, even in a cancelled fiber: call
``wait()`` first for a graceful end.

``run_process`` is ``subprocess.run`` for fibers: it feeds ``input``,
collects the output it was asked to capture, waits, and returns a
``subprocess.CompletedProcess``; with ``check=True`` a non-zero exit raises
``subprocess.CalledProcessError``.  Cancelled, it kills and reaps the child.

What this module does not do: text mode (streams carry bytes), shells,
pseudo-terminals, or reap children that somebody else's ``os.wait`` takes.
"""

from __future__ import annotations

import os

from ._childwatch import wait_for_exit
from ._core.cancel import CancelScope
from .errors import ClosedResourceError
from ._core.group import Group
from .platform import pidfd as _pidfd
from .platform.facts import PIPES_ARE_OPERATIONS, POLLS_PIPES
from ._core import notify_closing
from .streams import FdStream, overlapped_pipe
from .sync import Cond

__all__ = ["PIPE", "DEVNULL", "STDOUT", "Process", "open_process", "run_process"]

# subprocess's own values, so they pass straight through to Popen.
PIPE = -1
STDOUT = -2
DEVNULL = -3
_TEXT_OPTIONS = ("text", "universal_newlines", "encoding", "errors")


class Process:
    """A running (or finished) child process; its pipes are the streams ``stdin``, ``stdout``, ``stderr``.

    A stream is None when that pipe was not asked for.  ``returncode`` is
    None while the child runs, then its exit status (``-N``: killed by signal N).
    """

    __slots__ = ("_popen", "stdin", "stdout", "stderr", "_pidfd", "_exit_cond")

    def __init__(self, popen, stdin, stdout, stderr, pidfd: int) -> None:
        self._popen = popen
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._pidfd = pidfd  # -1 when there is none, or once the child is reaped
        self._exit_cond = None  # set while one fiber watches for the exit; the others wait on it

    @property
    def args(self):
        return self._popen.args

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """None while the child runs; its exit status once ``wait``/``poll`` has reaped it."""
        return self._popen.returncode

    def poll(self) -> int | None:
        """Reap the child if it has exited (never blocks); return ``returncode``."""
        code = self._popen.poll()
        if code is not None and self._pidfd >= 0:
            self._close_pidfd()
        return code

    async def wait(self) -> int:
        """Wait for the child to exit, reap it and return its exit status.

        Raises:
            Cancelled: the fiber was cancelled while it waited (the child runs on).
        """
        while self.poll() is None:
            cond = self._exit_cond
            if cond is not None:  # another fiber watches for the exit: wait for its news
                await cond.wait()
                continue
            cond = self._exit_cond = Cond()
            try:
                await wait_for_exit(self.pid, self._pidfd, self._exited)
            except ClosedResourceError:
                if self._popen.returncode is None:  # not our own poll() closing the pidfd
                    raise
            finally:
                self._exit_cond = None
                cond.signal()
        return self._popen.returncode

    def _exited(self) -> bool:
        return self.poll() is not None

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the child; nothing once it has been reaped (its pid may be reused).

        Raises:
            OSError: from ``kill``, unmodified.
        """
        self._popen.send_signal(signum)

    def terminate(self) -> None:
        """Ask the child to exit (``SIGTERM``; ``TerminateProcess`` on Windows)."""
        self._popen.terminate()

    def kill(self) -> None:
        """Kill the child (``SIGKILL``)."""
        self._popen.kill()

    async def aclose(self) -> None:
        """Close the pipes; kill the child if it still runs, and reap it.  Works in a cancelled fiber too."""
        with CancelScope(shield=True):
            for stream in (self.stdin, self.stdout, self.stderr):
                if stream is not None:
                    stream.close()
            if self.poll() is None:
                try:
                    self.kill()
                except ProcessLookupError:
                    pass  # exited just now; the wait below reaps it
            await self.wait()

    def _close_pidfd(self) -> None:
        fd = self._pidfd
        self._pidfd = -1
        try:
            notify_closing(fd)  # a fiber watching it wakes (and sees the child reaped)
        except RuntimeError:
            pass  # no scheduler in this thread: nobody can be watching
        finally:
            os.close(fd)

    async def __aenter__(self) -> Process:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if getattr(self, "_pidfd", -1) >= 0:
            os.close(self._pidfd)  # finalizers run outside any fiber: nobody waits on it

    def __repr__(self) -> str:
        state = "running" if self._popen.returncode is None else f"returncode={self._popen.returncode}"
        return f"<Process pid={self.pid} {state}>"


async def open_process(args, *, stdin=None, stdout=None, stderr=None, **options) -> Process:
    """Spawn ``args`` (a list, or a string for ``shell=True``) with ``subprocess.Popen``.

    ``stdin``/``stdout``/``stderr``: ``PIPE`` (a stream on the ``Process``),
    ``DEVNULL``, ``None`` (inherit), ``STDOUT`` (stderr only), an fd or a
    file object.  Other keywords go to ``Popen`` (``cwd``, ``env``,
    ``pass_fds``, ``start_new_session``...), except text-mode ones.

    Raises:
        OSError: from ``pipe``, ``fork``/``exec`` (``FileNotFoundError``...) or ``pidfd_open``, unmodified.
        ValueError: ``args`` is empty.
        TypeError: ``args`` is not a sequence or string, or a text-mode option was given.
        NotImplementedError: ``PIPE`` where the pools cannot wait on pipes
            and there is no completion port either (no such platform today).
    """
    if isinstance(args, (str, bytes, os.PathLike)):
        if not os.fspath(args):
            raise ValueError("args must name a program, not be empty")
    else:
        try:
            empty = len(args) == 0
        except TypeError:
            raise TypeError(f"args must be a sequence of program arguments or a string, not {args!r}") from None
        if empty:
            raise ValueError("args must name a program: the sequence is empty")
    for name in _TEXT_OPTIONS:
        if options.get(name):
            raise TypeError(f"poorio processes carry bytes: {name}= is not supported")
    if not (POLLS_PIPES or PIPES_ARE_OPERATIONS) and any(
        isinstance(spec, int) and spec == PIPE for spec in (stdin, stdout, stderr)
    ):  # pragma: no cover - no platform today: Windows has its completion port
        raise NotImplementedError(
            "poorio cannot stream a child's pipes here: this platform's pools wait on sockets only; "
            "pass files or DEVNULL, or run subprocess.run in a worker thread (poorio.run_in_thread)"
        )
    import subprocess  # imports select and selectors: only for programs that spawn

    options.setdefault("close_fds", True)
    mine = []  # our ends, as streams: closed if the spawn fails
    child = []  # the child's ends, closed in the parent after the spawn
    try:
        specs = []
        for spec, child_reads in ((stdin, True), (stdout, False), (stderr, False)):
            if isinstance(spec, int) and spec == PIPE:
                theirs, stream = _pipe_for_child(child_reads)
                mine.append(stream)
                child.append(theirs)
                specs.append((theirs, stream))
            else:
                specs.append((spec, None))
        popen = subprocess.Popen(args, stdin=specs[0][0], stdout=specs[1][0], stderr=specs[2][0], **options)
    except BaseException:
        for stream in mine:
            stream.close()
        for fd in child:
            os.close(fd)
        raise
    for fd in child:
        os.close(fd)
    try:
        pidfd = _open_pidfd(popen.pid)
    except BaseException:
        for stream in mine:
            stream.close()
        popen.kill()
        popen.wait()  # SIGKILL: the reap is immediate
        raise
    return Process(popen, *(stream for _, stream in specs), pidfd)


def _pipe_for_child(child_reads: bool) -> tuple:
    """A new pipe: (the child's end, an fd for ``Popen``; our end, a stream).

    Where the pools wait on pipes, an ``os.pipe()``: both ends close-on-exec
    (``Popen`` dup2()s the child's onto 0/1/2), ours made non-blocking (the
    child's is another open file description: it stays blocking).  On
    Windows an overlapped end for us, a ``ProactorStream``, and a
    synchronous one for the child (see ``iocp.pipe``), as a C runtime fd.
    """
    if PIPES_ARE_OPERATIONS:  # pragma: no cover - Windows (and Wine)
        import msvcrt

        from .platform.iocp import close_handle

        reader, writer = overlapped_pipe((not child_reads, child_reads))
        ours, theirs = (writer, reader) if child_reads else (reader, writer)
        try:
            # The fd owns the handle from here: os.close() closes both.
            return msvcrt.open_osfhandle(theirs, os.O_RDONLY if child_reads else os.O_WRONLY), ours
        except BaseException:
            ours.close()
            close_handle(theirs)
            raise
    r, w = os.pipe()
    ours, theirs = (w, r) if child_reads else (r, w)
    try:
        return theirs, FdStream(ours)
    except BaseException:
        os.close(r)
        os.close(w)
        raise


_pidfds_work = True  # False once pidfd_open said "not here": do not ask again


def _open_pidfd(pid: int) -> int:
    global _pidfds_work
    if not _pidfds_work:
        return -1
    try:
        return _pidfd.pidfd_open(pid)
    except OSError as error:
        if error.errno not in _pidfd.UNAVAILABLE_ERRNOS:
            raise
        _pidfds_work = False
        return -1


async def run_process(args, *, input: bytes | None = None, capture_output: bool = False, check: bool = False,
                      stdin=None, stdout=None, stderr=None, **options):
    """Run ``args`` to the end, like ``subprocess.run``; return a ``subprocess.CompletedProcess``.

    ``input`` is written to the child's stdin (then closed); with
    ``capture_output`` (or ``stdout=PIPE``/``stderr=PIPE``) the output is
    collected in memory.  Cancelled, the child is killed and reaped.

    Raises:
        subprocess.CalledProcessError: ``check`` and a non-zero exit status.
        OSError: spawning failed (as ``open_process``).
        Cancelled: the fiber was cancelled (the child was killed and reaped).
    """
    if input is not None:
        if stdin is not None:
            raise ValueError("run_process(): give stdin or input, not both")
        stdin = PIPE
    if capture_output:
        if stdout is not None or stderr is not None:
            raise ValueError("run_process(): capture_output with stdout or stderr")
        stdout = stderr = PIPE
    out = bytearray()
    err = bytearray()
    async with await open_process(args, stdin=stdin, stdout=stdout, stderr=stderr, **options) as proc:
        async with Group() as group:
            if proc.stdin is not None:
                group.spawn(_feed, proc.stdin, input or b"")
            if proc.stdout is not None:
                group.spawn(_drain, proc.stdout, out)
            if proc.stderr is not None:
                group.spawn(_drain, proc.stderr, err)
        code = await proc.wait()
    import subprocess

    stdout_data = bytes(out) if proc.stdout is not None else None
    stderr_data = bytes(err) if proc.stderr is not None else None
    if check and code:
        raise subprocess.CalledProcessError(code, proc.args, stdout_data, stderr_data)
    return subprocess.CompletedProcess(proc.args, code, stdout_data, stderr_data)


async def _feed(stream: FdStream, data: bytes) -> None:
    try:
        await stream.write_all(data)
    except BrokenPipeError:
        pass  # the child stopped reading: what it did with the input shows in its exit status
    finally:
        stream.close()


async def _drain(stream: FdStream, into: bytearray) -> None:
    while True:
        chunk = await stream.read_some()
        if not chunk:
            return
        into += chunk
