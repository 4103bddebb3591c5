"""Break-glass activation through the HTTP API, with a real database."""

from __future__ import annotations

import asyncio
import json
import logging
from uuid import UUID

import asyncpg
import pytest
from quart.typing import TestClientProtocol as Client

from appliance.clock import FrozenClock
from appliance.credentials.holder import present
from appliance.credentials.verify import verify_presentation
from appliance.settings import Plane
from tests.breakglass.conftest import Account, activation_body, holder, make_account, source
from tests.conftest import Database

ACTIVATE = "/o/{org}/breakglass/activate"


async def _activate(
    client: Client, who: Account, /, scope: dict | None = None, **overrides: object
):  # type: ignore[no-untyped-def]
    return await client.post(
        ACTIVATE.format(org=who.org),
        json=activation_body(who, **overrides),
        scope_base=scope or source(),
    )


async def _audit(
    superuser: asyncpg.Connection, org_id: UUID, event_type: str
) -> list[asyncpg.Record]:
    return await superuser.fetch(
        "SELECT failure_reason, data, outcome FROM audit_events "
        "WHERE org_id = $1 AND event_type = $2 ORDER BY seq",
        org_id,
        event_type,
    )


async def test_activation_issues_verifiable_credential(
    client: Client, account: Account, clock: FrozenClock
) -> None:
    key, public = holder()
    response = await _activate(client, account, holder_jwk=public)
    assert response.status_code == 201
    body = await response.get_json()
    assert body["issuer"] == f"https://appliance.test/o/{account.org}/breakglass"
    assert body["expires_at"] - body["issued_at"] == 900
    jwks = await (await client.get(f"/o/{account.org}/breakglass/jwks.json")).get_json()
    now = int(clock.now.timestamp())
    presentation = present(body["credential"], key, aud="https://rp.test", nonce="n-1", now=now)
    verified = verify_presentation(
        presentation,
        issuer_jwks=jwks,
        expected_issuer=body["issuer"],
        expected_aud="https://rp.test",
        expected_nonce="n-1",
        now=now,
    )
    assert verified.subject == "oncall"
    assert verified.disclosed == {
        "role": "breakglass-admin",
        "incident": "INC-4711",
        "reason": "primary IdP down; need to restart the auth cluster",
    }
    assert verified.exp == now + 900


async def test_activation_is_audited(
    client: Client, account: Account, superuser: asyncpg.Connection
) -> None:
    response = await _activate(client, account)
    body = await response.get_json()
    events = await _audit(superuser, account.org_id, "breakglass.activated")
    assert len(events) == 1
    data = json.loads(events[0]["data"])
    assert data["credential_id"] == body["credential_id"]
    assert data["incident"] == "INC-4711"
    assert data["expires_at"] == body["expires_at"]


async def test_requested_ttl_is_used(client: Client, account: Account) -> None:
    body = await (await _activate(client, account, ttl_seconds=300)).get_json()
    assert body["ttl_seconds"] == 300
    assert body["ttl_capped"] is False


async def test_ttl_above_account_max_is_capped(
    client: Client, database: Database, superuser: asyncpg.Connection, clock: FrozenClock
) -> None:
    account = await make_account(database, superuser, clock, default_ttl=600, max_ttl=1200)
    body = await (await _activate(client, account, ttl_seconds=3600)).get_json()
    assert body["ttl_seconds"] == 1200
    assert body["ttl_capped"] is True


@pytest.mark.parametrize("ttl", [59, 3601, "15m", True, 1.5])
async def test_invalid_ttl_is_rejected(client: Client, account: Account, ttl: object) -> None:
    response = await _activate(client, account, ttl_seconds=ttl)
    assert response.status_code == 400
    assert (await response.get_json())["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"passphrase": "wrong passphrase"}, "wrong_passphrase"),
        ({"totp": "000000"}, "wrong_totp"),
        ({"account": "nobody"}, "unknown_account"),
    ],
)
async def test_failures_look_the_same_and_are_audited(
    client: Client,
    account: Account,
    superuser: asyncpg.Connection,
    overrides: dict[str, str],
    reason: str,
) -> None:
    if overrides.get("totp") == "000000" and account.totp() == "000000":
        overrides = {"totp": "111111"}
    response = await _activate(client, account, **overrides)
    assert response.status_code == 401
    body = await response.get_json()
    assert body["error"] == "activation_failed"
    events = await _audit(superuser, account.org_id, "breakglass.activation_failed")
    assert [e["failure_reason"] for e in events] == [reason]


