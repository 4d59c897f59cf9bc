"""The suite's vocabulary, data only: implementations, metrics, cases, families and targets.

A *case* is one measurement with fixed parameters (echo with 100
connections of 1 KiB; a pool cycle with 1,000 idle fds ...).  It names a
*kind* -- how the runner executes it (``worker``: a function in a
subprocess; ``echo``: a server subprocess against the compiled load
generator; ...) -- its headline metric, and the implementation every other
row is divided by (its ``baseline``, on CPython).

A *family* is a module's worth of cases that belong together (TCP echo, the
scheduler, HTTP ...): their scenario title, the kinds of measurement they
bring (a kind is a function ``measure(runner, case, impl, interp) -> dict``),
and the targets they are judged by.  ``cases.FAMILIES`` lists them; adding a
family is one module and one line there (``benchmarks/README.md``).

An *impl* names what it ``requires`` as ``module`` or ``module:attribute``
strings.  The runner probes each interpreter for them once and skips, with
the reason printed, any impl whose requirement is missing.

``--quick`` runs fewer cases and rows, never shorter ones: a case is in it
when ``quick`` is true, and a row when its interpreter is in the impl's
``quick`` tuple.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

CPYTHON_ONLY = ("cpython",)
BOTH = ("cpython", "pypy")
NATIVE = ("native",)


@dataclass(frozen=True)
class Impl:
    id: str  # shown in tables; also the argument given to the server/worker
    requires: tuple = ()
    interps: tuple = BOTH
    arg: str = ""  # what the server/worker is given, when it differs from id
    note: str = ""
    quick: tuple = ()  # the interpreters it runs on under --quick (none: full runs only)

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
    title: str  # may name params: "{n:,} tasks"
    kind: str
    impls: tuple
    metric: Metric
    baseline: str  # impl id the headline ratios divide by (on CPython)
    params: dict = field(default_factory=dict)
    target: str = ""  # MODULE:FUNCTION for kind "worker"
    extras: tuple = ()  # more metrics shown beside the headline
    quick: bool = False  # part of --quick runs

    def title_for(self) -> str:
        """The title with the parameters filled in."""
        return self.title.format(**self.params)


@dataclass(frozen=True)
class Reading:
    """What a target measured: the value and the rows it was computed from."""

    value: float
    rows: tuple  # ((case id, impl, interp), ...)


@dataclass(frozen=True)
class Target:
    """One goal of the issue, checked against a run's summary.

    ``read(summary)`` returns a ``Reading`` or None when its rows were not
    measured; ``ok`` judges the value and ``shown`` formats it.
    """

    text: str
    read: Callable[[dict], Optional[Reading]]
    ok: Callable[[float], bool]
    shown: Callable[[float], str]


@dataclass(frozen=True)
class Family:
    scenario: str  # the cases' scenario, e.g. "echo"
    title: str  # its section title in RESULTS.md
    cases: tuple
    kinds: dict = field(default_factory=dict)  # kind -> measure(runner, case, impl, interp) -> metrics
    targets: tuple = ()
