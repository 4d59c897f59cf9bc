"""The package imports and the platform layer finds a backend."""

import poorio
import poorio.platform as platform


def test_a_backend_is_chosen():
    assert platform.default_backend() in platform.backends()
    assert isinstance(poorio.__version__, str)
