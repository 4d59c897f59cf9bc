"""The catalogue: every family of cases the suite runs, in report order.

The types are in ``catalogue``; this module fills them in for the suite's
own scenarios (pool growth, the scheduler, channels, footprint) and lists
every family in ``FAMILIES`` -- the one place a new family is added
(``benchmarks/README.md``, "Adding a family of cases").

Parameters have no quick variant: ``--quick`` runs the cases marked
``quick`` and the rows whose impl lists the interpreter in ``quick``, with
the same sizes, warm-ups and windows as a full run.
"""

from __future__ import annotations

from . import echo_bench, targets
from .catalogue import CPYTHON_ONLY, Case, Family, Impl, Metric

# poorio's fiber API, by its public names only
POORIO_SCHED = ("poorio:run", "poorio:spawn", "poorio:sleep")

LOOP_IMPLS = (
    Impl("asyncio", quick=CPYTHON_ONLY),
    Impl("uvloop", ("uvloop",), CPYTHON_ONLY, quick=CPYTHON_ONLY),
    Impl("trio", ("trio",), quick=CPYTHON_ONLY),
    Impl("poorio-aio", ("poorio.aio:new_event_loop",), note="asyncio on poorio.aio's loop"),
    Impl("poorio", POORIO_SCHED, note="poorio fibers", quick=CPYTHON_ONLY),
)

CHANNEL_IMPLS = (
    Impl("asyncio", note="asyncio.Queue", quick=CPYTHON_ONLY),
    Impl("uvloop", ("uvloop",), CPYTHON_ONLY, note="asyncio.Queue on uvloop"),
    Impl("trio", ("trio",), note="trio memory channels (unbuffered)", quick=CPYTHON_ONLY),
    Impl("poorio-aio", ("poorio.aio:new_event_loop",), note="asyncio.Queue on poorio.aio's loop"),
    Impl("poorio-channel", POORIO_SCHED + ("poorio:Channel",), note="poorio.Channel (rendezvous)", quick=CPYTHON_ONLY),
    Impl("poorio-queue", POORIO_SCHED + ("poorio:Queue",), note="poorio.Queue(1)"),
)

POOL_IMPLS = (
    Impl("poorio-epoll", ("poorio.platform:new_pool",)),
    Impl("poorio-poll", ("poorio.platform:new_pool",)),
    Impl("selectors-epoll", note="stdlib selectors.EpollSelector, what asyncio uses on Linux"),
    Impl("selectors-poll", note="stdlib selectors.PollSelector"),
)

IMPORT_IMPLS = (
    Impl("asyncio", arg="asyncio", quick=CPYTHON_ONLY),
    Impl("uvloop", ("uvloop",), CPYTHON_ONLY, arg="uvloop"),
    Impl("trio", ("trio",), arg="trio", quick=CPYTHON_ONLY),
    Impl("poorio", ("poorio",), arg="poorio", quick=CPYTHON_ONLY),
    Impl("poorio-net", ("poorio", "poorio.net"), arg="poorio, poorio.net",
         note="what a fiber network program imports: poorio and its sockets"),
)


def _pool(fds: int) -> Case:
    return Case(
        id=f"pool-{fds}",
        scenario="pool",
        title=f"pool cycle with {fds:,} idle fds and one active",
        kind="worker",
        target="benchmarks.bench_pool:cycle_time",
        impls=POOL_IMPLS,
        metric=Metric("us_per_cycle", "µs/cycle", ".2f", "lower"),
        baseline="selectors-epoll",
        params={"fds": fds, "seconds": 1.0},
        extras=(Metric("add_us_per_fd", "add µs/fd", ".2f", "lower"),),
    )


POOL = Family("pool", "Pool cost growth", tuple(_pool(n) for n in (10, 100, 1000, 10000)))

SCHEDULER = Family("scheduler", "Scheduler", (
    Case(
        id="sched-switch",
        scenario="scheduler",
        title="sleep(0) context switches, two tasks × {n:,}",
        kind="worker",
        target="benchmarks.bench_sched:switches",
        impls=LOOP_IMPLS,
        metric=Metric("switches_per_s", "switches/s", ",.0f"),
        baseline="asyncio",
        params={"n": 500_000},
        quick=True,
    ),
    Case(
        id="sched-spawn",
        scenario="scheduler",
        title="spawn + join of {n:,} tasks",
        kind="worker",
        target="benchmarks.bench_sched:spawn_join",
        impls=LOOP_IMPLS,
        metric=Metric("seconds", "seconds", ".3f", "lower"),
        baseline="asyncio",
        params={"n": 100_000},
        extras=(
            Metric("rss_bytes_per_task", "peak RSS B/task", ",.0f", "lower"),
            Metric("traced_bytes_per_task", "traced B/task", ",.0f", "lower"),
        ),
        quick=True,
    ),
    Case(
        id="sched-sleeps",
        scenario="scheduler",
        title="{n:,} concurrent random sleeps of 0–1 s",
        kind="worker",
        target="benchmarks.bench_sched:sleeps",
        impls=LOOP_IMPLS,
        metric=Metric("late_p99_ms", "late p99 ms", ",.0f", "lower"),
        baseline="asyncio",
        params={"n": 100_000},
        extras=(
            Metric("late_p50_ms", "late p50 ms", ",.0f", "lower"),
            Metric("finish_s", "finish s", ".2f", "lower"),
        ),
        quick=True,
    ),
))

CHANNELS = Family("channels", "Channels", (
    Case(
        id="channel-pingpong",
        scenario="channels",
        title="channel ping-pong between two tasks, {n:,} round trips",
        kind="worker",
        target="benchmarks.bench_channels:pingpong",
        impls=CHANNEL_IMPLS,
        metric=Metric("round_trips_per_s", "round trips/s", ",.0f"),
        baseline="asyncio",
        params={"n": 200_000},
        quick=True,
    ),
))

FOOTPRINT = Family("footprint", "Footprint", (
    Case(
        id="import",
        scenario="footprint",
        title="import time and RSS over bare Python",
        kind="import",
        impls=IMPORT_IMPLS,
        metric=Metric("import_ms", "import ms", ".1f", "lower"),
        baseline="asyncio",
        extras=(Metric("rss_mb", "+RSS MB", ".2f", "lower"),),
        quick=True,
    ),
    Case(
        id="idle-1000",
        scenario="footprint",
        title="server RSS with {conns:,} idle connections",
        kind="idle",  # measured by echo_bench, which owns the servers
        impls=echo_bench.IDLE_IMPLS,
        metric=Metric("conn_rss_mb", "+RSS MB for 1,000 conns", ".2f", "lower"),
        baseline="asyncio-streams",
        params={"conns": 1000},
        extras=(
            Metric("kb_per_conn", "KB/conn", ".1f", "lower"),
            Metric("total_rss_mb", "total RSS MB", ".1f", "lower"),
        ),
    ),
))

# Every family, in report order.  A new family: its module, and one entry here.
FAMILIES = (
    echo_bench.FAMILY,
    POOL,
    SCHEDULER,
    CHANNELS,
    FOOTPRINT,
)

CASES = tuple(case for family in FAMILIES for case in family.cases)


def all_targets() -> tuple:
    """The issue's targets (``targets.ISSUE_15``), then every family's own."""
    return targets.ISSUE_15 + tuple(t for family in FAMILIES for t in family.targets)


def all_requirements() -> list:
    """Every requirement string named anywhere in the catalogue."""
    seen = []
    for case in CASES:
        for impl in case.impls:
            for req in impl.requires:
                if req not in seen:
                    seen.append(req)
    return seen
