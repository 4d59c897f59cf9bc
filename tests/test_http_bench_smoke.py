"""Keep benchmarks/http_bench.py from rotting: poorio.http alone, one short repetition, untimed.

It checks that the benchmark starts a server, loads it with wrk and prints
its table -- never how fast anything was (figures belong to the benchmark).
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from http_support import ROOT, python_env


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_http_bench_runs_and_prints_its_table(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# poorio benchmark results\n\nthe suite's own tables\n")
    cmd = [sys.executable, "-m", "benchmarks.http_bench", "--only", "poorio", "--python", sys.executable,
           "--reps", "1", "--half", "1", "--warmup", "1", "--max-warmup", "1", "--attempts", "1",
           "--connections", "4", "--results", str(results)]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, env=python_env())
    assert out.returncode == 0, out.stdout + out.stderr
    row = [line for line in out.stdout.splitlines() if line.startswith("| poorio.http |")]
    assert len(row) == 1 and float(row[0].split("|")[2]) > 0, out.stdout
    # The same row went into RESULTS.md's HTTP section, after what was there.
    text = results.read_text()
    assert text.startswith("# poorio benchmark results\n\nthe suite's own tables\n")
    assert row[0] in text and "--results" in text and text.count("## HTTP") == 1


def test_a_section_is_replaced_in_place_and_survives_the_suite_rewriting_the_file(tmp_path):
    from benchmarks import report

    results = tmp_path / "RESULTS.md"
    results.write_text("# poorio benchmark results\n\nold tables\n")
    report.replace_section(results, "http", "## HTTP\n\nfirst")
    report.replace_section(results, "http", "## HTTP\n\nsecond")
    text = results.read_text()
    assert "second" in text and "first" not in text and text.count("## HTTP") == 1
    assert text.startswith("# poorio benchmark results\n\nold tables\n")
    assert list(report.sections(text)) == ["http"]
    # Rewriting the file from a run of the suite keeps the section.
    new = report.keeping_sections("# poorio benchmark results\n\nnew tables\n", text)
    assert new.startswith("# poorio benchmark results\n\nnew tables\n")
    assert report.sections(new) == report.sections(text)
