"""The catalogue: every benchmark case, the implementations it compares, and what each needs.

A *case* is one measurement with fixed parameters (echo with 100
connections of 1 KiB; a pool cycle with 1,000 idle fds ...).  It names a
*kind* -- how the runner executes it (``worker``: a function in a
subprocess; ``echo``: a server subprocess against the compiled load
generator; ``idle``: a server holding idle connections; ``import``: a bare
interpreter importing one module) -- the metric that is its headline, and
the implementation all others are divided by (asyncio's, on CPython).

An *impl* names what it ``requires`` as ``module`` or ``module:attribute``
strings.  The runner probes each interpreter for them once and skips, with
the reason printed, any impl whose requirement is missing -- a peer not
installed, or a poorio layer that has not landed yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CPYTHON_ONLY = ("cpython",)
BOTH = ("cpython", "pypy")


@dataclass(frozen=True)
class Impl:
    id: str  # shown in tables; also the argument given to the server/worker
    requires: tuple = ()
    interps: tuple = BOTH
    arg: str = ""  # what the server/worker is given, when it differs from id
    note: str = ""

    @property
    def name(self) -> str:
        return self.arg or self.id


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    fmt: str  # format spec for one value
    better: str = "higher"  # or "lower"


@dataclass(frozen=True)
class Case:
    id: str
    scenario: str
    title: str
    kind: str
    impls: tuple
    metric: Metric
    baseline: str  # impl id the headline ratios divide by (on CPython)
    params: dict = field(default_factory=dict)
    quick: dict = field(default_factory=dict)  # overrides of params under --quick
    target: str = ""  # MODULE:FUNCTION for kind "worker"
    extras: tuple = ()  # more metrics shown beside the headline
    quick_reps: int = 0  # at most this many repetitions under --quick (0: no cap)

    def params_for(self, quick: bool) -> dict:
        params = dict(self.params)
        if quick:
            params.update(self.quick)
        return params

    def title_for(self, quick: bool) -> str:
        """The title with this mode's parameters filled in ("{n:,} tasks")."""
        return self.title.format(**self.params_for(quick))


# -- the implementations -------------------------------------------------------------

# Where the fiber API is defined (poorio_api.get prefers the package's own exports).
POORIO_SCHED = ("poorio:run", "poorio:spawn", "poorio:sleep")
POORIO_WAIT = POORIO_SCHED + ("poorio:wait_readable", "poorio:wait_writable")

ECHO_IMPLS = (
    Impl("asyncio-streams"),
    Impl("asyncio-protocol"),
    Impl("uvloop-streams", ("uvloop",), CPYTHON_ONLY),
    Impl("uvloop-protocol", ("uvloop",), CPYTHON_ONLY),
    Impl("trio", ("trio",)),
    Impl("poorio-aio-streams", ("poorio.aio:new_event_loop",), note="asyncio streams on poorio.aio's loop"),
    Impl("poorio-aio-protocol", ("poorio.aio:new_event_loop",), note="asyncio protocol on poorio.aio's loop"),
    Impl("poorio-events", ("poorio.events:EventSet",), note="event-set callbacks, no fibers"),
    Impl("poorio-fibers", POORIO_SCHED + ("poorio.net:listen_tcp",), note="fibers on poorio's IO objects"),
    Impl(
        "poorio-rawfibers",
        POORIO_WAIT,
        note="fibers on poorio.wait_readable + raw non-blocking sockets: the scheduler by itself",
    ),
    Impl("poorio-pool", ("poorio.platform:new_pool",), note="hand-written loop on SocketIoPool (epoll): the platform layer alone"),
    Impl("poorio-pool-poll", ("poorio.platform:new_pool",), note="the same loop on the poll backend"),
    Impl("selectors-loop", note="the same hand-written loop on the stdlib's selectors (epoll)"),
    Impl("c-epoll", interps=("native",), note="C epoll server: the load generator's ceiling"),
)

IDLE_IMPLS = tuple(i for i in ECHO_IMPLS if i.id in (
    "asyncio-streams", "asyncio-protocol", "uvloop-streams", "trio",
    "poorio-aio-streams", "poorio-events", "poorio-fibers", "poorio-rawfibers", "poorio-pool", "selectors-loop",
))

LOOP_IMPLS = (
    Impl("asyncio"),
    Impl("uvloop", ("uvloop",), CPYTHON_ONLY),
    Impl("trio", ("trio",)),
    Impl("poorio-aio", ("poorio.aio:new_event_loop",), note="asyncio on poorio.aio's loop"),
    Impl("poorio", POORIO_SCHED, note="poorio fibers"),
)

CHANNEL_IMPLS = (
    Impl("asyncio", note="asyncio.Queue"),
    Impl("uvloop", ("uvloop",), CPYTHON_ONLY, note="asyncio.Queue on uvloop"),
    Impl("trio", ("trio",), note="trio memory channels (unbuffered)"),
    Impl("poorio-aio", ("poorio.aio:new_event_loop",), note="asyncio.Queue on poorio.aio's loop"),
    Impl("poorio-channel", POORIO_SCHED + ("poorio.ops:Channel",), note="poorio.ops.Channel (rendezvous)"),
    Impl("poorio-queue", POORIO_SCHED + ("poorio.ops:Queue",), note="poorio.ops.Queue(1)"),
)

