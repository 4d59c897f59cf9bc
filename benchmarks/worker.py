"""Run one measurement in this (fresh) process and print its result as one JSON line.

``python -m benchmarks.worker MODULE:FUNCTION '{"keyword": value, ...}'``
calls the function with those keyword arguments and prints the dict it
returns; an exception is printed as ``{"error": "..."}`` with exit status 1,
so the runner can report it beside the other results instead of crashing.
"""

from __future__ import annotations

import importlib
import json
import signal
import sys


def main(argv) -> int:
    target, kwargs = argv[1], json.loads(argv[2])
    signal.alarm(int(argv[3]) if len(argv) > 3 else 600)  # a hung worker ends itself
    module_name, func_name = target.split(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        result = func(**kwargs)
    except Exception as exc:  # reported, not raised: one failure must not stop the suite
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
