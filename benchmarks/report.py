"""Turn a run's summary into ``RESULTS.md`` and ``results.svg``.

Ratios are always "times better than asyncio": the implementation's rate
divided by asyncio's, or asyncio's time (or memory) divided by the
implementation's -- so above 1.0 is better than asyncio in every table and
in the plot.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess

from . import steady, svg, targets
from .cases import FAMILIES, all_targets
from .machine import ROOT


def scenario_titles() -> dict:
    """Section titles, numbered in the families' order."""
    return {f.scenario: f"{i}. {f.title}" for i, f in enumerate(FAMILIES, 1)}


def machine_facts() -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(os.cpu_count())
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        mem = "unknown"
    return {"nproc": nproc, "cpu": model, "kernel": f"{platform.system()} {platform.release()}", "memory": mem}


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "poorio"], capture_output=True, text=True, cwd=ROOT)
    except OSError:
        return "unknown"
    commit = head.stdout.strip() or "unknown"
    return commit + (" (poorio/ has uncommitted changes)" if dirty.stdout.strip() else "")


def _fmt(value, spec) -> str:
    return "–" if value is None else format(value, spec)


def _ratio(value) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _row_order(case, rows):
    """Best headline first; rows without a value last."""
    key = case.metric.key

    def sort_key(item):
        stats = item[1]["stats"].get(key)
        if stats is None:
            return (1, 0)
        return (0, -stats[0] if case.metric.better == "higher" else stats[0])

    return sorted(rows.items(), key=sort_key)


def _label(impl: str, interp: str) -> str:
    return impl if interp in ("cpython", "native") else f"{impl} (PyPy)"


def _halves(row) -> str:
    """The largest disagreement of a row's halves among the runs it uses, ⚠ when any run's was too large."""
    if row.get("spread") is None:
        return "–"
    mark = " ⚠" if any(f.startswith("halves") for f in row.get("flags", ())) else ""
    return f"{row['spread']:.0%}{mark}"


