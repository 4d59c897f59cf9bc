"""``python -m benchmarks``: run the suite, list its cases, profile a server, or make the peers' virtual environments.

    python -m benchmarks setup            # .venv-bench-cpython (uvloop, trio, curio), .venv-bench-pypy (trio, curio)
    python -m benchmarks run              # the full steady-state run: writes benchmarks/RESULTS.md and results.svg
    python -m benchmarks run --quick      # fewer cases and repetitions, the same warm-ups and windows
    python -m benchmarks list [--quick]   # every case and implementation, and how long a run takes
    python -m benchmarks profile echo     # where the poorio echo server's round trip goes
    python -m benchmarks slowstart        # a fresh asyncio server measured the old quick way, then warm
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

from . import harness, profiling, report, steady
from .cases import CASES, all_requirements
from .machine import BENCH, ROOT, default_interpreters


def _say(line: str) -> None:
    print(line, flush=True)


def cmd_run(args) -> int:
    cases = harness.select_cases(args.only, args.quick)
    interps = default_interpreters(args.cpython, args.pypy, args.no_pypy)
    if not interps:
        _say("no interpreter to run on")
        return 1
    reps = args.reps or (2 if args.quick else 3)
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
    out_dir = Path(args.out) if args.out else BENCH
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
    """One echo server in steady state: its rate, syscalls per round trip, and the top of its cProfile."""
    interps = default_interpreters(args.cpython, args.pypy, not args.pypy)
    interp = interps[-1] if args.pypy else interps[0]
    params = profiling.echo_case_params(args.what)
    conns = args.conns or params["conns"]
    return profiling.profile_echo(_say, interp, args.impl, conns, params["size"], args.seconds, args.top, args.sort)


def cmd_slowstart(args) -> int:
    """The slow start that made the old quick figures wrong, shown on one server process."""
    interps = default_interpreters(args.cpython, args.pypy, not args.pypy)
    interp = interps[-1] if args.pypy else interps[0]
    return profiling.slow_start(_say, interp, args.impl, args.conns, 1024, args.reps)


def cmd_report(args) -> int:
    """Write RESULTS.md and results.svg again from a run's raw results (e.g. after changing the report code)."""
    raw = json.loads(Path(args.results).read_text())
    run, meta = raw["run"], raw["meta"]
    ids = {r["case"] for r in run["results"]}
    cases = [c for c in CASES if c.id in ids]
    summary = harness.summarise(cases, run)
    out_dir = Path(args.out) if args.out else BENCH
    md, image = report.write(cases, summary, run, meta, out_dir)
    _say(f"wrote {md} and {image} from {args.results}")
    return 0


def cmd_list(args) -> int:
    """Every case and implementation; with --quick, only what a quick run measures. Then the run's length."""
    for case in harness.select_cases(None, args.quick):
        _say(f"{case.id:<18} {case.title_for()}")
        for impl in case.impls:
            interps = impl.quick if args.quick and impl.interps != ("native",) else impl.interps
            if not interps or (args.quick and impl.interps == ("native",) and not impl.quick):
                continue
            needs = ", ".join(impl.requires) or "nothing extra"
            _say(f"    {impl.id:<22} on {'/'.join(interps):<14} needs {needs}")
    interps = [i for i in default_interpreters(None, None, False) if i.probe(all_requirements()) is None]
    todo, _ = harness.plan(harness.select_cases(None, args.quick), interps, None, args.quick, lambda line: None)
    reps = 2 if args.quick else 3
    _say(f"{'quick' if args.quick else 'full'} run here ({', '.join(i.name for i in interps)}): {len(todo)} measurements "
         f"x {reps} repetitions, about {harness.estimate_seconds(todo, reps) / 60:.0f} min")
    return 0


def cmd_setup(args) -> int:
    """Make the peers' virtual environments beside the checkout (ignored by git)."""
    root = ROOT
    plans = [("cpython", args.cpython or sys.executable, ["trio", "uvloop", "curio"])]
    pypy = args.pypy or shutil.which("pypy3")
    if pypy and not args.no_pypy:
        plans.append(("pypy", pypy, ["trio", "curio"]))
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
    run.add_argument("--quick", action="store_true",
                     help="the cases and rows the targets need, 2 repetitions; the same warm-ups and windows")
    run.add_argument("--reps", type=int, help="repetitions (default 2 quick, 3 full)")
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
    lst = sub.add_parser("list", help="list the cases and implementations, and how long a run takes")
    lst.add_argument("--quick", action="store_true", help="what a --quick run measures")
    rep = sub.add_parser("report", help="write RESULTS.md and results.svg again from a results.json")
    rep.add_argument("results", nargs="?", default=str(BENCH / "out" / "results.json"))
    rep.add_argument("--out", help="directory for RESULTS.md and results.svg (default benchmarks/)")
    prof = sub.add_parser("profile", help="where an echo server's round trip goes: rate, syscalls, cProfile")
    prof.add_argument("what", nargs="?", default="echo", help="echo, or an echo case id such as echo-1000x1k")
    prof.add_argument("--impl", default="poorio-fibers", help="the server (default poorio-fibers)")
    prof.add_argument("--conns", type=int, help="connections (default: the case's)")
    prof.add_argument("--seconds", type=float, default=steady.WINDOW_S, help="each measured run's length")
    prof.add_argument("--sort", default="tottime", help="pstats sort key (default tottime)")
    prof.add_argument("--top", type=int, default=25, help="how many functions to print")
    prof.add_argument("--cpython", help="the interpreter (default as for run)")
    prof.add_argument("--pypy", help="profile on this PyPy instead")
    slow = sub.add_parser("slowstart", help="a fresh server measured the old quick way, then in steady state")
    slow.add_argument("--impl", default="asyncio-protocol", help="the server (default asyncio-protocol)")
    slow.add_argument("--conns", type=int, default=100, help="connections (default 100)")
    slow.add_argument("--reps", type=int, default=3, help="fresh servers to measure (default 3)")
    slow.add_argument("--cpython", help="the interpreter (default as for run)")
    slow.add_argument("--pypy", help="measure on this PyPy instead")
    args = parser.parse_args(argv)
    commands = {"run": cmd_run, "list": cmd_list, "setup": cmd_setup, "profile": cmd_profile, "report": cmd_report,
                "slowstart": cmd_slowstart}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
