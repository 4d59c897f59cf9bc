"""poorio's stdio in a child whose stdin and stdout are pipes, on every system, Windows included.

``tests/test_system.py`` checks the POSIX details (fd flags, ttys, files);
this one needs none of them, so the Wine stage runs it too.  Where the pools
wait on pipes the streams poll them (``POLL``); where they wait on sockets
only (WSAPoll) a worker thread serves them (``THREAD``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from fiber_helpers import backend  # noqa: F401 (fixture)
from poorio.platform import facts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A poorio program: echo stdin to stdout upper-cased, line by line, then
# report on stderr the modes chosen and the bytes moved.  test_system.py
# wraps it in checks of the fd flags.
ECHO_CHILD = textwrap.dedent("""
    import sys
    import poorio
    from poorio import system

    async def main():
        src, dst = system.stdin(), system.stdout()
        total = 0
        while True:
            line = await src.read_line(1 << 20)
            if not line:
                break
            total += len(line)
            await dst.write_all(line.upper())
        await system.stderr().write_all(b"%s %s %d\\n" % (src.how.encode(), dst.how.encode(), total))

    poorio.run(main, backend=sys.argv[1])
""")


def test_a_child_echoes_its_piped_stdin(backend):
    data = b"".join(b"line %d of the input\n" % i for i in range(5_000))  # ~120 KB, a line per write
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", ECHO_CHILD, backend], input=data, env=env, timeout=60,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout == data.upper()
    how = b"poll" if facts.POLLS_PIPES else b"thread"
    assert result.stderr.split() == [how, how, b"%d" % len(data)]
