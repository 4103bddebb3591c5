"""private_key_jwt (RFC 7523): signature, claims, lifetime, clock skew and jti replay."""

from __future__ import annotations

from typing import Any

import pytest
from jwcrypto import jwk
from quart.typing import TestClientProtocol as Client

from appliance.oidc.rfc7523 import ASSERTION_TYPE
from tests.oidc.conftest import Tenant
from tests.oidc.forge import assertion_claims, hs256_with_public_key, signed, unsigned


async def _token(client: Client, tenant: Tenant, assertion: str) -> Any:
    return await client.post(
        f"/o/{tenant.org}/token",
        form={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )


def _claims(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    return assertion_claims(
        tenant.jwt_id, f"{tenant.issuer}/token", now=tenant.clock.now.timestamp(), **overrides
    )


async def _status(client: Client, tenant: Tenant, assertion: str) -> tuple[int, str | None]:
    response = await _token(client, tenant, assertion)
    body = await response.get_json()
    return response.status_code, body.get("error")


async def test_valid_assertion_accepted(client: Client, tenant: Tenant) -> None:
    assert await _status(
        client, tenant, signed(tenant.jwt_key, _claims(tenant), kid="rp-key-1")
    ) == (200, None)


async def test_assertion_with_issuer_audience_accepted(client: Client, tenant: Tenant) -> None:
    assertion = signed(tenant.jwt_key, _claims(tenant, aud=tenant.issuer))
    assert await _status(client, tenant, assertion) == (200, None)


async def test_replayed_jti_rejected(client: Client, tenant: Tenant) -> None:
    assertion = signed(tenant.jwt_key, _claims(tenant))
    assert (await _status(client, tenant, assertion))[0] == 200
    assert await _status(client, tenant, assertion) == (401, "invalid_client")


async def test_concurrent_replay_accepts_one(client: Client, tenant: Tenant) -> None:
    import asyncio

    assertion = signed(tenant.jwt_key, _claims(tenant))
    results = await asyncio.gather(*(_status(client, tenant, assertion) for _ in range(4)))
    assert sorted(status for status, _ in results) == [200, 401, 401, 401]


def _public(tenant: Tenant) -> jwk.JWK:
    return jwk.JWK(**tenant.jwt_key.export_public(as_dict=True))


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda t: unsigned(_claims(t)), id="alg-none"),
        pytest.param(lambda t: unsigned(_claims(t))[:-1], id="alg-none-no-dot"),
        pytest.param(
            lambda t: hs256_with_public_key(_public(t), _claims(t)), id="hs256-with-public-key"
        ),
        pytest.param(
            lambda t: signed(jwk.JWK.generate(kty="EC", crv="P-256"), _claims(t)),
            id="unregistered-key",
        ),
        pytest.param(
            lambda t: signed(t.jwt_key, _claims(t, aud="https://elsewhere.example/token")),
            id="wrong-aud",
        ),
        pytest.param(lambda t: signed(t.jwt_key, _claims(t, iss="someone-else")), id="wrong-iss"),
        pytest.param(lambda t: signed(t.jwt_key, _claims(t, sub="someone-else")), id="wrong-sub"),
        pytest.param(lambda t: signed(t.jwt_key, _claims(t, jti=None)), id="no-jti"),
        pytest.param(lambda t: signed(t.jwt_key, _claims(t, exp=None)), id="no-exp"),
        pytest.param(
            lambda t: signed(t.jwt_key, _claims(t, exp=int(t.clock.now.timestamp()) + 7200)),
            id="exp-too-far",
        ),
        pytest.param(lambda t: signed(t.jwt_key, _claims(t), kid="other-kid"), id="unknown-kid"),
        pytest.param(
            lambda t: signed(t.jwt_key, _claims(t), crit=["b64"], b64=True), id="crit-header"
        ),
        pytest.param(lambda t: "a.b.c", id="garbage"),
    ],
)
async def test_bad_assertion_is_invalid_client(client: Client, tenant: Tenant, forge: Any) -> None:
    assert await _status(client, tenant, forge(tenant)) == (401, "invalid_client")


async def test_oversized_assertion_is_invalid_request(client: Client, tenant: Tenant) -> None:
    assert await _status(client, tenant, "x" * 9000) == (400, "invalid_request")


async def test_expired_assertion_within_skew_accepted(client: Client, tenant: Tenant) -> None:
    now = int(tenant.clock.now.timestamp())
    assertion = signed(tenant.jwt_key, _claims(tenant, iat=now - 80, exp=now - 20))
    assert (await _status(client, tenant, assertion))[0] == 200


async def test_expired_assertion_beyond_skew_rejected(client: Client, tenant: Tenant) -> None:
    now = int(tenant.clock.now.timestamp())
    assertion = signed(tenant.jwt_key, _claims(tenant, iat=now - 120, exp=now - 31))
    assert await _status(client, tenant, assertion) == (401, "invalid_client")


async def test_future_iat_within_skew_accepted(client: Client, tenant: Tenant) -> None:
    now = int(tenant.clock.now.timestamp())
    assertion = signed(tenant.jwt_key, _claims(tenant, iat=now + 20, nbf=now + 20, exp=now + 80))
    assert (await _status(client, tenant, assertion))[0] == 200


async def test_future_iat_beyond_skew_rejected(client: Client, tenant: Tenant) -> None:
    now = int(tenant.clock.now.timestamp())
    assertion = signed(tenant.jwt_key, _claims(tenant, iat=now + 120, exp=now + 180))
    assert await _status(client, tenant, assertion) == (401, "invalid_client")


async def test_future_nbf_beyond_skew_rejected(client: Client, tenant: Tenant) -> None:
    now = int(tenant.clock.now.timestamp())
    assertion = signed(tenant.jwt_key, _claims(tenant, nbf=now + 120, exp=now + 180))
    assert await _status(client, tenant, assertion) == (401, "invalid_client")


async def test_wrong_assertion_type_is_invalid_request(client: Client, tenant: Tenant) -> None:
    response = await client.post(
        f"/o/{tenant.org}/token",
        form={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            "client_assertion": signed(tenant.jwt_key, _claims(tenant)),
        },
    )
    assert response.status_code == 400
    assert (await response.get_json())["error"] == "invalid_request"


async def test_secret_cannot_replace_assertion(client: Client, tenant: Tenant) -> None:
    response = await client.post(
        f"/o/{tenant.org}/token",
        form={
            "grant_type": "client_credentials",
            "client_id": tenant.jwt_id,
            "client_secret": "guess",
        },
    )
    assert response.status_code == 401
