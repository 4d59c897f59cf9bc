"""Random fiber programs: every fiber ends, nothing stays registered, no error is lost.

Hypothesis draws programs of fibers that sleep, wait on real sockets, write
to them, cancel and join each other, raise, spawn more fibers, open groups,
run steps under timeouts and shields.  After each program has ended, the
test checks:

* every fiber has finished;
* the event set holds no event, fd or timer, and no fiber is alive;
* every error a fiber raised was seen -- by a join, inside a group's
  ``ExceptionGroup``, or in the log line for a failed fiber nobody joined
  (the main fiber waits for the others without joining them, so that
  last path is exercised).
"""

from __future__ import annotations

import itertools
import logging
import socket

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fiber_helpers import run  # noqa: E402
from poorio import CancelScope, Group, current, move_on_after, sleep, spawn, wait_readable  # noqa: E402
from poorio.errors import BaseExceptionGroup, BusyResourceError, Cancelled  # noqa: E402
from poorio.platform import backends  # noqa: E402

PAIRS = 3  # socketpairs shared by the fibers of one program


class ProgramError(Exception):
    """An error a program raises on purpose; ``args[0]`` is its unique number."""


class World:
    """What the fibers of one program share."""

    def __init__(self, pairs) -> None:
        self.pairs = pairs
        self.fibers = []  # every fiber spawned, in order: targets for cancel and join
        self.raised = set()  # numbers of the ProgramErrors raised
        self.seen = set()  # numbers of the ProgramErrors someone saw
        self.numbers = itertools.count()

    def see(self, error: BaseException) -> None:
        if isinstance(error, ProgramError):
            self.seen.add(error.args[0])
        elif isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                self.see(inner)


async def act_sleep(world, seconds):
    await sleep(seconds)


async def act_read(world, i):
    sock = world.pairs[i][0]
    with move_on_after(0.004):
        try:
            await wait_readable(sock)
        except BusyResourceError:
            return
        try:
            sock.recv(1024)
        except BlockingIOError:  # another fiber drained it first
            pass


async def act_write(world, i):
    world.pairs[i][1].send(b"x")


async def act_cancel(world, j):
    if j < len(world.fibers):
        world.fibers[j].cancel()


async def act_fail(world, _):
    number = next(world.numbers)
    world.raised.add(number)
    raise ProgramError(number)


async def act_join(world, j):
    if j >= len(world.fibers) or world.fibers[j] is current():
        return
    target = world.fibers[j]
    with move_on_after(0.008):
        try:
            await target.join()
        except Cancelled:
            if not target.cancelled():
                raise
        except (ProgramError, BaseExceptionGroup) as error:
            world.see(error)


async def act_spawn(world, script):
    world.fibers.append(spawn(execute, world, script))


async def act_group(world, scripts):
    async with Group() as g:
        for script in scripts:
            world.fibers.append(g.spawn(execute, world, script))
        await sleep(0)


async def act_timeout(world, arg):
    seconds, script = arg
    with move_on_after(seconds):
        await execute(world, script)


async def act_shield(world, script):
    with CancelScope(shield=True):
        await execute(world, script)


async def execute(world, script):
    for action, arg in script:
        await action(world, arg)


_leaf = st.one_of(
    st.tuples(st.just(act_sleep), st.sampled_from([0, 0, 0.001, 0.003])),
    st.tuples(st.just(act_read), st.integers(0, PAIRS - 1)),
    st.tuples(st.just(act_write), st.integers(0, PAIRS - 1)),
    st.tuples(st.just(act_cancel), st.integers(0, 9)),
    st.tuples(st.just(act_join), st.integers(0, 9)),
    st.tuples(st.just(act_fail), st.none()),
)


def _extend(actions):
    script = st.lists(actions, max_size=4)
    return st.one_of(
        st.tuples(st.just(act_spawn), script),
        st.tuples(st.just(act_group), st.lists(script, min_size=1, max_size=3)),
        st.tuples(st.just(act_timeout), st.tuples(st.sampled_from([0, 0.002, 0.01]), script)),
        st.tuples(st.just(act_shield), script),
    )


_action = st.recursive(_leaf, _extend, max_leaves=12)
_program = st.lists(st.lists(_action, max_size=6), min_size=1, max_size=5)


class _Recorder(logging.Handler):
    def __init__(self, world) -> None:
        super().__init__(logging.ERROR)
        self.world = world

    def emit(self, record) -> None:
        if record.exc_info:
            self.world.see(record.exc_info[1])


async def _main(world, program):
    for script in program:
        world.fibers.append(spawn(execute, world, script))
    # Wait without joining: an error no fiber joined must reach the log.
    while not all(f.done() for f in world.fibers):
        await sleep(0.001)


@pytest.mark.parametrize("backend_name", backends())
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(program=_program)
def test_random_programs_end_clean_and_lose_no_error(backend_name, program):
    pairs = [socket.socketpair() for _ in range(PAIRS)]
    for a, b in pairs:
        a.setblocking(False)
        b.setblocking(False)
    world = World(pairs)
    recorder = _Recorder(world)
    logger = logging.getLogger("poorio")
    logger.addHandler(recorder)
    try:
        run(_main, world, program, backend=backend_name)  # also checks for leaks
    finally:
        logger.removeHandler(recorder)
        for a, b in pairs:
            a.close()
            b.close()
    assert all(f.done() for f in world.fibers)
    assert world.raised <= world.seen, f"lost errors: {sorted(world.raised - world.seen)}"
