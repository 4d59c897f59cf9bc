"""The runner: execute every (case, impl, interpreter) interleaved, then summarise with the steadiness checks.

Each measurement is a subprocess of its own -- a worker, a server, or a bare
interpreter -- started with ``PYTHONPATH`` at the project root, so the
poorio being measured is this checkout's and no installed copy.  Servers and
workers are pinned to one CPU and the load generator to another with
``taskset`` when the machine has it and two cores.  Repetitions are
interleaved: round 1 runs every row once, then round 2 does the same, so
slow drift of the machine hits every implementation alike.

How a case is measured is its *kind* (see ``runner``): ``worker`` and
``import`` are built in, the others come from the families' ``kinds``
(e.g. ``echo`` from ``echo_bench``).  A metric ``halves`` ([rate, rate]) is checked
by ``summarise``: halves further apart than ``steady.HALVES_TOLERANCE`` flag
the repetition, and the row.
"""

from __future__ import annotations

import statistics
import time

from . import steady
from .cases import CASES, FAMILIES, all_requirements
from .machine import BENCH, ROOT, background_cpu, cpu_check, wait_for_quiet
from .runner import Failure, Runner

QUIET_THRESHOLD = 25.0  # % of one CPU used by others, above which a measurement is "disturbed"

__all__ = ["BENCH", "ROOT", "Failure", "Runner", "plan", "run_all", "select_cases", "summarise", "kinds"]


def kinds() -> dict:
    """Every family's kinds of measurement, for a ``Runner``."""
    table = {}
    for family in FAMILIES:
        table.update(family.kinds)
    return table


# -- the whole run -------------------------------------------------------------------------


def select_cases(only, quick: bool) -> list:
    """The cases ``--only`` names (id, id prefix or scenario), or all; only quick ones under ``--quick``."""
    chosen = list(CASES)
    if only:
        chosen = [c for c in CASES if any(c.id == o or c.id.startswith(o + "-") or c.scenario == o for o in only)]
        if not chosen:
            raise SystemExit(f"no case matches {only}; cases: {', '.join(c.id for c in CASES)}")
    if quick:
        chosen = [c for c in chosen if c.quick]
        if not chosen:
            raise SystemExit("none of those cases is part of --quick runs; drop --quick to run them")
    return chosen


def plan(cases, interps, impl_filter, quick: bool, say) -> tuple:
    """[(case, impl, interp-or-None)] to run, and the skipped ones with reasons."""
    todo, skipped = [], []
    for case in cases:
        for impl in case.impls:
            if impl_filter and not any(f in impl.id for f in impl_filter):
                continue
            if impl.interps == ("native",):
                if not quick or impl.quick:
                    todo.append((case, impl, None))
                continue
            for interp in interps:
                if interp.name not in impl.interps or (quick and interp.name not in impl.quick):
                    continue
                why = interp.why_not(impl)
                if why:
                    skipped.append((case, impl, interp, why))
                else:
                    todo.append((case, impl, interp))
    for case, impl, interp, why in skipped:
        say(f"skip {case.id:<16} {impl.id:<20} {interp.name:<8} {why}")
    return todo, skipped


# Seconds one measurement takes, roughly, by kind (interpreter start, priming, warm-ups, window).
_SECONDS = {"echo": 11.0, "echo-pypy": 15.0, "worker": 6.0, "import": 0.5, "idle": 2.5}


def estimate_seconds(todo, reps: int) -> float:
    """A rough duration of the run: the measurements' typical lengths times the repetitions."""
    total = 0.0
    for case, impl, interp in todo:
        kind = case.kind + ("-pypy" if interp is not None and interp.name == "pypy" else "")
        total += _SECONDS.get(kind, _SECONDS.get(case.kind, 10.0))
    return total * reps


def run_all(cases, interps, reps: int, quick: bool, impl_filter, say, quiet_wait: float = 0.0, nice: int = 0) -> dict:
    for interp in list(interps):
        err = interp.probe(all_requirements())
        if err:
            say(f"skip interpreter {interp.name} ({interp.path}): {err}")
            interps.remove(interp)
        else:
            say(f"interpreter {interp.name}: {interp.path} -- {interp.version} {interp.packages}")
    todo, skipped = plan(cases, interps, impl_filter, quick, say)
    runner = Runner(kinds(), nice)
    if nice:
        say(f"servers, workers and the load generator run under nice -n {nice}")
    if not runner.server_pin[len(runner.nice):]:
        say("note: no taskset or fewer than 2 CPUs: server and load generator are not pinned")
    say(f"{len(todo)} measurements x {reps} repetitions: about {estimate_seconds(todo, reps) / 60:.1f} min")
    results = []
    cpu_before = cpu_check()
    say(f"CPU check: sum(range(10**6)) takes {cpu_before:.1f} ms here now")
    started = time.monotonic()
    for rnd in range(reps):
        for case, impl, interp in todo:
            where = interp.name if interp else "native"
            record = {"case": case.id, "impl": impl.id, "interp": where, "round": rnd}
            if quiet_wait > 0:
                record["bg_cpu_pct"] = wait_for_quiet(quiet_wait, QUIET_THRESHOLD, say)
            else:
                record["bg_cpu_pct"] = background_cpu(0.05)
            try:
                record["metrics"] = runner.measure(case, impl, interp)
                m = case.metric
                say(f"[{rnd + 1}/{reps} {time.monotonic() - started:5.0f}s] {case.id:<16} {impl.id:<20} {where:<7} "
                    f"{format(record['metrics'][m.key], m.fmt)} {m.label}{_check_note(record['metrics'])}")
            except (Failure, RuntimeError) as exc:
                record["error"] = str(exc)
                say(f"[{rnd + 1}/{reps}] {case.id:<16} {impl.id:<20} {where:<7} FAILED: {exc}")
            results.append(record)
    return {
        "results": results,
        "skipped": [{"case": c.id, "impl": i.id, "interp": it.name, "why": why} for c, i, it, why in skipped],
        "interps": {i.name: {"path": i.path, "version": i.version, "packages": i.packages} for i in interps},
        "pinned": bool(runner.server_pin[len(runner.nice):]),
        "nice": nice,
        "seconds": time.monotonic() - started,
        "cpu_check_ms": (cpu_before, cpu_check()),
    }


