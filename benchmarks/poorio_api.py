"""poorio's fiber API as the benchmarks call it: the public ``poorio.X`` names."""

from __future__ import annotations


def get(name: str):
    import poorio

    return getattr(poorio, name)
