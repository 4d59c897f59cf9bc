"""Issue 15's targets, each a ratio to peers measured in the same run (or an absolute bound).

Each ``Target`` reads the rows it needs from a run's summary and returns
a ``Reading`` (the value and the rows it came from), or None when a row was
not measured -- the report then says "not measured" instead of guessing.
``evaluate`` judges them: met, missed, or not measured; a verdict resting on
a flagged row (halves apart, warm-up never stable, busy machine) says so.
"""

from __future__ import annotations

from .catalogue import Reading, Target

CPY = "cpython"


def _median(summary, case, impl, interp, key):
    row = summary.get(case, {}).get((impl, interp))
    if not row:
        return None
    stats = row["stats"].get(key)
    return stats[0] if stats else None


def ratio(case: str, a: tuple, b: tuple, key: str, lower_is_better: bool = False, case_b: str = ""):
    """A reader of median(a) / median(b) -- b / a when lower is better; a and b are (impl, interp).

    ``case_b`` takes b from another case (the same server at 1,000 and at 100 connections).
    """
    case_b = case_b or case

    def read(summary):
        va, vb = _median(summary, case, *a, key), _median(summary, case_b, *b, key)
        if not va or not vb:
            return None
        return Reading(vb / va if lower_is_better else va / vb, ((case, *a), (case_b, *b)))

    return read


def value(case: str, row: tuple, key: str):
    """A reader of one row's median."""

    def read(summary):
        v = _median(summary, case, *row, key)
        return None if v is None else Reading(v, ((case, *row),))

    return read


def _times(r: float) -> str:
    return f"{r:.2f}×"


RT = "rt_per_s"
FIBERS = ("poorio-fibers", CPY)

ISSUE_15 = (
    Target("echo 100 × 1 KiB: poorio fibers ≥ 1.0× asyncio protocol (CPython)",
           ratio("echo-100x1k", FIBERS, ("asyncio-protocol", CPY), RT), lambda r: r >= 1.0, _times),
    Target("echo 1,000 × 1 KiB: poorio fibers ≥ 0.9 of their 100-connection rate (CPython)",
           ratio("echo-1000x1k", FIBERS, FIBERS, RT, case_b="echo-100x1k"), lambda r: r >= 0.9,
           lambda r: f"{r:.2f} of it"),
    Target("raw wait_readable + sock.recv/send loop ≥ 0.9 of the stream path (echo 100 × 1 KiB, CPython)",
           ratio("echo-100x1k", ("poorio-rawfibers", CPY), FIBERS, RT), lambda r: r >= 0.9,
           lambda r: f"{r:.2f} of it"),
    Target("PyPy: poorio fibers ≥ asyncio protocol on PyPy (echo 100 × 1 KiB)",
           ratio("echo-100x1k", ("poorio-fibers", "pypy"), ("asyncio-protocol", "pypy"), RT),
           lambda r: r >= 1.0, _times),
    Target("100,000 random sleeps of 0–1 s: p99 lateness ≤ 200 ms (poorio, CPython)",
           value("sched-sleeps", ("poorio", CPY), "late_p99_ms"), lambda v: v <= 200, lambda v: f"{v:,.0f} ms"),
    Target("keep ahead: sleep(0) switches ≥ 1.0× asyncio (CPython)",
           ratio("sched-switch", ("poorio", CPY), ("asyncio", CPY), "switches_per_s"), lambda r: r >= 1.0, _times),
    Target("keep ahead: spawn + join ≥ 1.0× asyncio's speed (CPython)",
           ratio("sched-spawn", ("poorio", CPY), ("asyncio", CPY), "seconds", lower_is_better=True),
           lambda r: r >= 1.0, _times),
    Target("keep ahead: bytes per fiber ≤ asyncio's per task (peak RSS, spawn + join, CPython)",
           ratio("sched-spawn", ("poorio", CPY), ("asyncio", CPY), "rss_bytes_per_task", lower_is_better=True),
           lambda r: r >= 1.0, lambda r: f"{r:.2f}× less"),
    Target("keep ahead: channel ping-pong ≥ 1.0× asyncio.Queue (poorio Channel, CPython)",
           ratio("channel-pingpong", ("poorio-channel", CPY), ("asyncio", CPY), "round_trips_per_s"),
           lambda r: r >= 1.0, _times),
    Target("keep ahead: import poorio faster than import asyncio (CPython)",
           ratio("import", ("poorio", CPY), ("asyncio", CPY), "import_ms", lower_is_better=True),
           lambda r: r >= 1.0, _times),
    Target("keep ahead: import poorio adds less memory than import asyncio (CPython)",
           ratio("import", ("poorio", CPY), ("asyncio", CPY), "rss_mb", lower_is_better=True),
           lambda r: r >= 1.0, lambda r: f"{r:.2f}× less"),
)


def evaluate(target_list, summary) -> list:
    """[(text, measured, verdict, flags)] -- verdict 'met', 'missed' or 'not measured'.

    ``flags`` lists the flagged rows the reading rests on ("" when none).
    """
    out = []
    for target in target_list:
        reading = target.read(summary)
        if reading is None:
            out.append((target.text, "–", "not measured", ""))
            continue
        flagged = []
        for case, impl, interp in reading.rows:
            row = summary.get(case, {}).get((impl, interp), {})
            if row.get("flags"):
                flagged.append(f"{impl} ({interp}, {case})")
        verdict = "met" if target.ok(reading.value) else "missed"
        out.append((target.text, target.shown(reading.value), verdict, ", ".join(dict.fromkeys(flagged))))
    return out
