"""poorio's standing stress suite: a soak, faults and bad input, with real sockets, processes and signals.

Marked ``stress`` and skipped by the default test run; run it with
``python -m pytest -m stress tests/stress``.  ``python -m tests.stress.soak
--minutes N`` is the long soak, by hand.
"""
