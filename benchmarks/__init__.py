"""poorio's benchmark suite: side-by-side measurements against asyncio, uvloop and trio.

Run it with ``python -m benchmarks run --quick`` (see ``benchmarks/README.md``).
Every measurement runs in a subprocess of its own, one per implementation and
interpreter, so imports, JIT state and memory never leak between them.  The
package holds the runner (``harness``, ``cases``, ``report``, ``svg``), the
code that runs inside those subprocesses (``worker``, ``servers`` and the
``bench_*`` modules) and the compiled load generator (``echoload.c``).
"""
