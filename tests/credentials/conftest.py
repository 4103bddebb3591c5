"""Keys, a fixed clock and builders shared by the credential tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jwcrypto.jwk import JWK

from appliance.credentials import issue_sd_jwt, present
from tests.credentials.sdjwt_forge import (
    AUD,
    ISSUER,
    KID,
    NONCE,
    NOW,
    STATUS_URI,
    Forge,
    public_dict,
)


@pytest.fixture(scope="session")
def issuer_key() -> JWK:
    return JWK.generate(kty="EC", crv="P-256", kid=KID)


@pytest.fixture(scope="session")
def issuer_jwks(issuer_key: JWK) -> dict[str, Any]:
    return {"keys": [public_dict(issuer_key)]}


@pytest.fixture(scope="session")
def holder_key() -> JWK:
    return JWK.generate(kty="EC", crv="P-256")


@pytest.fixture
def issue(issuer_key: JWK, holder_key: JWK) -> Callable[..., str]:
    """Return a function that issues a break-glass credential with overridable arguments."""

    def build(**overrides: Any) -> str:
        arguments: dict[str, Any] = {
            "signing_key": issuer_key,
            "kid": KID,
            "issuer": ISSUER,
            "subject": "alice",
            "holder_jwk": public_dict(holder_key),
            "iat": NOW,
            "nbf": NOW,
            "exp": NOW + 900,
            "disclosable": {
                "role": "db-admin",
                "resource": "postgres://orders",
                "incident": "INC-4711",
                "approvers": ["bob", "carol"],
            },
            "claims": {"status": {"status_list": {"idx": 7, "uri": STATUS_URI}}},
            "vct": "https://appliance.example/credentials/breakglass",
        }
        arguments.update(overrides)
        return issue_sd_jwt(**arguments)

    return build


@pytest.fixture
def presentation(issue: Callable[..., str], holder_key: JWK) -> str:
    return present(issue(), holder_key, aud=AUD, nonce=NONCE, now=NOW + 5)


@pytest.fixture
def forge(issuer_key: JWK, holder_key: JWK) -> Forge:
    return Forge(issuer_key, holder_key)
