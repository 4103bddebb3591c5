"""A webhook receiver on 127.0.0.1 for tests: records every POST it gets."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    status: int = 204
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(Received(dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait_for(self, count: int, timeout: float = 15) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            delivered = list(self.received)
            if len(delivered) >= count:
                return delivered
            time.sleep(0.1)
        raise AssertionError(f"expected {count} webhook requests, got {len(self.received)}")

    async def arrived(self, count: int, wait_seconds: float = 15) -> list[Received]:
        """Like `wait_for`, for tests whose server runs in the same event loop."""
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if len(self.received) >= count:
                return list(self.received)
            await asyncio.sleep(0.1)
        raise AssertionError(f"expected {count} webhook requests, got {len(self.received)}")