def _check_note(metrics: dict) -> str:
    """The steadiness facts of one measurement, for the progress line."""
    notes = []
    if "halves" in metrics:
        notes.append(f"halves {steady.spread(*metrics['halves']):.0%} apart")
    if "others_cpu_pct" in metrics:
        notes.append(f"others {metrics['others_cpu_pct']:.0f}% CPU")
    if metrics.get("prime_stable") is False or metrics.get("warmup_stable") is False:
        notes.append("warm-up never stable")
    return f"  ({', '.join(notes)})" if notes else ""


# -- the summary ---------------------------------------------------------------------------


def checks(record: dict) -> dict:
    """The steadiness and quietness of one measurement: what the report flags."""
    metrics = record.get("metrics", {})
    halves = metrics.get("halves")
    others = metrics.get("others_cpu_pct")
    spread = steady.spread(*halves) if halves else None
    return {
        "spread": spread,
        "steady": spread is None or spread <= steady.HALVES_TOLERANCE,
        "warm": metrics.get("prime_stable") is not False and metrics.get("warmup_stable") is not False
        and metrics.get("warm_stable") is not False,
        "quiet": record.get("bg_cpu_pct", 0.0) <= QUIET_THRESHOLD and (others is None or others <= QUIET_THRESHOLD),
    }


def summarise(cases, run: dict) -> dict:
    """Per case: rows of (impl, interp) with median, min and max of each metric, ratios and flags.

    A row's statistics use its repetitions that were steady (halves within
    tolerance) and quiet (other processes below ``QUIET_THRESHOLD`` before
    and during them) when it has any, else all of them.  ``row["flags"]``
    says, in words, every check that any repetition failed.
    """
    summary = {}
    for case in cases:
        rows = {}
        for rec in run["results"]:
            if rec["case"] != case.id:
                continue
            row = rows.setdefault((rec["impl"], rec["interp"]), {"records": [], "errors": []})
            if "error" in rec:
                row["errors"].append(rec["error"])
            else:
                row["records"].append(rec)
        for row in rows.values():
            _summarise_row(row)
        key = case.metric.key

        def ratio_to(base_row, row):
            if not base_row or key not in base_row["stats"] or key not in row["stats"]:
                return None
            base, med = base_row["stats"][key][0], row["stats"][key][0]
            if not base or not med:
                return None
            return med / base if case.metric.better == "higher" else base / med

        base_cpython = rows.get((case.baseline, "cpython"))
        for (impl, interp), row in rows.items():
            row["ratio"] = ratio_to(base_cpython, row)
            row["ratio_same"] = ratio_to(rows.get((case.baseline, interp)), row)
        summary[case.id] = rows
    return summary


def _summarise_row(row: dict) -> None:
    found = [(rec, checks(rec)) for rec in row["records"]]
    good = [rec for rec, c in found if c["steady"] and c["quiet"]]
    used = good or row["records"]
    row["runs"], row["used"] = len(row["records"]), len(good)
    spreads = [c["spread"] for rec, c in found if c["spread"] is not None and rec in used]
    row["spread"] = max(spreads) if spreads else None
    n = len(found)
    flags = []
    unsteady = [c["spread"] for _, c in found if not c["steady"]]
    if unsteady:
        flags.append(f"halves differ by up to {max(unsteady):.0%} in {len(unsteady)} of {n} runs")
    cold = sum(1 for _, c in found if not c["warm"])
    if cold:
        flags.append(f"warm-up never became stable in {cold} of {n} runs")
    busy = sum(1 for _, c in found if not c["quiet"])
    if busy:
        flags.append(f"other processes used > {QUIET_THRESHOLD:.0f}% of a CPU in {busy} of {n} runs")
    if row["records"] and not good:
        flags.append("no run was both steady and quiet: the figures use all runs")
    row["flags"] = flags
    row["values"] = {}
    for rec in used:
        for key, value in rec["metrics"].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                row["values"].setdefault(key, []).append(value)
    row["stats"] = {key: (statistics.median(vals), min(vals), max(vals)) for key, vals in row["values"].items()}