POOL_IMPLS = (
    Impl("poorio-epoll", ("poorio.platform:new_pool",)),
    Impl("poorio-poll", ("poorio.platform:new_pool",)),
    Impl("selectors-epoll", note="stdlib selectors.EpollSelector, what asyncio uses on Linux"),
    Impl("selectors-poll", note="stdlib selectors.PollSelector"),
)

IMPORT_IMPLS = (
    Impl("asyncio", arg="asyncio"),
    Impl("uvloop", ("uvloop",), CPYTHON_ONLY, arg="uvloop"),
    Impl("trio", ("trio",), arg="trio"),
    Impl("poorio", ("poorio",), arg="poorio"),
    Impl(
        "poorio-net",
        ("poorio", "poorio.ops", "poorio.net"),
        arg="poorio, poorio.ops, poorio.net",
        note="what a fiber network program imports: scheduler, ops and net",
    ),
)

# -- the metrics ---------------------------------------------------------------------

RT_PER_S = Metric("rt_per_s", "round trips/s", ",.0f")
ECHO_EXTRAS = (
    Metric("mb_per_s", "MB/s", ".1f"),
    Metric("p99_us", "p99 µs", ",.0f", "lower"),
    Metric("server_cpu_pct", "server CPU %", ".0f", "lower"),
    Metric("gen_cpu_pct", "load-gen CPU %", ".0f", "lower"),
)


def _echo(conns: int, size: int, label: str, quick_reps: int = 0) -> Case:
    return Case(
        id=f"echo-{label}",
        scenario="echo",
        title=f"TCP echo, {conns:,} connections × {size // 1024} KiB ping-pong",
        kind="echo",
        impls=ECHO_IMPLS,
        metric=RT_PER_S,
        baseline="asyncio-streams",
        # PyPy's JIT needs longer to warm up than CPython's caches
        params={"conns": conns, "size": size, "duration": 4.0, "warmup": 1.0, "warmup_pypy": 3.0},
        quick={"duration": 0.6, "warmup": 0.4, "warmup_pypy": 1.2},
        extras=ECHO_EXTRAS,
        quick_reps=quick_reps,
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
        params={"fds": fds, "seconds": 0.5},
        quick={"seconds": 0.15},
        extras=(Metric("add_us_per_fd", "add µs/fd", ".2f", "lower"),),
    )


CASES = (
    _echo(100, 1024, "100x1k"),
    _echo(1000, 1024, "1000x1k", quick_reps=2),
    _echo(100, 16384, "100x16k", quick_reps=2),
    *(_pool(n) for n in (10, 100, 1000, 10000)),
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
        quick={"n": 50_000},
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
        params={"n": 100_000, "traced": True},
        quick={"n": 50_000, "traced": False},  # tracemalloc's extra pass is slow: full runs only
        extras=(
            Metric("rss_bytes_per_task", "peak RSS B/task", ",.0f", "lower"),
            Metric("traced_bytes_per_task", "traced B/task", ",.0f", "lower"),
        ),
    ),
    Case(
        id="sched-sleeps",
        scenario="scheduler",
        title="{n:,} concurrent random sleeps of 0–1 s",
        kind="worker",
        target="benchmarks.bench_sched:sleeps",
        impls=LOOP_IMPLS,
        metric=Metric("finish_s", "finish s", ".2f", "lower"),
        baseline="asyncio",
        params={"n": 100_000},
        quick={"n": 30_000},
        extras=(
            Metric("late_p50_ms", "late p50 ms", ",.0f", "lower"),
            Metric("late_p99_ms", "late p99 ms", ",.0f", "lower"),
        ),
        quick_reps=2,
    ),
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
        quick={"n": 30_000},
    ),
    Case(
        id="import",
        scenario="footprint",
        title="import time and RSS over bare Python",
        kind="import",
        impls=IMPORT_IMPLS,
        metric=Metric("import_ms", "import ms", ".1f", "lower"),
        baseline="asyncio",
        extras=(Metric("rss_mb", "+RSS MB", ".2f", "lower"),),
    ),
    Case(
        id="idle-1000",
        scenario="footprint",
        title="server RSS with {conns:,} idle connections",
        kind="idle",
        impls=IDLE_IMPLS,
        metric=Metric("conn_rss_mb", "+RSS MB for 1,000 conns", ".2f", "lower"),
        baseline="asyncio-streams",
        params={"conns": 1000},
        extras=(
            Metric("kb_per_conn", "KB/conn", ".1f", "lower"),
            Metric("total_rss_mb", "total RSS MB", ".1f", "lower"),
        ),
        quick_reps=2,
    ),
)


def all_requirements() -> list:
    """Every requirement string named anywhere in the catalogue."""
    seen = []
    for case in CASES:
        for impl in case.impls:
            for req in impl.requires:
                if req not in seen:
                    seen.append(req)
    return seen
