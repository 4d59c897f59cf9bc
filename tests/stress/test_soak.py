"""The soak, bounded: 5,000 connections held at once, then churn with faults, nothing lost or leaked."""

from __future__ import annotations

import os
import resource
import sys

import pytest

from .soak import raise_fd_limit, soak

pytestmark = [pytest.mark.stress, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]


def test_soak_holds_thousands_and_churns_with_faults_losing_nothing(soak_seconds, soak_connections):
    # Client and server each hold one end of every connection, in two processes.
    need = soak_connections + 2000
    if raise_fd_limit(need) < need:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        pytest.skip(f"RLIMIT_NOFILE's hard limit ({hard}) is below the {need} fds the soak needs; raise it (ulimit -Hn)")
    summary = soak(soak_seconds, connections=soak_connections, concurrency=200,
                   backend=os.environ.get("POORIO_BACKEND"), signal_rate=1000.0)
    print(summary)
    assert summary["errors"] == 0, summary["error_samples"]
    assert summary["held_at_once"] == soak_connections
    assert summary["server_fds_after"] == summary["server_fds_before"]
    faults = summary["faults"]
    assert faults["resets"] and faults["never_reading"] and faults["storm_connects"] and faults["half_closes"]
    assert faults["signals_seen"] > 0
    assert summary["echoes_verified"] > soak_connections
    # Bounded memory: never-reading clients and 1 MiB messages must not pile up in the server.
    assert summary["server_peak_rss_mb"] < 400, summary
