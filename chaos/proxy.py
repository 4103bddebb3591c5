"""A proxy between one plane and PostgreSQL that can drop or stall traffic.

The embedded server listens on a Unix socket only and has no TLS, while a TCP
DSN must carry `sslmode=require` or stricter. So for the embedded server the
proxy listens on a Unix socket of its own, and the plane's DSN names the
proxy's socket directory. For a server given by DSN the proxy listens on
127.0.0.1 and forwards TCP bytes as they are, so TLS runs end to end between
the plane and PostgreSQL through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from pathlib import Path

from appliance.log import log_fields

log = logging.getLogger("chaos.proxy")

CHUNK_BYTES = 64 * 1024

# A Unix socket path, or a (host, port) pair for TCP.
Address = Path | tuple[str, int]


class ProxyMode(enum.Enum):
    PASS = "pass"  # noqa: S105 (a mode name, not a password)
    # Close every open connection and close each new one at once (a reset path).
    DROP = "drop"
    # Accept connections but forward no bytes either way (a black hole).
    STALL = "stall"


class SocketProxy:
    """Forward connections from `listen_path` (or 127.0.0.1 when None) to `target`.

    With `listen_path` None the proxy takes a free TCP port, in `port` after `start`.
    """

    def __init__(self, listen_path: Path | None, target: Address) -> None:
        self.listen_path = listen_path
        self.target = target
        self.port = 0
        self.mode = ProxyMode.PASS
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._resumed = asyncio.Event()
        self._resumed.set()

    async def start(self) -> None:
        if self.listen_path is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            return
        self.listen_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.listen_path.unlink()
        self._server = await asyncio.start_unix_server(self._handle, path=str(self.listen_path))

    async def close(self) -> None:
        self.set_mode(ProxyMode.DROP)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self.listen_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.listen_path.unlink()

    def set_mode(self, mode: ProxyMode) -> None:
        log.info(
            "proxy mode changed",
            extra=log_fields(proxy=str(self.listen_path or self.port), mode=mode.value),
        )
        self.mode = mode
        if mode is ProxyMode.STALL:
            self._resumed.clear()
        else:
            self._resumed.set()
        if mode is ProxyMode.DROP:
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

    def _dropping(self) -> bool:
        return self.mode is ProxyMode.DROP

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode is ProxyMode.DROP:
            writer.transport.abort()
            return
        self._writers.add(writer)
        try:
            await self._resumed.wait()
            if self._dropping():
                # The mode changed to DROP while this connection waited out a stall.
                return
            try:
                upstream_reader, upstream_writer = await self._connect_target()
            except OSError:
                return
            self._writers.add(upstream_writer)
            try:
                await asyncio.gather(
                    self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
                )
            finally:
                self._writers.discard(upstream_writer)
                upstream_writer.transport.abort()
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _connect_target(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if isinstance(self.target, Path):
            return await asyncio.open_unix_connection(str(self.target))
        host, port = self.target
        return await asyncio.open_connection(host, port)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    break
                await self._resumed.wait()
                if writer.transport.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # One direction ending ends the connection: PostgreSQL has no half-close.
            writer.transport.abort()
