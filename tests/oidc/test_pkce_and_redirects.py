"""PKCE (RFC 7636) and redirect URI matching (RFC 8252), as units."""

from __future__ import annotations

import pytest

from appliance.oidc import rfc7636
from appliance.oidc.errors import InvalidGrant, InvalidRequest
from appliance.oidc.rfc8252 import check_registered_redirect_uri, redirect_uri_matches


def test_s256_matches_rfc7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert rfc7636.s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    rfc7636.verify(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")


def test_plain_method_rejected() -> None:
    with pytest.raises(InvalidRequest):
        rfc7636.check_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "plain")


def test_missing_method_rejected() -> None:
    with pytest.raises(InvalidRequest):
        rfc7636.check_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", None)


def test_wrong_verifier_is_invalid_grant() -> None:
    with pytest.raises(InvalidGrant):
        rfc7636.verify("a" * 43, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")


def test_verifier_used_as_challenge_fails() -> None:
    # A `plain` downgrade: the client sends the verifier itself as challenge.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    with pytest.raises(InvalidGrant):
        rfc7636.verify(verifier, verifier)


@pytest.mark.parametrize(
    ("requested", "registered", "matches"),
    [
        ("https://rp.example/cb", "https://rp.example/cb", True),
        ("https://rp.example.evil.com/cb", "https://rp.example/cb", False),
        ("https://evil.rp.example/cb", "https://rp.example/cb", False),
        ("https://rp.example@evil.com/cb", "https://rp.example/cb", False),
        ("https://evil.com@rp.example/cb", "https://rp.example/cb", False),
        ("https://RP.example/cb", "https://rp.example/cb", False),
        ("https://rp.example/CB", "https://rp.example/cb", False),
        ("https://rp.example/cb/../evil", "https://rp.example/cb", False),
        ("https://rp.example/cb/%2e%2e/evil", "https://rp.example/cb", False),
        ("https://rp.example/cb#frag", "https://rp.example/cb", False),
        ("https://rp.example/cb?x=1", "https://rp.example/cb", False),
        ("https://rp.example:444/cb", "https://rp.example/cb", False),
        ("http://rp.example/cb", "https://rp.example/cb", False),
        ("http://127.0.0.1:8123/cb", "http://127.0.0.1/cb", True),
        ("http://127.0.0.1:8123/cb", "http://127.0.0.1:9000/cb", True),
        ("http://[::1]:8123/cb", "http://[::1]/cb", True),
        ("http://127.0.0.1:8123/other", "http://127.0.0.1/cb", False),
        ("http://127.0.0.1:8123/cb#x", "http://127.0.0.1/cb", False),
        ("http://127.0.0.1.evil.com/cb", "http://127.0.0.1/cb", False),
        ("http://127.0.0.1:80@evil.com/cb", "http://127.0.0.1/cb", False),
        ("http://127.0.0.1:99999/cb", "http://127.0.0.1/cb", False),
        ("http://localhost:8123/cb", "http://localhost/cb", False),
        ("http://[::1]:8123/cb", "http://127.0.0.1/cb", False),
    ],
)
def test_redirect_uri_matching(requested: str, registered: str, matches: bool) -> None:
    assert redirect_uri_matches(requested, registered) is matches


@pytest.mark.parametrize(
    "uri",
    [
        "https://rp.example/cb#fragment",
        "http://rp.example/cb",
        "http://localhost/cb",
        "rp.example/cb",
        "javascript:alert(1)",
        "https://user@rp.example/cb",
        "https://rp.example/c b",
        "",
    ],
)
def test_registration_rejects_unsafe_redirect_uri(uri: str) -> None:
    with pytest.raises(ValueError, match="redirect URI"):
        check_registered_redirect_uri(uri)


@pytest.mark.parametrize(
    "uri",
    ["https://rp.example/cb", "http://127.0.0.1/cb", "http://[::1]:8080/cb", "com.example.app:/cb"],
)
def test_registration_accepts_safe_redirect_uri(uri: str) -> None:
    assert check_registered_redirect_uri(uri) == uri
