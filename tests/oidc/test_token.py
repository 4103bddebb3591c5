"""The token endpoint: grant and client-authentication errors of RFC 6749 section 5.2."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from tests.oidc.conftest import API, RP_CALLBACK, Tenant, authorization_code, exchange


async def _token(
    client: Client, tenant: Tenant, form: dict[str, str], headers: dict[str, str] | None = None
) -> Any:
    return await client.post(
        f"/o/{tenant.org}/token",
        form=form,
        headers=headers if headers is not None else tenant.basic(),
    )


async def _error(response: Any, status: int = 400) -> str:
    assert response.status_code == status, await response.get_data(as_text=True)
    body = await response.get_json()
    assert set(body) <= {"error", "error_description"}
    return str(body["error"])


async def test_missing_verifier_is_invalid_request(client: Client, tenant: Tenant) -> None:
    code, _, _ = await authorization_code(client, tenant)
    assert await _error(await exchange(client, tenant, code, None)) == "invalid_request"


async def test_wrong_verifier_is_invalid_grant(client: Client, tenant: Tenant) -> None:
    code, _, _ = await authorization_code(client, tenant)
    assert await _error(await exchange(client, tenant, code, "x" * 50)) == "invalid_grant"


async def test_failed_pkce_consumes_code(client: Client, tenant: Tenant) -> None:
    code, verifier, _ = await authorization_code(client, tenant)
    await exchange(client, tenant, code, "x" * 50)
    assert await _error(await exchange(client, tenant, code, verifier)) == "invalid_grant"


async def test_other_redirect_uri_is_invalid_grant(client: Client, tenant: Tenant) -> None:
    code, verifier, _ = await authorization_code(client, tenant)
    response = await exchange(
        client, tenant, code, verifier, redirect_uri="http://127.0.0.1/callback"
    )
    assert await _error(response) == "invalid_grant"


async def test_expired_code_is_invalid_grant(client: Client, tenant: Tenant) -> None:
    code, verifier, _ = await authorization_code(client, tenant)
    tenant.clock.advance(61)
    assert await _error(await exchange(client, tenant, code, verifier)) == "invalid_grant"


async def test_code_of_other_client_is_invalid_grant(client: Client, tenant: Tenant) -> None:
    code, verifier, _ = await authorization_code(client, tenant)
    response = await exchange(
        client,
        tenant,
        code,
        verifier,
        headers={},
        client_id=tenant.post_id,
        client_secret=tenant.post_secret,
    )
    assert await _error(response) == "invalid_grant"
    # The rightful client can still redeem it.
    assert (await exchange(client, tenant, code, verifier)).status_code == 200


async def test_unknown_code_is_invalid_grant(client: Client, tenant: Tenant) -> None:
    assert await _error(await exchange(client, tenant, "no-such-code", "v" * 43)) == "invalid_grant"


async def test_resource_widening_is_invalid_target(client: Client, tenant: Tenant) -> None:
    code, verifier, _ = await authorization_code(client, tenant)
    assert (
        await _error(await exchange(client, tenant, code, verifier, resource=API))
        == "invalid_target"
    )


async def test_missing_grant_type_is_invalid_request(client: Client, tenant: Tenant) -> None:
    assert await _error(await _token(client, tenant, {"scope": "api.read"})) == "invalid_request"


async def test_unknown_grant_type_is_unsupported(client: Client, tenant: Tenant) -> None:
    response = await _token(
        client, tenant, {"grant_type": "password", "username": "a", "password": "b"}
    )
    assert await _error(response) == "unsupported_grant_type"


async def test_grant_not_registered_is_unauthorized_client(client: Client, tenant: Tenant) -> None:
    response = await _token(
        client,
        tenant,
        {"grant_type": "refresh_token", "refresh_token": "x"},
        tenant.basic(tenant.service_id, tenant.service_secret),
    )
    assert await _error(response) == "unauthorized_client"


async def test_client_credentials_with_basic(client: Client, tenant: Tenant) -> None:
    response = await _token(
        client,
        tenant,
        {"grant_type": "client_credentials", "scope": "api.read", "resource": API},
        tenant.basic(tenant.service_id, tenant.service_secret),
    )
    assert response.status_code == 200
    body = await response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "api.read"
    assert "refresh_token" not in body


async def test_client_credentials_with_post(client: Client, tenant: Tenant) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": tenant.post_id,
        "client_secret": tenant.post_secret,
    }
    assert (await _token(client, tenant, form, {})).status_code == 200


async def test_client_credentials_rejects_user_scope(client: Client, tenant: Tenant) -> None:
    response = await _token(
        client,
        tenant,
        {"grant_type": "client_credentials", "scope": "openid"},
        tenant.basic(tenant.service_id, tenant.service_secret),
    )
    assert await _error(response) == "invalid_scope"


async def test_client_credentials_rejects_unknown_resource(client: Client, tenant: Tenant) -> None:
    response = await _token(
        client,
        tenant,
        {"grant_type": "client_credentials", "resource": "https://other.example/"},
        tenant.basic(tenant.service_id, tenant.service_secret),
    )
    assert await _error(response) == "invalid_target"


async def test_wrong_secret_is_401_with_challenge(client: Client, tenant: Tenant) -> None:
    response = await _token(
        client,
        tenant,
        {"grant_type": "client_credentials"},
        tenant.basic(tenant.service_id, "wrong"),
    )
    assert await _error(response, 401) == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


async def test_unknown_client_is_invalid_client(client: Client, tenant: Tenant) -> None:
    response = await _token(
        client, tenant, {"grant_type": "client_credentials"}, tenant.basic("nobody", "x")
    )
    assert await _error(response, 401) == "invalid_client"


async def test_no_client_authentication_is_invalid_client(client: Client, tenant: Tenant) -> None:
    assert (
        await _error(await _token(client, tenant, {"grant_type": "client_credentials"}, {}), 401)
        == "invalid_client"
    )


async def test_registered_method_is_enforced(client: Client, tenant: Tenant) -> None:
    # rp-post is registered for client_secret_post; the right secret over Basic still fails.
    response = await _token(
        client,
        tenant,
        {"grant_type": "client_credentials"},
        tenant.basic(tenant.post_id, tenant.post_secret),
    )
    assert await _error(response, 401) == "invalid_client"


async def test_public_client_cannot_use_client_credentials(client: Client, tenant: Tenant) -> None:
    response = await _token(
        client, tenant, {"grant_type": "client_credentials", "client_id": tenant.public_id}, {}
    )
    assert await _error(response) == "unauthorized_client"


async def test_two_auth_methods_is_invalid_request(client: Client, tenant: Tenant) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": tenant.service_id,
        "client_secret": tenant.service_secret,
    }
    response = await _token(
        client, tenant, form, tenant.basic(tenant.service_id, tenant.service_secret)
    )
    assert await _error(response) == "invalid_request"


async def test_basic_credentials_are_form_decoded(client: Client, tenant: Tenant) -> None:
    # RFC 6749 section 2.3.1: client id and secret are form-encoded before Basic encoding.
    raw = f"{tenant.service_id}:{tenant.service_secret}".replace("-", "%2D").encode()
    headers = {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    assert (
        await _token(client, tenant, {"grant_type": "client_credentials"}, headers)
    ).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer abc",
        "Basic " + "A" * 2000,
    ],
)
async def test_malformed_authorization_header(client: Client, tenant: Tenant, header: str) -> None:
    response = await _token(
        client, tenant, {"grant_type": "client_credentials"}, {"Authorization": header}
    )
    assert await _error(response, 401) == "invalid_client"


async def test_json_body_is_invalid_request(client: Client, tenant: Tenant) -> None:
    response = await client.post(
        f"/o/{tenant.org}/token", json={"grant_type": "client_credentials"}, headers=tenant.basic()
    )
    assert await _error(response) == "invalid_request"


async def test_repeated_parameter_is_invalid_request(client: Client, tenant: Tenant) -> None:
    response = await client.post(
        f"/o/{tenant.org}/token",
        data=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={**tenant.basic(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert await _error(response) == "invalid_request"


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type=client_credentials&scope=" + b"a" * 20_000,
        b"x=1&" * 5000,
        b"grant_type=%ff%fe",
        b"\xff\xfe\xfd",
        b"grant_type=client_credentials&client_assertion=" + b"e" * 9000,
    ],
)
async def test_oversized_or_malformed_body_is_400(
    client: Client, tenant: Tenant, body: bytes
) -> None:
    response = await client.post(
        f"/o/{tenant.org}/token",
        data=body,
        headers={**tenant.basic(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert await _error(response) == "invalid_request"


async def test_body_over_app_limit_is_rejected(client: Client, tenant: Tenant) -> None:
    response = await client.post(
        f"/o/{tenant.org}/token",
        data=b"a" * 100_000,
        headers={**tenant.basic(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert await _error(response) == "invalid_request"


async def test_token_endpoint_rejects_get(client: Client, tenant: Tenant) -> None:
    response = await client.get(f"/o/{tenant.org}/token")
    assert response.status_code == 405


async def test_code_of_one_org_fails_at_another(
    client: Client, tenant: Tenant, database: object, superuser: object
) -> None:
    from tests.oidc.conftest import make_tenant

    other = await make_tenant(database, superuser, tenant.clock)  # type: ignore[arg-type]
    code, verifier, _ = await authorization_code(client, tenant)
    # Same client id and a valid secret in the other org: the code still does not resolve there.
    response = await client.post(
        f"/o/{other.org}/token",
        form={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": RP_CALLBACK,
            "code_verifier": verifier,
        },
        headers=other.basic(),
    )
    assert await _error(response) == "invalid_grant"
