"""poorio's fiber API as the benchmarks call it: the public ``poorio.X`` name when the
package exports it, else the module that defines it (while the top-level
exports are still being wired up)."""

from __future__ import annotations

import importlib

_HOME = {
    "run": "poorio.scheduler",
    "spawn": "poorio.scheduler",
    "notify_closing": "poorio.scheduler",
    "sleep": "poorio.traps",
    "wait_readable": "poorio.traps",
    "wait_writable": "poorio.traps",
}


def get(name: str):
    import poorio

    obj = getattr(poorio, name, None)
    if obj is None:
        obj = getattr(importlib.import_module(_HOME[name]), name)
    return obj
