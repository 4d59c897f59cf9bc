"""Subprocesses against real children (sys.executable -c): pipes, exit codes, signals, reaping, each exit-wait mechanism."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import threading

import pytest

from fiber_helpers import backend, run  # noqa: F401 (fixtures)
from poorio import Group, fail_after, move_on_after, process, sleep
from poorio.platform import pidfd
from poorio.process import DEVNULL, PIPE, STDOUT, open_process, run_process

PY = sys.executable
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ECHO = "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"
SLEEPER = "import time; time.sleep(30)"


def assert_reaped(pid: int) -> None:
    """No zombie: the child is gone and already reaped."""
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    assert not os.path.exists(f"/proc/{pid}") or _state(pid) != "Z"


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@pytest.fixture(params=["pidfd", "sigchld"])
def mechanism(request, monkeypatch):
    """Each test that takes it runs with pidfds (where they work) and with the SIGCHLD fallback."""
    if request.param == "pidfd" and not pidfd.available():
        pytest.skip("no pidfd_open here")
    monkeypatch.setattr(process, "_pidfds_work", request.param == "pidfd")
    return request.param


def test_megabytes_through_a_child_arrive_intact(backend, mechanism):
    data = os.urandom(1 << 20) * 4

    async def main():
        with fail_after(20):
            result = await run_process([PY, "-c", ECHO], input=data, capture_output=True, check=True)
        assert result.returncode == 0 and result.stderr == b""
        assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(data).digest()

    run(main, backend=backend)


def test_exit_codes_and_check(backend, mechanism):
    async def main():
        result = await run_process([PY, "-c", "import sys; sys.exit(7)"])
        assert result.returncode == 7 and result.stdout is None
        with pytest.raises(subprocess.CalledProcessError) as info:
            await run_process([PY, "-c", "import sys; print('out'); sys.exit(3)"], capture_output=True, check=True)
        assert info.value.returncode == 3 and info.value.stdout.strip() == b"out"

    run(main, backend=backend)


def test_streams_and_wait(backend, mechanism):
    async def main():
        async with await open_process([PY, "-c", ECHO], stdin=PIPE, stdout=PIPE, stderr=DEVNULL) as proc:
            assert proc.stderr is None and proc.returncode is None
            await proc.stdin.write_all(b"line one\nline two\n")
            proc.stdin.close()
            assert await proc.stdout.read_line() == b"line one\n"
            assert await proc.stdout.read_line() == b"line two\n"
            assert await proc.stdout.read_some() == b""
            assert await proc.wait() == 0
            assert proc.returncode == 0 and "returncode=0" in repr(proc)
        assert_reaped(proc.pid)

    run(main, backend=backend)


def test_stderr_to_stdout(backend):
    async def main():
        code = "import sys; sys.stderr.write('err'); sys.stderr.flush(); sys.stdout.write('out')"
        result = await run_process([PY, "-c", code], stdout=PIPE, stderr=STDOUT)
        assert sorted([result.stdout[:3], result.stdout[3:]]) == [b"err", b"out"]

    run(main, backend=backend)


def test_signals(backend, mechanism):
    # The child writes with os.write: a handler using sys.stdout can land while
    # print('ready') is still inside the buffered writer ("reentrant call").
    code = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGUSR1, lambda *a: os.write(1, b'usr1\\n'))\n"
        "os.write(1, b'ready\\n')\n"
        "time.sleep(30)\n"
    )

    async def main():
        async with await open_process([PY, "-c", code], stdout=PIPE) as proc:
            assert await proc.stdout.read_line() == b"ready\n"
            proc.send_signal(signal.SIGUSR1)
            assert await proc.stdout.read_line() == b"usr1\n"
            proc.terminate()
            assert await proc.wait() == -signal.SIGTERM
            proc.kill()  # reaped already: a no-op, never a signal to a reused pid
        async with await open_process([PY, "-c", SLEEPER]) as proc:
            proc.kill()
            assert await proc.wait() == -signal.SIGKILL
        assert_reaped(proc.pid)

    run(main, backend=backend)


def test_aclose_kills_and_reaps(backend, mechanism):
    async def main():
        async with await open_process([PY, "-c", SLEEPER], stdin=PIPE, stdout=PIPE) as proc:
            pass
        assert proc.returncode == -signal.SIGKILL
        assert proc.stdin.closed and proc.stdout.closed
        assert_reaped(proc.pid)

    run(main, backend=backend)


def test_cancelled_run_process_kills_and_reaps(backend, mechanism):
    pids = []

    async def main():
        with move_on_after(0.3) as scope:
            proc = await open_process([PY, "-c", SLEEPER], stdout=PIPE)
            pids.append(proc.pid)
            async with proc:
                await proc.wait()
        assert scope.cancel_called
        with move_on_after(0.3) as scope:
            await run_process([PY, "-c", SLEEPER], capture_output=True)
        assert scope.cancel_called

    run(main, backend=backend)
    assert_reaped(pids[0])


def test_many_waiters_and_a_poll(backend, mechanism):
    async def main():
        proc = await open_process([PY, "-c", "import time; time.sleep(0.2)"])
        codes = []

        async def waiter():
            codes.append(await proc.wait())

        async def poller():
            while proc.poll() is None:  # reaps under the waiters' feet
                await sleep(0.01)

        async with Group() as group:
            for _ in range(3):
                group.spawn(waiter)
            group.spawn(poller)
        assert codes == [0, 0, 0]
        await proc.aclose()
        assert_reaped(proc.pid)

    run(main, backend=backend)


def test_wait_in_a_thread_without_pidfd(monkeypatch):
    """Outside the main thread there is no SIGCHLD event: a waitid(WNOWAIT) thread waits instead."""
    monkeypatch.setattr(process, "_pidfds_work", False)
    out = []

    async def main():
        async with await open_process([PY, "-c", "import time; time.sleep(0.1)"]) as proc:
            with move_on_after(0.01):
                await proc.wait()  # abandoned: must not reap behind our back
            out.append(await proc.wait())
        out.append(proc.pid)

    worker = threading.Thread(target=run, args=(main,))
    worker.start()
    worker.join(20)
    assert out[0] == 0
    assert_reaped(out[1])


def test_spawn_errors_pass_through_and_leak_nothing():
    async def main():
        with pytest.raises(FileNotFoundError) as info:
            await open_process(["/nonexistent/poorio-child"], stdin=PIPE, stdout=PIPE)
        assert info.value.errno == errno.ENOENT
        with pytest.raises(TypeError):
            await open_process([PY, "-c", "pass"], text=True)
        with pytest.raises(ValueError):
            await run_process([PY, "-c", "pass"], input=b"x", stdin=DEVNULL)

    run(main)


def test_pidfd_binding():
    if not pidfd.available():
        with pytest.raises(OSError) as info:
            pidfd.pidfd_open(os.getpid())
        assert info.value.errno in pidfd.UNAVAILABLE_ERRNOS
        return
    fd = pidfd.pidfd_open(os.getpid())
    try:
        assert not os.get_inheritable(fd)  # the kernel sets O_CLOEXEC on every pidfd
    finally:
        os.close(fd)
    with pytest.raises(ProcessLookupError):
        pidfd.pidfd_open(2**22 + 1)  # above the largest pid_max: no such process


@pytest.mark.parametrize("arch, number", [
    ("x86_64-linux-gnu", 434), ("aarch64-linux-gnu", 434), ("arm-linux-gnueabihf", 434),
    ("i386-linux-gnu", 434), ("s390x-linux-gnu", 434), ("riscv64-linux-gnu", 434),
    ("powerpc64le-linux-gnu", 434), ("x86_64-linux-gnux32", 434 | 0x40000000),
    ("mips64el-linux-gnuabi64", 5434), ("mips64el-linux-gnuabin32", 6434), ("mipsel-linux-gnu", 4434),
    ("alpha-linux-gnu", 544), ("unknown-thing", None),
])
def test_pidfd_syscall_numbers(monkeypatch, arch, number):
    monkeypatch.setattr(pidfd, "MULTIARCH", arch)
    assert pidfd._syscall_number() == number


def test_demo_subprocess_pipe():
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([PY, os.path.join(ROOT, "demos", "subprocess_pipe.py")], env=env,
                         capture_output=True, timeout=60, check=True)
    assert b"HELLO FROM A FIBER" in out.stdout
    assert b"sha256 match: True" in out.stdout


def test_signal_handler_restored_after_sigchld_wait(monkeypatch):
    monkeypatch.setattr(process, "_pidfds_work", False)
    before = signal.getsignal(signal.SIGCHLD)

    async def main():
        await run_process([PY, "-c", "pass"])
        assert signal.getsignal(signal.SIGCHLD) == before  # the last waiter left: handler put back

    run(main)
    assert signal.getsignal(signal.SIGCHLD) == before


def test_an_empty_or_wrong_command_is_a_clear_error_and_spawns_nothing(backend):
    """open_process([]) raised IndexError from inside subprocess."""

    async def main():
        for empty in ([], (), "", b""):
            with pytest.raises(ValueError, match="args must name a program"):
                await open_process(empty, stdout=PIPE)
        with pytest.raises(TypeError, match="args must be a sequence"):
            await open_process(42)
        with pytest.raises(ValueError, match="args"):
            await run_process([])
        return (await run_process([sys.executable, "-c", "print('ok')"], stdout=PIPE)).stdout

    assert run(main, backend=backend) == b"ok\n"
