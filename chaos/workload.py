"""Samples, fault events and credential checks of the drill's workload.

Each stream runs in the drill's event loop and records one `Sample` per attempt.
It verifies every credential it receives with `verify_presentation`, and sends a
sample of them to the independent npm verifier (`chaos.npm_verifier`) as well.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from jwcrypto.jwk import JWK

from appliance.credentials.errors import CredentialError
from appliance.credentials.holder import generate_holder_key, present
from appliance.credentials.verify import verify_presentation
from appliance.identity.totp import STEP_SECONDS, code_at
from chaos.npm_verifier import NpmVerifier

REQUEST_TIMEOUT_SECONDS = 10.0
AUD = "https://chaos-drill.invalid"
# Every n-th credential of a stream also goes to the npm verifier.
NPM_SAMPLE_EVERY = 5


@dataclass
class Sample:
    """One attempt of one stream."""

    stream: str
    at: float
    ok: bool
    latency_ms: float
    scenario: str
    error: str | None = None
    credential_id: str | None = None
    lifetime_seconds: int | None = None
    degraded: bool | None = None
    # True when the stream's own plane, or PostgreSQL for PIM, was down on purpose.
    excused: bool = False


@dataclass
class FaultEvent:
    at: float
    scenario: str
    action: str


@dataclass
class Recorder:
    """Samples and fault events of a drill, with times in seconds since its start."""

    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    faults: list[FaultEvent] = field(default_factory=list)
    scenario: str = "setup"
    # (stream, start, end or None while open): the drill took the stream's plane,
    # or PostgreSQL for a stream that needs it, down on purpose.
    excuses: list[tuple[str, float, float | None]] = field(default_factory=list)
    npm_results: list[tuple[str, str, bool, str]] = field(default_factory=list)
    policy_violations: list[str] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started

    def fault(self, action: str) -> None:
        self.faults.append(FaultEvent(self.now(), self.scenario, action))

    def excuse(self, stream: str) -> None:
        if not any(name == stream and end is None for name, _, end in self.excuses):
            self.excuses.append((stream, self.now(), None))

    def unexcuse(self, stream: str) -> None:
        now = self.now()
        self.excuses = [
            (name, start, now if name == stream and end is None else end)
            for name, start, end in self.excuses
        ]

    def record(self, sample: Sample) -> None:
        """Store `sample`, excused when its request overlapped an excused interval."""
        finished = sample.at + sample.latency_ms / 1000
        sample.excused = any(
            name == sample.stream and start <= finished and (end is None or sample.at <= end)
            for name, start, end in self.excuses
        )
        self.samples.append(sample)


@dataclass
class BreakglassAccount:
    name: str
    passphrase: str
    totp_secret: str
    last_step: int = 0

    def next_code(self, now: float) -> str | None:
        """Return a code for a step the server still accepts and this account has not used."""
        current = int(now // STEP_SECONDS)
        step = max(current - 1, self.last_step + 1)
        if step > current + 1:
            return None
        self.last_step = step
        return code_at(self.totp_secret, step)


def claims_of(credential: str) -> dict[str, Any]:
    payload = credential.split("~", 1)[0].split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


class CredentialChecker:
    """Verify issued credentials of one issuer, caching its JWKS."""

    def __init__(
        self, client: httpx.AsyncClient, issuer: str, npm: NpmVerifier | None, recorder: Recorder
    ) -> None:
        self.client = client
        self.issuer = issuer
        # None: verify in-process only (latency probes, where a Node start would skew timing).
        self.npm = npm
        self.recorder = recorder
        self.jwks: dict[str, Any] = {"keys": []}
        self.count = 0
        self.holder_key: JWK = generate_holder_key()

    def holder_jwk(self) -> dict[str, Any]:
        public: dict[str, Any] = self.holder_key.export_public(as_dict=True)
        return public

    async def refresh_jwks(self) -> None:
        response = await self.client.get(
            f"{self.issuer}/jwks.json", timeout=REQUEST_TIMEOUT_SECONDS
        )
        response.raise_for_status()
        self.jwks = response.json()

    async def check(self, stream: str, credential: str, *, max_lifetime: int) -> int:
        """Verify `credential`; return its `exp - iat`, or raise CredentialError."""
        kid = json.loads(base64.urlsafe_b64decode(credential.split(".")[0] + "==")).get("kid")
        if not any(key.get("kid") == kid for key in self.jwks.get("keys", [])):
            await self.refresh_jwks()
        nonce = secrets.token_urlsafe(12)
        now = int(time.time())
        presentation = present(credential, self.holder_key, aud=AUD, nonce=nonce, now=now)
        verified = verify_presentation(
            presentation,
            issuer_jwks=self.jwks,
            expected_issuer=self.issuer,
            expected_aud=AUD,
            expected_nonce=nonce,
            now=now,
        )
        lifetime = verified.exp - verified.iat
        if lifetime > max_lifetime:
            self.recorder.policy_violations.append(
                f"{stream} credential lifetime {lifetime}s exceeds the policy's {max_lifetime}s"
            )
        self.count += 1
        if self.npm is not None and self.count % NPM_SAMPLE_EVERY == 1:
            key = next(k for k in self.jwks["keys"] if k.get("kid") == kid)
            status_token = await self._status_list_token(verified.status)
            ok, detail = await self.npm.verify(
                presentation, key, aud=AUD, nonce=nonce, now=now, status_list_token=status_token
            )
            self.recorder.npm_results.append((stream, verified.claims.get("jti", ""), ok, detail))
        return lifetime

    async def _status_list_token(self, status: dict[str, Any] | None) -> str | None:
        if not status:
            return None
        uri = status.get("status_list", {}).get("uri")
        if not uri:
            return None
        try:
            response = await self.client.get(uri, timeout=REQUEST_TIMEOUT_SECONDS)
        except httpx.HTTPError:
            return None
        return response.text if response.status_code == 200 else None


def describe(error: BaseException) -> str:
    if isinstance(error, httpx.HTTPStatusError):
        try:
            body = error.response.json()
            status = error.response.status_code
            return f"HTTP {status} {body.get('error')}: {body.get('error_description')}"
        except ValueError:
            return f"HTTP {error.response.status_code}"
    if isinstance(error, CredentialError):
        return f"verification failed: {error}"
    return f"{type(error).__name__}: {error}"