async def test_failure_bodies_are_identical(client: Client, account: Account) -> None:
    wrong_passphrase = await _activate(client, account, passphrase="nope")
    unknown_account = await _activate(client, account, account="ghost")
    assert await wrong_passphrase.get_json() == await unknown_account.get_json()


async def test_totp_code_is_accepted_once(client: Client, account: Account) -> None:
    code = account.totp()
    assert (await _activate(client, account, totp=code)).status_code == 201
    replay = await _activate(client, account, totp=code)
    assert replay.status_code == 401


async def test_replayed_totp_is_audited_as_replay(
    client: Client, account: Account, superuser: asyncpg.Connection
) -> None:
    code = account.totp()
    await _activate(client, account, totp=code)
    await _activate(client, account, totp=code)
    events = await _audit(superuser, account.org_id, "breakglass.activation_failed")
    assert [e["failure_reason"] for e in events] == ["totp_replayed"]


async def test_next_step_code_works_after_use(
    client: Client, account: Account, clock: FrozenClock
) -> None:
    assert (await _activate(client, account)).status_code == 201
    clock.advance(30)
    assert (await _activate(client, account)).status_code == 201


async def test_concurrent_activations_with_one_code_issue_once(
    client: Client, account: Account
) -> None:
    code = account.totp()
    responses = await asyncio.gather(*(_activate(client, account, totp=code) for _ in range(5)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 401, 401, 401, 401]


async def test_account_locks_after_repeated_failures(
    client: Client, account: Account, superuser: asyncpg.Connection, clock: FrozenClock
) -> None:
    for _ in range(5):
        assert (await _activate(client, account, passphrase="wrong")).status_code == 401
    clock.advance(30)
    # Correct factors, but the account is locked.
    assert (await _activate(client, account)).status_code == 401
    events = await _audit(superuser, account.org_id, "breakglass.activation_failed")
    assert events[-1]["failure_reason"] == "account_locked"
    assert "locked_until" in json.loads(events[4]["data"])
    clock.advance(15 * 60)
    assert (await _activate(client, account)).status_code == 201


async def test_source_address_is_rate_limited(
    client: Client, database: Database, superuser: asyncpg.Connection, clock: FrozenClock
) -> None:
    scope = source()
    # Spread over several accounts, so the per-account lockout does not trigger first.
    accounts = [await make_account(database, superuser, clock) for _ in range(5)]
    for n in range(20):
        response = await _activate(client, accounts[n % 5], scope=scope, passphrase="wrong")
        assert response.status_code == 401
    limited = await _activate(client, accounts[0], scope=scope)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "900"
    other_source = await _activate(client, accounts[0])
    assert other_source.status_code == 201


async def test_disabled_account_fails(
    client: Client, account: Account, superuser: asyncpg.Connection
) -> None:
    await superuser.execute(
        "UPDATE breakglass_accounts SET disabled = true WHERE org_id = $1", account.org_id
    )
    assert (await _activate(client, account)).status_code == 401
    events = await _audit(superuser, account.org_id, "breakglass.activation_failed")
    assert [e["failure_reason"] for e in events] == ["account_disabled"]


async def test_unknown_org_is_not_found(client: Client, account: Account) -> None:
    response = await client.post(
        "/o/no-such-org/breakglass/activate", json=activation_body(account), scope_base=source()
    )
    assert response.status_code == 404
    assert (await response.get_json())["error"] == "not_found"


async def test_secrets_never_reach_the_log(
    client: Client, account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = account.totp()
    await _activate(client, account, totp=code)
    await _activate(client, account, totp=code, passphrase="wrong-" + account.passphrase)
    text = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert "audit event" in text
    assert account.passphrase not in text
    assert code not in text
    assert account.totp_secret not in text


async def test_other_plane_routes_are_not_mounted(client: Client) -> None:
    response = await client.get("/o/demo/.well-known/openid-configuration")
    assert response.status_code == 404


async def test_jwks_and_issuer_metadata(client: Client, account: Account) -> None:
    await _activate(client, account)
    metadata = await (
        await client.get(f"/.well-known/jwt-vc-issuer/o/{account.org}/breakglass")
    ).get_json()
    assert metadata["issuer"] == f"https://appliance.test/o/{account.org}/breakglass"
    assert metadata["jwks_uri"] == f"{metadata['issuer']}/jwks.json"
    jwks = await (await client.get(f"/o/{account.org}/breakglass/jwks.json")).get_json()
    assert [k["alg"] for k in jwks["keys"]] == ["ES256"]
    assert all("d" not in k for k in jwks["keys"])


async def test_seal_key_is_published(
    superuser: asyncpg.Connection, database: Database, app: object
) -> None:
    from appliance.keys.sealing import sealing_private_key

    stored = await superuser.fetchval(
        "SELECT public_key FROM plane_seal_keys WHERE plane = 'breakglass'"
    )
    expected = sealing_private_key(
        database.master_secrets[Plane.BREAKGLASS], "breakglass"
    ).public_key
    assert bytes(stored) == bytes(expected)


async def test_reused_code_does_not_count_toward_lockout(
    client: Client, account: Account, superuser: asyncpg.Connection
) -> None:
    code = account.totp()
    assert (await _activate(client, account, totp=code)).status_code == 201
    for _ in range(6):
        assert (await _activate(client, account, totp=code)).status_code == 401
    locked = await superuser.fetchval(
        "SELECT locked_until FROM breakglass_accounts WHERE org_id = $1", account.org_id
    )
    assert locked is None


async def test_locked_account_still_hashes_passphrase(
    client: Client, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(5):
        await _activate(client, account, passphrase="wrong")
    from appliance.breakglass import factors

    calls: list[str] = []
    real = factors.verify_passphrase

    async def counting(stored: str | None, passphrase: str) -> None:
        calls.append(passphrase)
        await real(stored, passphrase)

    monkeypatch.setattr(factors, "verify_passphrase", counting)
    assert (await _activate(client, account)).status_code == 401
    assert calls == [account.passphrase]


async def test_forwarded_for_ignored_without_trusted_proxy(
    client: Client, account: Account, superuser: asyncpg.Connection
) -> None:
    scope = source("203.0.113.7")
    await client.post(
        ACTIVATE.format(org=account.org),
        json=activation_body(account, passphrase="wrong"),
        scope_base=scope,
        headers={"X-Forwarded-For": "198.51.100.99"},
    )
    sources = await superuser.fetch(
        "SELECT source FROM audit_events WHERE org_id = $1 AND event_type = "
        "'breakglass.activation_failed'",
        account.org_id,
    )
    service = client.app.extensions["breakglass"]  # type: ignore[attr-defined]
    assert [row["source"] for row in sources] == [service.source_hash("203.0.113.7")]


async def test_forwarded_for_used_behind_trusted_proxy(
    database: Database, superuser: asyncpg.Connection, clock: FrozenClock
) -> None:
    from dataclasses import replace
    from ipaddress import ip_network

    from appliance.app import create_app

    account = await make_account(database, superuser, clock)
    settings = replace(
        database.settings(Plane.BREAKGLASS), trusted_proxies=(ip_network("10.0.0.0/8"),)
    )
    application = create_app(settings, clock=clock)
    async with application.test_app():
        client = application.test_client()
        await client.post(
            ACTIVATE.format(org=account.org),
            json=activation_body(account, passphrase="wrong"),
            scope_base=source("10.1.2.3"),
            headers={"X-Forwarded-For": "192.0.2.1, 198.51.100.5, 10.9.9.9"},
        )
        service = application.extensions["breakglass"]
        row = await superuser.fetchval(
            "SELECT source FROM audit_events WHERE org_id = $1 AND event_type = "
            "'breakglass.activation_failed'",
            account.org_id,
        )
    # The nearest address that is not a trusted proxy, read from the right.
    assert row == service.source_hash("198.51.100.5")
