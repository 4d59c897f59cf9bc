"""Actors in threads and processes: messages of every type, limits, floods, crashes, kills, parent exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import actor_targets as targets
import poorio
from fiber_helpers import run
from poorio import actors
from poorio.actors.codec import MAX_MESSAGE_SIZE, encode
from poorio.ops import choice, timeout_op

KINDS = ["thread", "process"]
LIMIT = 60  # seconds: a safety net, never a measurement


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


EVERY_TYPE = [
    None, True, False, 0, -(2**70), 3.25, "text é", b"\x00bytes", [1, [2]], (3, (4,)), {"k": {5: b"v"}, (6, 7): None},
]  # fmt: skip


def test_every_allowed_type_and_addresses_round_trip(kind):
    async def main():
        with poorio.fail_after(LIMIT):
            peer = actors.spawn(targets.echo, len(EVERY_TYPE) + 1, kind=kind)
            got = []
            for value in EVERY_TYPE + [actors.me()]:
                await peer.send((actors.me(), value))
                got.append(await actors.receive())
            return got, await peer.join(), actors.me()

    got, count, me = run(main)
    assert got[:-1] == EVERY_TYPE and [type(v) for v in got[:-1]] == [type(v) for v in EVERY_TYPE]
    assert got[-1] == me and count == len(EVERY_TYPE) + 1


def test_me_and_parent(kind):
    async def main():
        with poorio.fail_after(LIMIT):
            child = actors.spawn(targets.whoami, kind=kind)
            info = await child.join()
            return info, child, actors.me(), actors.parent()

    info, child, me, parent = run(main)
    assert info["me"] == child and info["parent"] == me and parent is None
    assert (info["pid"] == os.getpid()) == (kind == "thread")


def test_a_message_near_the_limit_goes_one_over_is_refused_at_the_sender(kind):
    overhead = len(encode((None, b"")))  # the echo's tuple around the payload, with an address in place of None
    async def main():
        with poorio.fail_after(LIMIT):
            peer = actors.spawn(targets.echo, 1, kind=kind)
            me = actors.me()
            room = MAX_MESSAGE_SIZE - len(encode((me, b"")))
            with pytest.raises(actors.MessageTooLargeError, match="limit"):
                await peer.send((me, b"x" * (room + 1)))
            big = os.urandom(room)
            await peer.send((me, big))
            back = await actors.receive()
            await peer.join()
            return back == big, len(big)

    same, size = run(main)
    assert same and size > MAX_MESSAGE_SIZE - 64 - overhead


def test_unsupported_types_fail_at_the_sender(kind):
    async def main():
        with poorio.fail_after(LIMIT):
            peer = actors.spawn(targets.echo, 1, kind=kind)
            with pytest.raises(TypeError, match="cannot carry"):
                await peer.send({"a set": {1}})
            with pytest.raises(TypeError, match="cannot carry"):
                actors.spawn(targets.echo, object(), kind=kind)
            await peer.send((actors.me(), "fine"))
            return await actors.receive(), await peer.join()

    assert run(main) == ("fine", 1)


def test_a_flood_waits_for_the_bounded_inbox_and_loses_nothing(kind):
    count = 400 if kind == "thread" else 3000  # a process has socket buffers to fill as well
    padding = b"p" * 2048
    delay = 0.3

    async def main():
        with poorio.fail_after(LIMIT):
            # Read before the spawn: the actor's delay may begin before spawn
            # returns, and a stall here would then eat into sent_after.
            start = time.monotonic()
            peer = actors.spawn(targets.slow_counter, delay, count, kind=kind, inbox_size=4)
            for number in range(count):
                await peer.send((number, padding))
            sent_after = time.monotonic() - start
            return await peer.join(), sent_after

    (received, in_order), sent_after = run(main)
    assert (received, in_order) == (count, True)
    assert sent_after >= delay * 0.8  # the sender had to wait for the receiver to drain


def test_a_crashing_actor_reports_type_message_and_traceback(kind):
    async def main():
        with poorio.fail_after(LIMIT):
            peer = actors.spawn(targets.crash, "boom", kind=kind)
            with pytest.raises(actors.ActorFailedError) as info:
                await peer.join()
            with pytest.raises(actors.ActorExitedError):
                await peer.send("anyone there?")
            return info.value

    error = run(main)
    assert (error.remote_type, error.remote_message) == ("ValueError", "boom")
    assert "in deep" in error.remote_traceback and "ValueError: boom" in error.remote_traceback
    assert "boom" in str(error) and error.exitcode is None


def test_an_exit_value_that_cannot_be_sent_is_a_failure(kind):
    async def main():
        with poorio.fail_after(LIMIT):
            with pytest.raises(actors.ActorFailedError, match="cannot be sent"):
                await actors.spawn(targets.unsendable_result, kind=kind).join()
            return True

    assert run(main)


def test_killing_an_actor(kind):
    async def main():
        with poorio.fail_after(LIMIT):
            peer = actors.spawn(targets.forever, kind=kind)
            pid = await actors.receive()
            peer.kill()
            with pytest.raises(actors.ActorFailedError) as info:
                await peer.join()
            peer.kill()  # already ended: nothing
            return pid, info.value

    pid, error = run(main)
    if kind == "process":
        assert error.exitcode == (-signal.SIGKILL if hasattr(signal, "SIGKILL") else error.exitcode)
        assert "killed" in error.remote_message or "exited" in error.remote_message
        assert sys.platform == "win32" or not targets.alive(pid)
    else:
        assert error.remote_type == "poorio.errors.Cancelled"


def test_actors_introduce_each_other(kind):
    async def main():
        with poorio.fail_after(LIMIT):
            first = actors.spawn(targets.introduce, kind=kind)
            second = actors.spawn(targets.echo, 1, kind=kind)
            await first.send((second, actors.me()))  # first tells second to answer me
            return await actors.receive(), await first.join(), await second.join()

    assert run(main) == ("introduced", "ok", 1)


@pytest.mark.parametrize("inner", KINDS)
def test_nested_actors_reach_the_root(kind, inner):
    async def main():
        with poorio.fail_after(LIMIT):
            middle = actors.spawn(targets.relay, inner, actors.me(), kind=kind)
            greeting = await actors.receive()
            return greeting, await middle.join(), middle

    (word, sender, senders_parent), result, middle = run(main)
    assert (word, result, senders_parent) == ("hello from", "greeted", middle)
    assert sender.path[: len(middle.path)] == middle.path


def test_receive_op_in_a_choice_with_a_timeout():
    async def main():
        actors.me()
        first = await choice(actors.receive_op(), timeout_op(0.02).wrap(lambda _: "timeout")).perform()
        await actors.me().send("to myself")
        second = await choice(actors.receive_op(), timeout_op(LIMIT).wrap(lambda _: "timeout")).perform()
        return first, second

    assert run(main) == ("timeout", "to myself")


def test_send_op_in_a_choice_with_a_timeout_sends_exactly_once(kind):
    async def main():
        with poorio.fail_after(LIMIT):
            peer = actors.spawn(targets.slow_counter, 0.3, 3, kind=kind, inbox_size=1)
            await peer.send((0, b""))  # fills the one slot (for a thread: a process link buffers more)
            outcomes = []
            for number in (1, 2):
                outcome = await choice(
                    peer.send_op((number, b"")).wrap(lambda _: "sent"), timeout_op(LIMIT).wrap(lambda _: "timeout")
                ).perform()
                outcomes.append(outcome)
            return outcomes, await peer.join()

    outcomes, (received, in_order) = run(main)
    assert outcomes == ["sent", "sent"] and (received, in_order) == (3, True)


def test_a_timed_out_send_is_not_sent():
    async def main():
        with poorio.fail_after(LIMIT):
            peer = actors.spawn(targets.slow_counter, 0.2, 2, kind="thread", inbox_size=1)
            await peer.send((0, b""))
            timed_out = await choice(
                peer.send_op((99, b"")).wrap(lambda _: "sent"), timeout_op(0.01).wrap(lambda _: "timeout")
            ).perform()
            await peer.send((1, b""))
            return timed_out, await peer.join()

    assert run(main) == ("timeout", (2, True))  # 99 never arrived: 0 then 1, in order


def test_bad_arguments_to_spawn():
    async def main():
        with pytest.raises(ValueError, match="kind"):
            actors.spawn(targets.echo, 1, kind="fiber")
        with pytest.raises(ValueError, match="inbox_size"):
            actors.spawn(targets.echo, 1, inbox_size=0)

        async def local():
            pass

        with pytest.raises(TypeError, match="importable by name"):
            actors.spawn(local, kind="process")
        with pytest.raises(ValueError, match="module:function"):
            actors.spawn("no_colon", kind="process")
        return True

    assert run(main)


def test_a_target_given_by_name():
    async def main():
        with poorio.fail_after(LIMIT):
            return await actors.spawn("actor_targets:whoami", kind="process").join()

    assert run(main)["pid"] != os.getpid()


def test_an_ending_parent_stops_and_reaps_its_actors():
    pids = []

    async def main():
        with poorio.fail_after(LIMIT):
            actors.spawn(targets.forever, kind="process")
            actors.spawn(targets.forever, kind="thread")
            pids.append(await actors.receive())
            pids.append(await actors.receive())
            # return with both still waiting: they end with us

    run(main)
    child = [pid for pid in pids if pid != os.getpid()]
    assert len(child) == 1
    assert sys.platform == "win32" or not targets.alive(child[0])  # exited and reaped (a zombie would be "alive")
    deadline = time.monotonic() + LIMIT
    while _actor_threads() and time.monotonic() < deadline:  # its last step, after it reported its end
        time.sleep(0.01)
    assert _actor_threads() == []


def _actor_threads() -> list:
    return [t for t in threading.enumerate() if t.name.startswith("poorio actor")]


PARENT = textwrap.dedent(
    """
    import os, sys, poorio
    from poorio import actors
    import actor_targets as targets

    async def main():
        for _ in range(2):
            actors.spawn(targets.forever, kind="process")
        pids = [await actors.receive() for _ in range(2)]
        print(" ".join(map(str, pids)), flush=True)
        await poorio.sleep(60)

    poorio.run(main)
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL to kill the parent outright")
def test_a_killed_parent_takes_its_process_actors_with_it():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, env=env)
    try:
        line = parent.stdout.readline()
        pids = [int(word) for word in line.split()]
        assert len(pids) == 2, line
        parent.kill()
    finally:
        parent.wait()
        parent.stdout.close()
    deadline = time.monotonic() + 20
    while any(targets.alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(targets.alive(pid) for pid in pids)  # they saw EOF on their link and exited (init reaped them)


UNGUARDED = textwrap.dedent(
    """
    import poorio
    from poorio import actors

    async def work():
        return 1

    async def main():
        try:
            await actors.spawn(work, kind="process").join()
        except actors.ActorFailedError as error:
            print(error.remote_type, error.remote_message)

    poorio.run(main)  # not under `if __name__ == "__main__":`
    """
)


def test_a_main_script_without_the_main_guard_is_a_clear_failure(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(f"import sys; sys.path[:0] = {sys.path!r}\n" + UNGUARDED)  # PYTHONPATH is not honoured everywhere
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=LIMIT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("RuntimeError a process actor could not load the main script"), done.stdout
    assert 'if __name__ == "__main__":' in done.stdout
