"""File reads from fibers: ``AsyncFile.pread`` on io_uring operations against the same calls in worker threads.

The same fiber program runs on two schedulers, side by side in one run:

* ``uring`` -- the scheduler's proactor path: each ``pread`` is an io_uring
  read the fiber parks on, no thread involved;
* ``epoll`` -- the readiness backend, which has no proactor: each ``pread``
  runs ``os.pread`` in poorio's worker pool (``poorio.threads``), as every
  file call did before the proactor path.

``--fibers`` fibers each open the file (an ``AsyncFile`` takes one call at a
time) and read blocks of ``--block`` bytes, at sequential or random
offsets, from a file in the page cache: this measures the path from Python
to the kernel and back, not the disk.  Every read is checked to return a
whole block.

Steady state, as ``benchmarks/steady.py`` defines it for the suite: the
rate is watched in slices of ``SLICE_S`` until three agree within 5% (at
least ``WARMUP_MIN_S``, at most ``WARMUP_MAX_S``), then a window of
``--window`` seconds is measured in two halves, which must agree within
10% or the row is flagged.  Repetitions are interleaved (every case once,
then again).  Run it::

    python3 -m benchmarks.bench_files [--reps 3] [--window 5] [--fibers 32] [--block 4096,65536]
    python3 -m benchmarks.bench_files --results benchmarks/RESULTS.md   # and publish its section

Each interpreter writes a section of its own (``files-cpython``,
``files-pypy``), so run it once with each to publish both.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import report  # noqa: E402
from benchmarks.steady import HALVES_TOLERANCE, SLICE_S, WARMUP_MAX_S, WARMUP_MIN_S, halves_agree, stable  # noqa: E402

import poorio  # noqa: E402
from poorio.files import open_file  # noqa: E402
from poorio.platform import backends  # noqa: E402

FILE_SIZE = 32 * 1024 * 1024
PATHS = {"uring": "io_uring operations", "epoll": "worker threads"}


def offsets(block: int, pattern: str, count: int = 1 << 14) -> list:
    blocks = FILE_SIZE // block
    if pattern == "sequential":
        return [(i % blocks) * block for i in range(count)]
    rng = random.Random(1234)
    return [rng.randrange(blocks) * block for _ in range(count)]


def measure(path: str, backend: str, block: int, pattern: str, fibers: int, window: float) -> dict:
    """One case on a fresh scheduler: warm until stable, then a window in two halves (reads/s)."""
    where = offsets(block, pattern)

    async def main():
        done = [0]
        running = [True]

        async def reader(first: int) -> None:
            async with await open_file(path, "rb") as f:
                k, n = first, len(where)
                while running[0]:
                    data = await f.pread(block, where[k % n])
                    if len(data) != block:
                        raise AssertionError(f"a read of {block} bytes at {where[k % n]} returned {len(data)}")
                    done[0] += 1
                    k += fibers

        async def rate(seconds: float) -> float:
            count, started = done[0], time.perf_counter()
            await poorio.sleep(seconds)
            return (done[0] - count) / (time.perf_counter() - started)

        async with poorio.Group() as group:
            for i in range(fibers):
                group.spawn(reader, i * 97)
            try:
                rates, warm_started = [], time.monotonic()
                while True:
                    rates.append(await rate(SLICE_S))
                    spent = time.monotonic() - warm_started
                    if (spent >= WARMUP_MIN_S and stable(rates)) or spent >= WARMUP_MAX_S:
                        break
                halves = [await rate(window / 2), await rate(window / 2)]
            finally:
                running[0] = False
        return {"rate": sum(halves) / 2, "halves": halves, "warm_stable": stable(rates), "warm_s": spent}

    return poorio.run(main, backend=backend)


def run(args) -> list:
    """Every case ``args.reps`` times, interleaved; a row per case with the medians and the flags."""
    blocks = [int(word) for word in args.block.split(",")]
    cases = [(block, pattern, backend) for block in blocks for pattern in ("sequential", "random")
             for backend in ("epoll", "uring")]
    results: dict = {case: [] for case in cases}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "data")
        with open(path, "wb") as out:
            chunk = os.urandom(1 << 20)
            for _ in range(FILE_SIZE >> 20):
                out.write(chunk)
        with open(path, "rb") as warm:  # into the page cache
            while warm.read(1 << 20):
                pass
        for rep in range(args.reps):
            for case in cases:
                block, pattern, backend = case
                got = measure(path, backend, block, pattern, args.fibers, args.window)
                results[case].append(got)
                flag = "" if halves_agree(got["halves"]) else "  UNSTEADY"
                print(f"  rep {rep + 1}: {pattern:10} {block:>6} B  {PATHS[backend]:20} {got['rate']:>10,.0f} reads/s"
                      f"  halves {got['halves'][0]:,.0f} / {got['halves'][1]:,.0f}{flag}", flush=True)
    rows = []
    for block in blocks:
        for pattern in ("sequential", "random"):
            row = {"block": block, "pattern": pattern}
            for backend in ("epoll", "uring"):
                got = results[(block, pattern, backend)]
                rates = [g["rate"] for g in got]
                row[backend] = {
                    "median": statistics.median(rates), "min": min(rates), "max": max(rates),
                    "steady": all(halves_agree(g["halves"]) for g in got),
                }
            row["ratio"] = row["uring"]["median"] / row["epoll"]["median"]
            rows.append(row)
    return rows


def markdown(rows: list, meta: dict) -> str:
    lines = [
        f"## File reads from fibers: io_uring operations vs worker threads ({meta['interp']})",
        "",
        f"{meta['date']} · `{meta['command']}` · commit {meta['commit']} · {meta['machine']}",
        "",
        f"`AsyncFile.pread` of one block, {meta['fibers']} fibers at once, from a 32 MiB file in the page cache; "
        f"medians of {meta['reps']} interleaved repetitions (min–max), each a {meta['window']:g} s window after "
        f"a warm-up until stable. ⚠: a window whose halves differed by more than {HALVES_TOLERANCE:.0%}.",
        "",
        "| reads | worker threads (epoll) | io_uring operations | ratio |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        cells = []
        for backend in ("epoll", "uring"):
            got = row[backend]
            mark = "" if got["steady"] else " ⚠"
            cells.append(f"{got['median']:,.0f} ({got['min']:,.0f}–{got['max']:,.0f}){mark}")
        lines.append(f"| {row['pattern']}, {row['block']:,} B | {cells[0]} | {cells[1]} | {row['ratio']:.2f}× |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions of each case")
    parser.add_argument("--window", type=float, default=5.0, help="seconds of the measured window")
    parser.add_argument("--fibers", type=int, default=32, help="fibers reading at once")
    parser.add_argument("--block", default="4096,65536", help="read sizes, comma-separated")
    parser.add_argument("--results", type=Path, help="write the table into this RESULTS.md as a section")
    args = parser.parse_args(argv)
    if "uring" not in backends():
        from poorio.platform import uring

        print(f"io_uring is not usable here: {uring.unavailable_reason()}")
        return 0
    interp = f"{platform.python_implementation()} {platform.python_version()}"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{interp}, Linux {os.uname().release}, {os.cpu_count()} CPUs, load average {load:.2f}; "
          f"{args.reps} reps, {args.fibers} fibers, {args.window:g} s windows", flush=True)
    rows = run(args)
    meta = {
        "interp": interp, "date": report.now(), "commit": report.git_commit(), "reps": args.reps,
        "window": args.window, "fibers": args.fibers,
        "command": "python -m benchmarks.bench_files " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"Linux {os.uname().release}, {os.cpu_count()} CPUs",
    }
    text = markdown(rows, meta)
    print("\n" + text)
    if args.results is not None:
        name = "files-pypy" if platform.python_implementation() == "PyPy" else "files-cpython"
        report.replace_section(args.results, name, text)
        print(f"wrote section {name} of {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
