"""Free ports below the ephemeral range, so a poll cannot connect to itself."""

from __future__ import annotations

import socket

from appliance.ports import PORT_RANGE, free_port_block


def test_block_is_free_and_below_ephemeral_range() -> None:
    base = free_port_block(4)
    assert PORT_RANGE[0] <= base
    assert base + 4 <= PORT_RANGE[1]
    held = []
    try:
        for offset in range(4):
            sock = socket.socket()
            held.append(sock)
            sock.bind(("127.0.0.1", base + offset))
    finally:
        for sock in held:
            sock.close()
