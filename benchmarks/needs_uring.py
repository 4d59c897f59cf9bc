"""A requirement for implementations on io_uring: importing it fails, with the probe's reason, where io_uring is not usable."""

from poorio.platform import uring

_reason = uring.unavailable_reason()
if _reason is not None:
    raise ImportError(f"io_uring is not usable here: {_reason}")
