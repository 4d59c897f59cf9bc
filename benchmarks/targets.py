"""Issue 9's targets, checked against a run's medians: met, missed, or not measured.

Each target names the case and rows it compares; ``evaluate`` turns a
summary into ``(target, measured, verdict)`` lines for RESULTS.md.  A target
whose rows were not measured in this run says so instead of guessing.
"""

from __future__ import annotations


def _median(summary, case, impl, interp, key):
    row = summary.get(case, {}).get((impl, interp))
    if not row:
        return None
    stats = row["stats"].get(key)
    return stats[0] if stats else None


def _ratio(summary, case, a, b, key, lower_is_better=False):
    """median(a) / median(b) (or b / a when lower is better); a and b are (impl, interp)."""
    va, vb = _median(summary, case, *a, key), _median(summary, case, *b, key)
    if not va or not vb:
        return None
    return vb / va if lower_is_better else va / vb


def evaluate(summary, quick: bool) -> list:
    """[(target text, measured text, verdict)] -- verdict is 'met', 'missed' or 'not measured'."""
    out = []

    def check(text, value, ok, shown):
        if value is None:
            out.append((text, "–", "not measured"))
        else:
            out.append((text, shown(value), "met" if ok(value) else "missed"))

    fibers = ("poorio-fibers", "cpython")
    rt = "rt_per_s"
    check("echo 100 × 1 KiB: poorio fibers ≥ 1.3× asyncio streams (CPython)",
          _ratio(summary, "echo-100x1k", fibers, ("asyncio-streams", "cpython"), rt),
          lambda r: r >= 1.3, lambda r: f"{r:.2f}×")
    check("echo 100 × 1 KiB: poorio fibers ≥ 1.0× asyncio protocol (CPython)",
          _ratio(summary, "echo-100x1k", fibers, ("asyncio-protocol", "cpython"), rt),
          lambda r: r >= 1.0, lambda r: f"{r:.2f}×")
    check("echo 100 × 1 KiB: poorio fibers on PyPy ≥ uvloop streams on CPython",
          _ratio(summary, "echo-100x1k", ("poorio-fibers", "pypy"), ("uvloop-streams", "cpython"), rt),
          lambda r: r >= 1.0, lambda r: f"{r:.2f}×")
    a = _median(summary, "echo-1000x1k", *fibers, rt)
    b = _median(summary, "echo-100x1k", *fibers, rt)
    check("echo 1,000 connections within 15% of the 100-connection rate (poorio fibers, epoll, CPython)",
          a / b if a and b else None, lambda r: r >= 0.85, lambda r: f"{r:.2f} of the 100-connection rate")
    check(f"spawn + join of {'50,000 (quick mode)' if quick else '100,000'}: poorio ≤ asyncio's time (CPython)",
          _ratio(summary, "sched-spawn", ("poorio", "cpython"), ("asyncio", "cpython"), "seconds", True),
          lambda r: r >= 1.0, lambda r: f"{r:.2f}× asyncio's speed")
    traced = _median(summary, "sched-spawn", "poorio", "cpython", "traced_bytes_per_task")
    rss = _median(summary, "sched-spawn", "poorio", "cpython", "rss_bytes_per_task")
    if traced is not None:
        check("spawn + join: ≤ 600 bytes per fiber (tracemalloc peak, CPython)", traced,
              lambda v: v <= 600, lambda v: f"{v:,.0f} B")
    else:
        check("spawn + join: ≤ 600 bytes per fiber (peak RSS growth, CPython; tracemalloc in full runs)", rss,
              lambda v: v <= 600, lambda v: f"{v:,.0f} B")
    check("sleep(0) switches ≥ 1.2× asyncio (CPython)",
          _ratio(summary, "sched-switch", ("poorio", "cpython"), ("asyncio", "cpython"), "switches_per_s"),
          lambda r: r >= 1.2, lambda r: f"{r:.2f}×")
    ch = "round_trips_per_s"
    check("channel ping-pong ≥ 1.0× asyncio.Queue (poorio Channel, CPython)",
          _ratio(summary, "channel-pingpong", ("poorio-channel", "cpython"), ("asyncio", "cpython"), ch),
          lambda r: r >= 1.0, lambda r: f"{r:.2f}×")
    check("channel ping-pong ≥ 2× trio (poorio Channel, CPython)",
          _ratio(summary, "channel-pingpong", ("poorio-channel", "cpython"), ("trio", "cpython"), ch),
          lambda r: r >= 2.0, lambda r: f"{r:.2f}×")
    n = "30,000 sleeps: quick mode" if quick else "100,000 sleeps"
    check(f"random sleeps: p99 lateness ≤ 200 ms (poorio, CPython; {n})",
          _median(summary, "sched-sleeps", "poorio", "cpython", "late_p99_ms"),
          lambda v: v <= 200, lambda v: f"{v:,.0f} ms")
    check("import poorio ≤ 15 ms (CPython)", _median(summary, "import", "poorio", "cpython", "import_ms"),
          lambda v: v <= 15, lambda v: f"{v:.1f} ms")
    check("import poorio ≤ 4 MB RSS over bare Python (CPython)",
          _median(summary, "import", "poorio", "cpython", "rss_mb"), lambda v: v <= 4, lambda v: f"{v:.2f} MB")
    return out
