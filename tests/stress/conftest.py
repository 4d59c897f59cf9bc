"""The stress suite's knobs: how long the soak runs (``POORIO_STRESS_SECONDS``) and how many connections it holds."""

from __future__ import annotations

import os
import platform

import pytest

PYPY = platform.python_implementation() == "PyPy"


@pytest.fixture
def soak_seconds() -> float:
    """Seconds of soak: a bounded default for CI, longer by hand."""
    return float(os.environ.get("POORIO_STRESS_SECONDS", "25" if PYPY else "20"))


@pytest.fixture
def soak_connections() -> int:
    return int(os.environ.get("POORIO_STRESS_CONNECTIONS", "5000"))
