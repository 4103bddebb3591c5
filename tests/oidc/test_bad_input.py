"""Malformed input at every auth-plane endpoint gets a 4xx, never a 500."""

from __future__ import annotations

import base64
import random

import pytest
from quart.typing import TestClientProtocol as Client

from tests.oidc.conftest import Tenant, source

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
GARBAGE_BODIES = [
    b"",
    b"=",
    b"&&&",
    b"token=%00",
    b"token=\xff\xfe",
    b"token=" + b"%" * 100,
    b"grant_type=authorization_code&code=%E2%82&redirect_uri=x",
    b"grant_type=refresh_token&refresh_token=" + "é".encode() * 50,
    b"grant_type=client_credentials&resource=" + b"&resource=https://a/" * 20,
    b"grant_type=client_credentials&scope=a%20%20b",
    b"grant_type=authorization_code&code=abc&redirect_uri=https://rp.example/callback&code_verifier="
    + b"~" * 200,
    b"client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=a.b.c&grant_type=client_credentials",
    b"client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=e30.e30.&grant_type=client_credentials",
    b"client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=W10.W10.AA&grant_type=client_credentials",
]
AUTH_HEADERS = [
    {},
    {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode()},
    {"Authorization": "Basic " + base64.b64encode(b"svc%ZZ:%").decode()},
    {"Authorization": "Basic"},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer " + "a." * 10},
]


@pytest.mark.parametrize("endpoint", ["token", "introspect", "revoke"])
@pytest.mark.parametrize("body", GARBAGE_BODIES, ids=range(len(GARBAGE_BODIES)))
async def test_form_endpoints_never_500(
    client: Client, tenant: Tenant, endpoint: str, body: bytes
) -> None:
    for headers in [*AUTH_HEADERS, tenant.basic()]:
        response = await client.post(
            f"/o/{tenant.org}/{endpoint}", data=body, headers={**FORM, **headers}
        )
        assert 200 <= response.status_code < 500, (headers, await response.get_data(as_text=True))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer x",
        "Bearer e30.e30.e30",
        "Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6MX0.e30.AAAA",
        "Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6W119.e30.AAAA",
        "Bearer eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOjEsInN1YiI6MSwiY2xpZW50X2lkIjoxfQ.AAAA",
        "Bearer " + "A" * 9000,
        "Basic abc",
        "bearer  ",
    ],
)
async def test_userinfo_never_500(client: Client, tenant: Tenant, header: str) -> None:
    response = await client.get(f"/o/{tenant.org}/userinfo", headers={"Authorization": header})
    assert response.status_code in (401, 403)


@pytest.mark.parametrize(
    "query",
    [
        "id_token_hint=x",
        "id_token_hint=a.b.c",
        "id_token_hint=e30.e30.",
        "post_logout_redirect_uri=https://x/",
        "client_id=nobody&post_logout_redirect_uri=https://x/",
        "%ff=%fe",
        "state=" + "s" * 9000,
    ],
)
async def test_logout_never_500(client: Client, tenant: Tenant, query: str) -> None:
    response = await client.get(f"/o/{tenant.org}/logout?{query}")
    assert 200 <= response.status_code < 500


@pytest.mark.parametrize(
    "body", [*GARBAGE_BODIES[:6], b"csrf_token=x&authorize=%ff", b"authorize=" + b"a=" * 5000]
)
async def test_login_never_500(client: Client, tenant: Tenant, body: bytes) -> None:
    response = await client.post(
        f"/o/{tenant.org}/login", data=body, headers=FORM, scope_base=source()
    )
    assert 400 <= response.status_code < 500


async def test_random_bytes_never_500(client: Client, tenant: Tenant) -> None:
    generator = random.Random(4711)
    for _ in range(60):
        body = bytes(generator.randrange(256) for _ in range(generator.randrange(1, 300)))
        for endpoint in ("token", "introspect", "revoke", "login"):
            response = await client.post(
                f"/o/{tenant.org}/{endpoint}",
                data=body,
                headers={**FORM, **tenant.basic()},
                scope_base=source(),
            )
            assert response.status_code < 500, (endpoint, body)
