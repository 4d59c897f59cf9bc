"""Steady state: how long every measurement warms up, how long its window is, and how it is judged.

The policy is written once, here, and every family uses it:

* **Warm until stable.**  A server gets a *priming* pass on connections of
  its own, which runs until its rate is stable (the last three slices of
  ``SLICE_S`` agree within ``STABLE_TOLERANCE``), at least
  ``PRIME_MIN_S`` and at most ``PRIME_MAX_S``.  Then the measured load
  connects afresh and warms up again the same way (``WARMUP_MIN_S`` ..
  ``WARMUP_MAX_S``) before its window opens.  A worker (switches, channels)
  repeats a warm-up pass until three passes in a row agree.
* **A window of ``WINDOW_S`` in two halves.**  The rate of each half is kept;
  halves that differ by more than ``HALVES_TOLERANCE`` (of their mean) mean
  the window was not steady, and the report flags the row.
* ``--quick`` runs fewer cases and repetitions, never shorter warm-ups or
  windows: these constants have no quick variant on purpose.

Why so long: a fresh asyncio server starts slowly.  The suite's
``asyncio-protocol`` server did about 40k round trips/s in its first second
under ``echoload`` and about 120k once warm -- in the same process, on the
same quiet machine; the old quick mode (0.4 s warm-up, 0.6 s window)
measured 31k, and made every ratio to asyncio 2-4x too good.  See
``benchmarks/README.md``, "Why the warm-up and window are this long".

The functions here are pure or take the measured work as a callable, so
they serve the runner (``echo``), the worker processes (``bench_sched``,
``bench_channels``) and a family that drives an outside load tool a slice
at a time (``warm_until_stable`` + ``window_in_halves``).
"""

from __future__ import annotations

import time

from .machine import OthersCpu

SLICE_S = 0.5  # the rate is watched in slices this long
STABLE_SLICES = 3  # stable: this many slices in a row agree ...
STABLE_TOLERANCE = 0.05  # ... within this fraction of their mean
PRIME_MIN_S = 2.0  # the priming pass, on connections of its own
PRIME_MIN_S_PYPY = 5.0  # PyPy's JIT compiles the hot loop in its first seconds
PRIME_MAX_S = 20.0
WARMUP_MIN_S = 1.0  # the measured connections' own warm-up
WARMUP_MAX_S = 10.0
WINDOW_S = 5.0  # the measured window; its halves must agree ...
HALVES_TOLERANCE = 0.10  # ... within this fraction of their mean

WORKER_PASSES_MIN = 3  # a worker's warm-up passes: at least this many ...
WORKER_PASSES_MAX = 20  # ... at most this many ...
WORKER_WARM_MAX_S = 15.0  # ... or this long
WORKER_TOLERANCE = 0.10  # three passes within 10%: short passes jitter more than slices


def spread(a: float, b: float) -> float:
    """How far two rates differ, as a fraction of their mean (0.0 when both are 0)."""
    mean = (a + b) / 2
    return abs(a - b) / mean if mean else 0.0


def halves_agree(halves) -> bool:
    """Whether a window's two half rates agree within ``HALVES_TOLERANCE``."""
    return spread(*halves) <= HALVES_TOLERANCE


def stable(rates, count: int = STABLE_SLICES, tolerance: float = STABLE_TOLERANCE) -> bool:
    """Whether the last ``count`` rates agree: max - min <= tolerance x their mean."""
    if len(rates) < count:
        return False
    last = rates[-count:]
    mean = sum(last) / count
    return mean > 0 and max(last) - min(last) <= tolerance * mean


def warm_until_stable(load, min_s: float, max_s: float, slice_s: float = SLICE_S) -> dict:
    """Call ``load(slice_s) -> rate`` until the rate is stable (after ``min_s``) or ``max_s`` passed.

    For a family whose load tool measures one slice per call (e.g. ``wrk -d``).
    Returns ``{"rates": [...], "seconds": s, "stable": bool}``.
    """
    rates = []
    t0 = time.monotonic()
    while True:
        rates.append(load(slice_s))
        spent = time.monotonic() - t0
        if spent >= min_s and stable(rates):
            return {"rates": rates, "seconds": spent, "stable": True}
        if spent >= max_s:
            return {"rates": rates, "seconds": spent, "stable": False}


def window_in_halves(load, seconds: float = WINDOW_S) -> dict:
    """The measured window as two back-to-back halves: ``load(seconds / 2) -> rate`` twice.

    Returns ``{"rate": mean of the halves, "halves": [a, b]}``.
    """
    a = load(seconds / 2)
    b = load(seconds / 2)
    return {"rate": (a + b) / 2, "halves": [a, b]}


def worker_window(run_once, n: int, warm_n: int) -> dict:
    """Warm a worker's scenario, then time it in two halves.

    ``run_once(k) -> seconds`` does k units of work on a fresh loop.  Warm-up
    passes of ``warm_n`` units repeat until three agree within
    ``WORKER_TOLERANCE`` (at least ``WORKER_PASSES_MIN`` passes, at most
    ``WORKER_PASSES_MAX`` or ``WORKER_WARM_MAX_S``); then two passes of
    ``n // 2`` units are the window's halves.  Returns rates in units/s:
    ``{"rate", "halves", "seconds", "warm_passes", "warm_stable"}`` and,
    where ``/proc`` tells, ``others_cpu_pct`` (other processes during the window).
    """
    rates = []
    t0 = time.monotonic()
    warm_stable = False
    while len(rates) < WORKER_PASSES_MAX and time.monotonic() - t0 < WORKER_WARM_MAX_S:
        rates.append(warm_n / run_once(warm_n))
        if len(rates) >= WORKER_PASSES_MIN and stable(rates, tolerance=WORKER_TOLERANCE):
            warm_stable = True
            break
    half = max(1, n // 2)
    with OthersCpu() as others:
        first, second = run_once(half), run_once(half)
    result = {
        "rate": 2 * half / (first + second),
        "halves": [half / first, half / second],
        "seconds": first + second,
        "warm_passes": len(rates),
        "warm_stable": warm_stable,
    }
    if others.pct is not None:
        result["others_cpu_pct"] = others.pct
    return result
