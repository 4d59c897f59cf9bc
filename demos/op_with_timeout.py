"""A timeout for any operation, built from two fibers -- and then the same with ``fail_after``.

From the Emilua tutorial.  ``op_with_timeout`` runs the operation in one
fiber and a timer in another; whichever finishes first decides: the timer
cancels the operation's fiber, or the operation's end cancels the timer.
The operation here is accepting a TCP connection on a listening socket that
nobody connects to (then one that a client does connect to).  Adding a
timeout argument to every call is the lame way; cancel scopes are the
poorio way, shown last.  Run it: ``python demos/op_with_timeout.py [seconds]``.
"""

from __future__ import annotations

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from poorio import fail_after, notify_closing, run, spawn, sleep, wait_readable  # noqa: E402
from poorio.errors import Cancelled  # noqa: E402


async def op_with_timeout(op, timeout: float):
    """``await op()``, or None if it takes longer than ``timeout`` seconds."""
    f_op = spawn(op)

    async def timer():
        await sleep(timeout)
        f_op.cancel()

    f_timer = spawn(timer)
    try:
        return await f_op.join()
    except Cancelled:
        if not f_op.cancelled():
            raise  # we were cancelled ourselves: let it go on
        return None  # the timer won
    finally:
        f_timer.cancel()


async def accept(listener: socket.socket):
    """Accept one connection: wait until the listener is readable, then one accept() syscall."""
    while True:
        try:
            conn, _ = listener.accept()
            return conn
        except BlockingIOError:
            await wait_readable(listener)


async def connect_later(address, delay: float) -> None:
    await sleep(delay)
    client = socket.create_connection(address)
    client.close()


async def main(timeout: float) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    host, port = listener.getsockname()
    print(f"Listening on {host}:{port}")
    try:
        conn = await op_with_timeout(lambda: accept(listener), timeout)
        print("two fibers: accepted" if conn else f"two fibers: no connection within {timeout}s")

        spawn(connect_later, (host, port), timeout / 4)
        conn = await op_with_timeout(lambda: accept(listener), timeout)
        print("two fibers: accepted a connection" if conn else "two fibers: timed out")
        conn.close()

        try:
            with fail_after(timeout):
                conn = await accept(listener)
            conn.close()
        except TimeoutError:
            print(f"fail_after: no connection within {timeout}s")
    finally:
        notify_closing(listener)
        listener.close()


if __name__ == "__main__":
    run(main, float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
