"""Choosing free TCP ports on 127.0.0.1 for local planes (drills, tests, benchmarks)."""

from __future__ import annotations

import random
import socket

# Below Linux's default ephemeral range (32768-60999). A client connecting to
# a port in that range before the server has bound it can be given the same
# port as its own source port and connect to itself, reading its request back
# as the response.
PORT_RANGE = (20000, 32000)


def free_port_block(size: int = 4, *, attempts: int = 200) -> int:
    """Return a base port whose next `size` ports on 127.0.0.1 are free right now."""
    for _ in range(attempts):
        base = random.randrange(PORT_RANGE[0], PORT_RANGE[1] - size)  # noqa: S311 (not security)
        held: list[socket.socket] = []
        try:
            for offset in range(size):
                held.append(socket.socket())
                held[-1].bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"no block of {size} free ports found in {PORT_RANGE}")


def free_port() -> int:
    return free_port_block(1)
