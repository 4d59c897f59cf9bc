"""``python -m benchmarks``: run the suite, list its cases, or make the peers' virtual environments.

    python -m benchmarks setup            # .venv-bench-cpython (uvloop, trio), .venv-bench-pypy (trio)
    python -m benchmarks run --quick      # a few minutes; writes benchmarks/RESULTS.md and results.svg
    python -m benchmarks run              # the full run
    python -m benchmarks list             # every case and implementation
    python -m benchmarks profile echo-100x1k poorio-fibers   # the server under cProfile
    python -m benchmarks report           # RESULTS.md + results.svg again from benchmarks/out/results.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from . import harness, report
from .cases import CASES


def _say(line: str) -> None:
    print(line, flush=True)


def cmd_run(args) -> int:
    cases = harness.select_cases(args.only)
    interps = harness.default_interpreters(args.cpython, args.pypy, args.no_pypy)
    if not interps:
        _say("no interpreter to run on")
        return 1
    reps = args.reps or (3 if args.quick else 5)
    mode = "quick" if args.quick else "full"
    _say(f"poorio benchmarks: {mode} mode, {reps} interleaved repetitions, {len(cases)} cases")
    run = harness.run_all(cases, interps, reps, args.quick, args.impl, _say, args.quiet_wait, args.nice)
    summary = harness.summarise(cases, run)
    meta = {
        "date": report.now(),
        "command": "python -m benchmarks " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "mode": mode,
        "reps": reps,
        "commit": report.git_commit(),
    }
    out_dir = Path(args.out) if args.out else harness.BENCH
    md, image = report.write(cases, summary, run, meta, out_dir)
    raw = (out_dir / "out") if args.out is None else out_dir
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "results.json").write_text(json.dumps({"meta": meta, "run": run}, indent=1))
    _say(f"wrote {md} and {image} ({run['seconds'] / 60:.1f} min)")
    failed = [r for r in run["results"] if "error" in r]
    if failed:
        _say(f"{len(failed)} measurement(s) failed: see the Failures section of {md.name}")
    return 0


def cmd_profile(args) -> int:
    """One echo measurement with the server under cProfile; print where its time went."""
    import pstats
    import tempfile

    case = next((c for c in CASES if c.id == args.case and c.kind == "echo"), None)
    impl = next((i for i in case.impls if i.id == args.impl), None) if case else None
    if impl is None:
        _say(f"profile needs an echo case and one of its impls, e.g. echo-100x1k poorio-fibers")
        return 2
    interps = harness.default_interpreters(args.cpython, args.pypy, True)
    interp = interps[0]
    interp.probe(impl.requires)
    runner = harness.Runner(quick=True)
    with tempfile.TemporaryDirectory() as tmp:
        runner.profile_to = str(Path(tmp) / "server.prof")
        result = runner.measure(case, impl, interp)
        _say(f"{case.id} {impl.id} on {interp.name} (under cProfile): {result['rt_per_s']:,.0f} round trips/s")
        stats = pstats.Stats(runner.profile_to)
        stats.sort_stats(args.sort).print_stats(args.top)
    return 0


def cmd_report(args) -> int:
    """Write RESULTS.md and results.svg again from a run's raw results (e.g. after changing the report code)."""
    raw = json.loads(Path(args.results).read_text())
    run, meta = raw["run"], raw["meta"]
    ids = {r["case"] for r in run["results"]}
    cases = [c for c in CASES if c.id in ids]
    summary = harness.summarise(cases, run)
    out_dir = Path(args.out) if args.out else harness.BENCH
    md, image = report.write(cases, summary, run, meta, out_dir)
    _say(f"wrote {md} and {image} from {args.results}")
    return 0


def cmd_list(args) -> int:
    for case in CASES:
        _say(f"{case.id:<18} {case.title_for(False)}")
        for impl in case.impls:
            needs = ", ".join(impl.requires) or "nothing extra"
            _say(f"    {impl.id:<22} on {'/'.join(impl.interps):<14} needs {needs}")
    return 0


def cmd_setup(args) -> int:
    """Make the peers' virtual environments beside the checkout (ignored by git)."""
    root = harness.ROOT
    plans = [("cpython", args.cpython or sys.executable, ["trio", "uvloop"])]
    pypy = args.pypy or shutil.which("pypy3")
    if pypy and not args.no_pypy:
        plans.append(("pypy", pypy, ["trio"]))
    for name, python, packages in plans:
        venv = root / f".venv-bench-{name}"
        _say(f"{name}: {venv} ({', '.join(packages)})")
        if subprocess.run([python, "-m", "venv", str(venv)]).returncode != 0:
            _say(f"could not make {venv}; skipping {name}")
            continue
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *packages]
        if subprocess.run(pip).returncode != 0:
            _say(f"pip could not install {packages} for {name}: the runner will skip those peers")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the suite and write RESULTS.md + results.svg")
    run.add_argument("--quick", action="store_true", help="shorter runs, 3 repetitions: a few minutes")
    run.add_argument("--reps", type=int, help="repetitions (default 3 quick, 5 full)")
    run.add_argument("--only", nargs="+", help="case ids, id prefixes or scenarios (echo, pool, scheduler, ...)")
    run.add_argument("--impl", nargs="+", help="only implementations whose id contains one of these")
    run.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                     help="before each measurement, wait up to this long for other processes to leave the CPUs idle")
    run.add_argument("--nice", type=int, default=0, metavar="N",
                     help="run servers, workers and the load generator under nice -n N (N < 0 needs root): "
                          "on a machine shared with other work, -20 keeps them from being starved")
    run.add_argument("--out", help="directory for RESULTS.md, results.svg, results.json (default benchmarks/)")
    for p in (run, sub.add_parser("setup", help="make .venv-bench-cpython and .venv-bench-pypy with the peers")):
        p.add_argument("--cpython", help="CPython interpreter (default: .venv-bench-cpython, then this one)")
        p.add_argument("--pypy", help="PyPy interpreter (default: .venv-bench-pypy, then pypy3 on PATH)")
        p.add_argument("--no-pypy", action="store_true", help="CPython only")
    sub.add_parser("list", help="list the cases and implementations")
    rep = sub.add_parser("report", help="write RESULTS.md and results.svg again from a results.json")
    rep.add_argument("results", nargs="?", default=str(harness.BENCH / "out" / "results.json"))
    rep.add_argument("--out", help="directory for RESULTS.md and results.svg (default benchmarks/)")
    prof = sub.add_parser("profile", help="run one echo case with its server under cProfile")
    prof.add_argument("case", help="an echo case id, e.g. echo-100x1k")
    prof.add_argument("impl", help="a server, e.g. poorio-fibers")
    prof.add_argument("--sort", default="tottime", help="pstats sort key (default tottime)")
    prof.add_argument("--top", type=int, default=25, help="how many functions to print")
    prof.add_argument("--cpython", help="the interpreter (default as for run)")
    prof.add_argument("--pypy", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    commands = {"run": cmd_run, "list": cmd_list, "setup": cmd_setup, "profile": cmd_profile, "report": cmd_report}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
