"""The streams of a drill's workload: break-glass activations, PIM issuance, auth tokens."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable

import httpx

from appliance.credentials.errors import CredentialError
from chaos.workload import (
    REQUEST_TIMEOUT_SECONDS,
    BreakglassAccount,
    CredentialChecker,
    Recorder,
    Sample,
    describe,
)

MAX_OUTSTANDING = 10


class Stream:
    """Start one attempt every `interval` seconds until stopped.

    Attempts run as tasks, so a request that hangs does not hide the ones
    after it. At most `max_outstanding` run at once, and a tick with that many
    still open is skipped. Latency probes use 1, so they measure without adding load.
    """

    name = "stream"

    def __init__(self, recorder: Recorder, interval: float) -> None:
        self.recorder = recorder
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._attempts: set[asyncio.Task[None]] = set()
        self.max_outstanding = MAX_OUTSTANDING

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"chaos-{self.name}")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await asyncio.gather(*self._attempts)

    async def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            if len(self._attempts) < self.max_outstanding:
                task = asyncio.create_task(self.attempt(), name=f"chaos-{self.name}-attempt")
                self._attempts.add(task)
                task.add_done_callback(self._attempts.discard)
            next_tick += self.interval
            delay = max(0.0, next_tick - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def attempt(self) -> None:
        raise NotImplementedError


async def issue_and_check(
    stream: Stream,
    checker: CredentialChecker,
    request: Awaitable[httpx.Response],
    *,
    max_lifetime: int,
) -> None:
    """Send `request` for a credential, verify what comes back, and record one sample.

    The latency ends when the response arrives, before the verification.
    """
    began = time.monotonic()
    at = stream.recorder.now()
    try:
        response = await request
        latency = (time.monotonic() - began) * 1000
        response.raise_for_status()
        result = response.json()
        lifetime = await checker.check(stream.name, result["credential"], max_lifetime=max_lifetime)
    except (httpx.HTTPError, CredentialError, ValueError, KeyError) as error:
        stream.recorder.record(
            Sample(
                stream.name,
                at,
                False,
                (time.monotonic() - began) * 1000,
                stream.recorder.scenario,
                error=describe(error),
            )
        )
        return
    stream.recorder.record(
        Sample(
            stream.name,
            at,
            True,
            latency,
            stream.recorder.scenario,
            credential_id=result["credential_id"],
            lifetime_seconds=lifetime,
            # Only break-glass reports whether it issued from its snapshot.
            degraded=result.get("degraded"),
        )
    )


class BreakglassStream(Stream):
    name = "breakglass"

    def __init__(
        self,
        recorder: Recorder,
        interval: float,
        *,
        client: httpx.AsyncClient,
        url: str,
        org: str,
        accounts: list[BreakglassAccount],
        checker: CredentialChecker,
        ttl_seconds: int,
    ) -> None:
        super().__init__(recorder, interval)
        self.client = client
        self.url = url
        self.org = org
        self.accounts = accounts
        self.checker = checker
        self.ttl_seconds = ttl_seconds
        self._next = 0

    def _pick(self) -> tuple[BreakglassAccount, str] | None:
        for _ in range(len(self.accounts)):
            account = self.accounts[self._next % len(self.accounts)]
            self._next += 1
            code = account.next_code(time.time())
            if code is not None:
                return account, code
        return None

    async def attempt(self) -> None:
        picked = self._pick()
        if picked is None:
            return
        account, code = picked
        body = {
            "account": account.name,
            "passphrase": account.passphrase,
            "totp": code,
            "incident": f"CHAOS-{self.recorder.scenario}",
            "reason": "chaos drill",
            "ttl_seconds": self.ttl_seconds,
            "holder_jwk": self.checker.holder_jwk(),
        }
        request = self.client.post(
            f"{self.url}/o/{self.org}/breakglass/activate",
            json=body,
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        await issue_and_check(self, self.checker, request, max_lifetime=self.ttl_seconds)


class PimStream(Stream):
    name = "pim"

    def __init__(
        self,
        recorder: Recorder,
        interval: float,
        *,
        client: httpx.AsyncClient,
        url: str,
        org: str,
        token: str,
        request_id: str,
        checker: CredentialChecker,
        max_lifetime: int,
    ) -> None:
        super().__init__(recorder, interval)
        self.client = client
        self.url = url
        self.org = org
        self.token = token
        self.request_id = request_id
        self.checker = checker
        self.max_lifetime = max_lifetime

    async def attempt(self) -> None:
        request = self.client.post(
            f"{self.url}/o/{self.org}/pim/api/requests/{self.request_id}/credential",
            json={"holder_jwk": self.checker.holder_jwk()},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        await issue_and_check(self, self.checker, request, max_lifetime=self.max_lifetime)


class AuthStream(Stream):
    """Client-credentials token requests: the auth plane's latency."""

    name = "auth"

    def __init__(
        self,
        recorder: Recorder,
        interval: float,
        *,
        client: httpx.AsyncClient,
        url: str,
        org: str,
        client_id: str,
        client_secret: str,
    ) -> None:
        super().__init__(recorder, interval)
        self.client = client
        self.url = url
        self.org = org
        self.auth = (client_id, client_secret)

    async def attempt(self) -> None:
        began = time.monotonic()
        at = self.recorder.now()
        try:
            response = await self.client.post(
                f"{self.url}/o/{self.org}/token",
                data={"grant_type": "client_credentials"},
                auth=self.auth,
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
            latency = (time.monotonic() - began) * 1000
            response.raise_for_status()
            response.json()["access_token"]
        except (httpx.HTTPError, ValueError, KeyError) as error:
            self.recorder.record(
                Sample(
                    self.name,
                    at,
                    False,
                    (time.monotonic() - began) * 1000,
                    self.recorder.scenario,
                    error=describe(error),
                )
            )
            return
        self.recorder.record(Sample(self.name, at, True, latency, self.recorder.scenario))


class GetProbe(Stream):
    """GET one URL repeatedly: the latency of a plane that issues too rarely to measure a p99."""

    def __init__(
        self, recorder: Recorder, interval: float, *, name: str, client: httpx.AsyncClient, url: str
    ) -> None:
        super().__init__(recorder, interval)
        self.name = name
        self.client = client
        self.url = url

    async def attempt(self) -> None:
        began = time.monotonic()
        at = self.recorder.now()
        try:
            response = await self.client.get(self.url, timeout=REQUEST_TIMEOUT_SECONDS)
            response.raise_for_status()
        except httpx.HTTPError as error:
            self.recorder.record(
                Sample(
                    self.name,
                    at,
                    False,
                    (time.monotonic() - began) * 1000,
                    self.recorder.scenario,
                    error=describe(error),
                )
            )
            return
        self.recorder.record(
            Sample(self.name, at, True, (time.monotonic() - began) * 1000, self.recorder.scenario)
        )