def markdown(cases, summary, run, meta) -> str:
    m = machine_facts()
    loads = sorted(r["bg_cpu_pct"] for r in run["results"] if r.get("bg_cpu_pct", -1) >= 0)
    out = [
        "# poorio benchmark results",
        "",
        "Written by the suite itself (`benchmarks/`); see `benchmarks/README.md` for how to read it.",
        "",
        f"- **Date:** {meta['date']}",
        f"- **Command:** `{meta['command']}` ({meta['mode']}"
        + (": fewer cases and rows, the same warm-ups and windows" if meta["mode"] == "quick" else "")
        + f", {meta['reps']} interleaved repetitions; "
        f"the run took {run['seconds'] / 60:.1f} min)",
        f"- **Machine:** {m['nproc']} CPUs (`nproc`), {m['cpu']}, {m['memory']} RAM, {m['kernel']}",
        f"- **Pinning:** {'server/worker on CPU 0, load generator on CPU 1 (taskset)' if run['pinned'] else 'none (no taskset or < 2 CPUs)'}"
        + (f"; all measured processes under `nice -n {run['nice']}`" if run.get("nice") else ""),
        f"- **poorio:** commit {meta['commit']}",
    ]
    during = sorted(r["metrics"]["others_cpu_pct"] for r in run["results"] if "others_cpu_pct" in r.get("metrics", {}))
    if loads:
        line = (f"- **Other processes' CPU use** just before each measurement: median {loads[len(loads) // 2]:.0f}%, "
                f"max {loads[-1]:.0f}% of one CPU")
        if during:
            line += f"; during the windows: median {during[len(during) // 2]:.0f}%, max {during[-1]:.0f}%"
        out.append(line)

    for name, facts in run["interps"].items():
        peers = ", ".join(f"{k} {v}" for k, v in sorted(facts["packages"].items())) or "no peers installed"
        out.append(f"- **{name}:** {facts['version']} — {peers}")
    if run.get("cpu_check_ms"):
        before, after = run["cpu_check_ms"]
        out.append(
            f"- **CPU check** (`sum(range(10**6))` in the runner, best of 5; runner's interpreter): {before:.1f} ms "
            f"before the run, {after:.1f} ms after"
        )
    busy = [v[len(v) // 2] for v in (loads, during) if v]
    if busy and max(busy) > 25:
        out += ["", f"> **Warning:** other processes kept the machine busy during this run (median "
                    f"{max(busy):.0f}% of a CPU): absolute numbers are depressed and noisy, ratios too. "
                    "Re-run on a quiet machine (`--quiet-wait 120` waits for one) before quoting anything."]
    out += [
        "",
        "**Ratios** are *times better than asyncio on CPython* (the case's baseline named in each table): "
        "a rate divided by asyncio's, or asyncio's time or memory divided by the row's. Above 1.00× beats "
        "asyncio. \"same interp\" divides by asyncio on the row's own interpreter. Values are medians of the "
        "repetitions; min–max beside them.",
        "",
        f"**Steady state.** Every echo server was primed on connections of its own until its rate was stable "
        f"(three {steady.SLICE_S:g} s slices within {steady.STABLE_TOLERANCE:.0%}, at least "
        f"{steady.PRIME_MIN_S:g} s, {steady.PRIME_MIN_S_PYPY:g} s on PyPy), then measured on fresh connections "
        f"after a warm-up of the same kind, for {steady.WINDOW_S:g} s. \"halves\" is how far the two halves of "
        f"the window were apart (the worst of the runs used); more than {steady.HALVES_TOLERANCE:.0%} flags the "
        "run (⚠) and the row is listed under \"Flagged rows\". \"used/runs\": the runs that were steady and "
        "quiet (other processes below 25% of a CPU before and during them); when any were, the figures use only "
        "those. Workers (switches, spawn + join, channels, pool) warm up until three passes agree and time "
        "their window in two halves the same way.",
        "",
        "![results](results.svg)",
        "",
        "## Headline",
        "",
        "Every row of each case, as its ratio to asyncio on CPython. The hand-written readiness loops "
        "(`poorio-pool*`, `selectors-loop`) and the C server are reference points and appear only in the full "
        "tables below.",
        "",
        "| case | poorio | asyncio / uvloop | trio |",
        "|---|---|---|---|",
    ]
    reference = ("poorio-pool", "selectors", "c-epoll")
    for case in cases:
        rows = summary.get(case.id, {})

        def pick(pred):
            found = [(row["ratio"], _label(i, it)) for (i, it), row in rows.items()
                     if pred(i) and row.get("ratio") and (case.scenario == "pool" or not i.startswith(reference))]
            return ", ".join(f"{lab} {r:.2f}×" for r, lab in sorted(found, reverse=True)) or "–"

        out.append(
            f"| {case.title_for()} | {pick(lambda i: i.startswith('poorio'))} | "
            f"{pick(lambda i: i.startswith(('asyncio', 'uvloop', 'selectors')))} | {pick(lambda i: i == 'trio')} |"
        )
    out += ["", "## Targets (issue 15)", "", "| target | measured | verdict | rests on flagged rows |",
            "|---|---|---|---|"]
    for text, measured, verdict, flagged in targets.evaluate(all_targets(), summary):
        shown = "**missed**" if verdict == "missed" else verdict
        if flagged:
            shown += " ⚠ (flagged rows: not to be quoted)"
        out.append(f"| {text} | {measured} | {shown} | {flagged or '–'} |")
    titles = scenario_titles()
    scenario = None
    for case in cases:
        if case.scenario != scenario:
            scenario = case.scenario
            out += ["", f"## {titles.get(scenario, scenario)}"]
            if scenario == "pool":
                out += _pool_pivot(cases, summary)
        rows = summary.get(case.id, {})
        metric = case.metric
        out += [
            "",
            f"### {case.title_for()}",
            "",
            f"Baseline: `{case.baseline}` on CPython. Headline: {metric.label} "
            f"({'higher' if metric.better == 'higher' else 'lower'} is better).",
            "",
        ]
        head = ["implementation", "interp", metric.label, "min–max", "vs asyncio", "same interp", "halves", "used/runs"]
        head += [e.label for e in case.extras]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for (impl, interp), row in _row_order(case, rows):
            stats = row["stats"].get(metric.key)
            if stats is None:
                cells = [impl, interp, "failed", row["errors"][0][:120] if row["errors"] else "–", "–", "–", "–",
                         f"0/{len(row['errors'])}"]
                cells += ["–"] * len(case.extras)
            else:
                med, lo, hi = stats
                cells = [impl, interp, _fmt(med, metric.fmt), f"{_fmt(lo, metric.fmt)}–{_fmt(hi, metric.fmt)}",
                         _ratio(row["ratio"]), _ratio(row["ratio_same"]), _halves(row), f"{row['used']}/{row['runs']}"]
                cells += [_fmt(row["stats"].get(e.key, (None,))[0], e.fmt) for e in case.extras]
            out.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
        notes = [f"`{i.id}`: {i.note}" for i in case.impls if i.note and any(k[0] == i.id for k in rows)]
        if notes:
            out += ["", "; ".join(notes) + "."]
    flagged = [(case, key, row) for case in cases for key, row in summary.get(case.id, {}).items() if row.get("flags")]
    if flagged:
        out += ["", "## Flagged rows", "",
                "Rows whose runs were not all steady and quiet. Do not quote them; re-run them on a quiet machine.", ""]
        for case, (impl, interp), row in flagged:
            out.append(f"- {case.id} / `{impl}` / {interp}: " + "; ".join(row["flags"]))
    skipped = run["skipped"]
    if skipped:
        out += ["", "## Not measured", "",
                "Implementations skipped because what they need is missing on that interpreter:", ""]
        seen = set()
        for s in skipped:
            key = (s["impl"], s["interp"], s["why"])
            if key not in seen:
                seen.add(key)
                out.append(f"- `{s['impl']}` on {s['interp']}: {s['why']}")
    failures = [r for r in run["results"] if "error" in r]
    if failures:
        out += ["", "## Failures", ""]
        for r in failures:
            out.append(f"- {r['case']} / {r['impl']} / {r['interp']} (round {r['round'] + 1}): {r['error'][:300]}")
    return "\n".join(out) + "\n"


def _pool_pivot(cases, summary) -> list:
    pool_cases = [c for c in cases if c.scenario == "pool"]
    impls = []
    for c in pool_cases:
        for key in summary.get(c.id, {}):
            if key not in impls:
                impls.append(key)
    if not impls:
        return []
    sizes = [c.params["fds"] for c in pool_cases]
    out = ["", "µs per `cycle(1.0)` (median) by number of idle fds; the last column is the growth from the "
           "smallest to the largest set.", "",
           "| backend | interp | " + " | ".join(f"{n:,} fds" for n in sizes) + " | growth |",
           "|---|---|" + "---|" * (len(sizes) + 1)]
    for impl, interp in impls:
        vals = []
        for c in pool_cases:
            stats = summary.get(c.id, {}).get((impl, interp), {}).get("stats", {}).get("us_per_cycle")
            vals.append(stats[0] if stats else None)
        growth = f"{vals[-1] / vals[0]:.1f}×" if vals and vals[0] and vals[-1] else "–"
        out.append(f"| {impl} | {interp} | " + " | ".join(_fmt(v, ".2f") for v in vals) + f" | {growth} |")
    return out


def plot(cases, summary, meta) -> str:
    panels = []
    pool_series = {}
    for case in cases:
        rows = summary.get(case.id, {})
        if case.scenario == "pool":
            for (impl, interp), row in rows.items():
                stats = row["stats"].get("us_per_cycle")
                if stats:
                    pool_series.setdefault(_label(impl, interp), []).append((case.params["fds"], stats[0]))
            continue
        bars = []
        key = case.metric.key
        for (impl, interp), row in _row_order(case, rows):
            stats = row["stats"].get(key)
            if not stats:
                continue
            base = row["ratio"]
            mark = " ⚠" if row.get("flags") else ""
            if base is None:
                bars.append((_label(impl, interp) + mark, None, None, None, interp == "pypy"))
                continue
            med, lo, hi = stats
            # whisker: the same ratio computed from the row's min and max
            if case.metric.better == "higher":
                rlo, rhi = base * lo / med, base * hi / med
            else:
                rlo, rhi = base * med / hi, base * med / lo
            bars.append((_label(impl, interp) + mark, base, rlo, rhi, interp == "pypy"))
        if bars:
            panels.append(svg.BarPanel(f"{case.title_for()} — {case.metric.label}, × asyncio (CPython)", bars))
    if pool_series:
        panels.append(svg.LinePanel(
            "Pool cycle time with one active fd vs idle fds registered",
            sorted(pool_series.items()), "idle fds registered (log)", "µs per cycle (log)",
        ))
    subtitles = [
        f"{meta['date']} · {meta['command']}",
        "bars: times better than asyncio on CPython (log scale: right of 1× is better); whiskers: min–max of the "
        "repetitions; pale bars: PyPy; ⚠: a flagged row (see RESULTS.md), not to be quoted",
    ]
    return svg.render("poorio benchmarks", subtitles, panels)


# A family measured by a command of its own (``benchmarks.http_bench
# --results``) writes its section between these markers; rewriting the file
# from a run of the suite keeps such sections, each with its own date.
_BEGIN, _END = "<!-- section {} -->", "<!-- end of section {} -->"


def sections(text: str) -> dict:
    """The kept sections of a RESULTS.md text: name -> the block, markers included."""
    found = {}
    for line in text.splitlines():
        if line.startswith("<!-- section ") and line.endswith(" -->"):
            name = line[len("<!-- section ") : -len(" -->")]
            start = text.index(line)
            end = text.find(_END.format(name), start)
            if end >= 0:
                found[name] = text[start : end + len(_END.format(name))]
    return found


def replace_section(path, name: str, body: str) -> None:
    """Put ``body`` into ``path`` as section ``name``, replacing that section or appending it."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# poorio benchmark results\n"
    block = f"{_BEGIN.format(name)}\n{body.rstrip()}\n{_END.format(name)}"
    old = sections(text).get(name)
    text = text.replace(old, block) if old else text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def keeping_sections(text: str, old: str) -> str:
    """``text`` with the kept sections of ``old`` (the file it replaces) appended."""
    return text + "".join("\n" + block + "\n" for block in sections(old).values())


def write(cases, summary, run, meta, out_dir) -> tuple:
    out_dir.mkdir(parents=True, exist_ok=True)
    md, image = out_dir / "RESULTS.md", out_dir / "results.svg"
    old = md.read_text(encoding="utf-8") if md.exists() else ""
    md.write_text(keeping_sections(markdown(cases, summary, run, meta), old), encoding="utf-8")
    image.write_text(plot(cases, summary, meta), encoding="utf-8")
    return md, image


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
