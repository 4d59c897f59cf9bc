"""``Record``: the frozen snapshot every ``statistics()`` in poorio returns (a pool's, a notifier's, a scheduler's...).

A record subclass lists its fields in ``__slots__``; a record is built once,
by position or by keyword, and never changes.  Records compare and hash by
value, and their ``repr`` names every field.  (A dataclass would do the same
at the cost of importing ``dataclasses`` into every program.)
"""

from __future__ import annotations

__all__ = ["Record"]


class Record:
    """A frozen bag of named values: ``__slots__`` names the fields."""

    __slots__ = ()

    def __init__(self, *values, **fields) -> None:
        names = self.__slots__
        if len(values) > len(names):
            raise TypeError(f"{type(self).__name__} takes {len(names)} fields, not {len(values)}")
        given = dict(zip(names, values))
        for name, value in fields.items():
            if name not in names or name in given:
                raise TypeError(f"{type(self).__name__} got an unexpected or repeated field {name!r}")
            given[name] = value
        missing = [name for name in names if name not in given]
        if missing:
            raise TypeError(f"{type(self).__name__} is missing {', '.join(missing)}")
        for name in names:
            object.__setattr__(self, name, given[name])

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is read-only")

    def values(self) -> tuple:
        """The fields' values, in ``__slots__`` order."""
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.values() == other.values()

    def __hash__(self):
        return hash(self.values())

    def __repr__(self) -> str:
        body = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({body})"
