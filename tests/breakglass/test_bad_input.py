"""Bad input to the activation endpoint gets a clear 4xx, never a 500."""

from __future__ import annotations

import pytest
from quart.typing import TestClientProtocol as Client

from tests.breakglass.conftest import Account, activation_body, source


async def _post_raw(client: Client, org: str, data: bytes, content_type: str = "application/json"):  # type: ignore[no-untyped-def]
    return await client.post(
        f"/o/{org}/breakglass/activate",
        data=data,
        headers={"Content-Type": content_type},
        scope_base=source(),
    )


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        (b"{not json", 400, "invalid_request"),
        (b"\xff\xfe\x00garbage", 400, "invalid_request"),
        (b"[]", 400, "invalid_request"),
        (b"null", 400, "invalid_request"),
        (b"[" * 100_000 + b"]" * 100_000, 413, "payload_too_large"),
        (b'{"a": "' + b"x" * 70_000 + b'"}', 413, "payload_too_large"),
        (b"[" * 5000 + b"]" * 5000, 400, "invalid_request"),
        (b'{"ttl_seconds": NaN}', 400, "invalid_request"),
        (b'{"ttl_seconds": Infinity}', 400, "invalid_request"),
    ],
)
async def test_malformed_body(
    client: Client, account: Account, data: bytes, status: int, error: str
) -> None:
    response = await _post_raw(client, account.org, data)
    assert response.status_code == status
    assert (await response.get_json())["error"] == error


async def test_wrong_content_type(client: Client, account: Account) -> None:
    response = await _post_raw(
        client, account.org, b"account=x", "application/x-www-form-urlencoded"
    )
    assert response.status_code == 415


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("account", None),
        ("account", 5),
        ("account", "UPPER"),
        ("account", "a" * 64),
        ("passphrase", ""),
        ("passphrase", "x" * 1025),
        ("totp", "12345"),
        ("totp", "12a456"),
        ("incident", "has space"),
        ("incident", ""),
        ("reason", "   "),
        ("reason", "r" * 1001),
        ("account", "oncall\n"),
        ("incident", "INC-7\n"),
        ("reason", "outage\u0000poison"),
        ("reason", "lone \ud800 surrogate"),
        ("passphrase", "\ud800"),
        ("reason", "bell \x07"),
        ("holder_jwk", None),
        ("holder_jwk", "not an object"),
        ("holder_jwk", {"kty": "RSA", "n": "x", "e": "AQAB"}),
        ("holder_jwk", {"kty": "EC", "crv": "P-384", "x": "a", "y": "b"}),
        ("holder_jwk", {"kty": "EC", "crv": "P-256", "x": "a"}),
        ("holder_jwk", {"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "secret"}),
        ("holder_jwk", {"kty": "EC", "crv": "P-256", "x": "not-a-point", "y": "not-a-point"}),
    ],
)
async def test_invalid_field(client: Client, account: Account, field: str, value: object) -> None:
    body = activation_body(account)
    if value is None:
        body.pop(field)
    else:
        body[field] = value
    response = await client.post(
        f"/o/{account.org}/breakglass/activate", json=body, scope_base=source()
    )
    assert response.status_code == 400, await response.get_data()
    payload = await response.get_json()
    assert payload["error"] == "invalid_request"
    assert field in payload["error_description"]


@pytest.mark.parametrize("org", ["UPPER", "a" * 70, "..", "x%00y", "demo%0A"])
async def test_invalid_org_is_not_found(client: Client, account: Account, org: str) -> None:
    response = await client.post(
        f"/o/{org}/breakglass/activate", json=activation_body(account), scope_base=source()
    )
    assert response.status_code == 404


async def test_get_on_activate_is_method_not_allowed(client: Client, account: Account) -> None:
    response = await client.get(f"/o/{account.org}/breakglass/activate")
    assert response.status_code == 405
    assert (await response.get_json())["error"] == "method_not_allowed"
