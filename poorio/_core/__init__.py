"""The kernel: fibers, the ready queue, traps, cancel scopes, groups and ``run()``.

This package is the *dispatch* layer: it steps fibers, parks them on the
event layer (``poorio.events``) and resumes them from what it reports.  Its
modules share internals freely; nothing outside the package touches them.
The layers above import the names below, and users import them from
``poorio``.
"""
