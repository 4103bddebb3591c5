"""The partition proxy forwards, drops and stalls Unix-socket and TCP connections."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chaos.database import via_socket_dir
from chaos.proxy import ProxyMode, SocketProxy


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture(params=["unix", "tcp"])
async def proxy(request: pytest.FixtureRequest) -> AsyncIterator[SocketProxy]:
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        running: SocketProxy
        if request.param == "unix":
            target = Path(folder) / "target.sock"
            server = await asyncio.start_unix_server(echo, path=str(target))
            running = SocketProxy(Path(folder) / "proxy" / "listen.sock", target)
        else:
            server = await asyncio.start_server(echo, "127.0.0.1", 0)
            running = SocketProxy(None, ("127.0.0.1", server.sockets[0].getsockname()[1]))
        await running.start()
        try:
            yield running
        finally:
            await running.close()
            server.close()
            await server.wait_closed()


async def read_or_reset(reader: asyncio.StreamReader) -> bytes:
    """Read once; a connection reset (the proxy aborts with RST) reads as end of stream."""
    try:
        return await asyncio.wait_for(reader.read(1024), 1.0)
    except ConnectionResetError:
        return b""


async def connect(proxy: SocketProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if proxy.listen_path is None:
        return await asyncio.open_connection("127.0.0.1", proxy.port)
    return await asyncio.open_unix_connection(str(proxy.listen_path))


async def roundtrip(proxy: SocketProxy, payload: bytes) -> bytes:
    reader, writer = await connect(proxy)
    try:
        writer.write(payload)
        try:
            await writer.drain()
        except ConnectionResetError:
            return b""
        return await read_or_reset(reader)
    finally:
        writer.close()


async def test_pass_forwards_bytes(proxy: SocketProxy) -> None:
    assert await roundtrip(proxy, b"ping") == b"ping"


async def test_drop_closes_new_connections(proxy: SocketProxy) -> None:
    proxy.set_mode(ProxyMode.DROP)

    assert await roundtrip(proxy, b"ping") == b""


async def test_drop_closes_open_connections(proxy: SocketProxy) -> None:
    reader, writer = await connect(proxy)
    writer.write(b"one")
    assert await asyncio.wait_for(reader.read(1024), 1.0) == b"one"

    proxy.set_mode(ProxyMode.DROP)

    assert await read_or_reset(reader) == b""
    writer.close()


async def test_stall_holds_bytes_until_healed(proxy: SocketProxy) -> None:
    proxy.set_mode(ProxyMode.STALL)
    reader, writer = await connect(proxy)
    writer.write(b"held")
    await writer.drain()

    pending = asyncio.ensure_future(reader.read(1024))
    done, _ = await asyncio.wait([pending], timeout=0.3)
    assert not done
    proxy.set_mode(ProxyMode.PASS)

    assert await asyncio.wait_for(pending, 1.0) == b"held"
    writer.close()


def test_dsn_points_at_proxy_socket_dir() -> None:
    dsn = "postgresql://appliance_pim:p%40ss@/appliance?host=/tmp/x/run&port=5432"

    proxied = via_socket_dir(dsn, Path("/tmp/x/proxy/pim"))

    assert proxied == "postgresql://appliance_pim:p%40ss@/appliance?host=/tmp/x/proxy/pim&port=5432"
