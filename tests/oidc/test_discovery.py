"""Discovery metadata at all three well-known paths, and the JWKS."""

from __future__ import annotations

from quart.typing import TestClientProtocol as Client

from tests.oidc.conftest import Tenant


async def test_metadata_same_at_every_path(client: Client, tenant: Tenant) -> None:
    documents = []
    for path in (
        f"/o/{tenant.org}/.well-known/openid-configuration",
        f"/.well-known/openid-configuration/o/{tenant.org}",
        f"/.well-known/oauth-authorization-server/o/{tenant.org}",
    ):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["Cache-Control"].startswith("public")
        documents.append(await response.get_json())
    assert documents[0] == documents[1] == documents[2]


async def test_metadata_content(client: Client, tenant: Tenant) -> None:
    metadata = await (
        await client.get(f"/o/{tenant.org}/.well-known/openid-configuration")
    ).get_json()
    assert metadata["issuer"] == tenant.issuer
    assert metadata["token_endpoint"] == f"{tenant.issuer}/token"
    assert metadata["jwks_uri"] == f"{tenant.issuer}/jwks.json"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
    assert metadata["authorization_response_iss_parameter_supported"] is True


async def test_jwks_publishes_public_keys_only(client: Client, tenant: Tenant) -> None:
    response = await client.get(f"/o/{tenant.org}/jwks.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/jwk-set+json")
    keys = (await response.get_json())["keys"]
    assert len(keys) == 1
    assert keys[0]["alg"] == "ES256"
    assert "d" not in keys[0]


async def test_unknown_org_metadata_404(client: Client, tenant: Tenant) -> None:
    for path in (
        "/o/nope/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server/o/nope",
    ):
        response = await client.get(path)
        assert response.status_code == 404
    response = await client.get("/o/BAD..name/jwks.json")
    assert response.status_code == 404
