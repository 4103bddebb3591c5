"""A load generator for the auth plane's token endpoint, run as its own process.

`python -m chaos.load URL CLIENT_ID CONCURRENCY SECONDS` with the client secret
on stdin sends client-credentials requests from CONCURRENCY connections until
SECONDS have passed, then prints a JSON line with the request counts. It runs
apart from the drill so that its CPU use does not slow the drill's own
latency measurements.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx


async def generate(
    url: str, client_id: str, secret: str, concurrency: int, seconds: float
) -> dict[str, int]:
    counts = {"ok": 0, "failed": 0}
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                try:
                    response = await client.post(
                        url, data={"grant_type": "client_credentials"}, auth=(client_id, secret)
                    )
                    counts["ok" if response.status_code == 200 else "failed"] += 1
                except httpx.HTTPError:
                    counts["failed"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(
            "usage: python -m chaos.load URL CLIENT_ID CONCURRENCY SECONDS (secret on stdin)",
            file=sys.stderr,
        )
        return 2
    url, client_id, concurrency, seconds = argv
    secret = sys.stdin.readline().strip()
    counts = asyncio.run(generate(url, client_id, secret, int(concurrency), float(seconds)))
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
