"""Disclosure digests against RFC 9901 examples and the strict processing rules of section 7.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from appliance.credentials.disclosures import (
    MAX_DEPTH,
    decode_disclosure,
    process_disclosures,
)
from appliance.credentials.errors import CredentialError
from tests.credentials.sdjwt_forge import b64url, b64url_json, digest_of

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "rfc9901_disclosures.json").read_text(encoding="utf-8")
)


@pytest.mark.parametrize("vector", VECTORS["disclosures"], ids=lambda v: v["section"])
def test_disclosure_matches_rfc_example(vector: dict[str, Any]) -> None:
    disclosure = decode_disclosure(vector["disclosure"])

    assert disclosure.digest == vector["digest"]
    assert disclosure.salt == vector["salt"]
    assert disclosure.name == vector["name"]
    assert disclosure.value == vector["value"]


def test_rfc_example_payload_processes_to_disclosed_claims() -> None:
    example = VECTORS["example_5_1"]
    disclosures = [decode_disclosure(item["disclosure"]) for item in example["disclosures"]]
    payload = {"iss": "https://issuer.example.com", "_sd": example["_sd"], "_sd_alg": "sha-256"}

    claims, disclosed = process_disclosures(payload, disclosures)

    expected = {item["name"]: item["value"] for item in example["disclosures"]}
    assert claims == {"iss": "https://issuer.example.com", **expected}
    assert disclosed == set(expected)
    for item, disclosure in zip(example["disclosures"], disclosures, strict=True):
        assert disclosure.digest == item["digest"]


def test_digest_is_over_encoded_string_not_json() -> None:
    # Two encodings of the same JSON array must give different digests (RFC 9901 section 4.2.3).
    compact = b64url(b'["salt","name","value"]')
    spaced = b64url(b'["salt", "name", "value"]')

    assert decode_disclosure(compact).value == decode_disclosure(spaced).value
    assert decode_disclosure(compact).digest != decode_disclosure(spaced).digest


@pytest.mark.parametrize(
    "content",
    [
        pytest.param({"salt": "s", "name": "n"}, id="object"),
        pytest.param(["s"], id="one-element"),
        pytest.param(["s", "name", "value", "extra"], id="four-elements"),
        pytest.param([17, "name", "value"], id="salt-not-string"),
        pytest.param(["s", 17, "value"], id="name-not-string"),
        pytest.param("just a string", id="string"),
    ],
)
def test_rejects_malformed_disclosure(content: Any) -> None:
    with pytest.raises(CredentialError) as caught:
        decode_disclosure(b64url_json(content))

    assert caught.value.code == "disclosure_invalid"


@pytest.mark.parametrize("encoded", ["not base64!", "WyJz", "a", "e30=", "eyJ"])
def test_rejects_disclosure_that_is_not_base64url_json(encoded: str) -> None:
    with pytest.raises(CredentialError) as caught:
        decode_disclosure(encoded)

    assert caught.value.code == "disclosure_invalid"


def test_rejects_disclosure_with_nan() -> None:
    encoded = b64url(b'["s", "n", NaN]')

    with pytest.raises(CredentialError) as caught:
        decode_disclosure(encoded)

    assert caught.value.code == "disclosure_invalid"


def _process(payload: dict[str, Any], *encoded: str) -> tuple[dict[str, Any], frozenset[str]]:
    return process_disclosures(payload, [decode_disclosure(item) for item in encoded])


def test_undisclosed_and_decoy_digests_are_dropped() -> None:
    role = b64url_json(["s1", "role", "admin"])
    payload = {"_sd": [digest_of(role), digest_of("decoy")], "sub": "alice"}

    claims, disclosed = _process(payload, role)

    assert claims == {"sub": "alice", "role": "admin"}
    assert disclosed == {"role"}


def test_nested_and_array_disclosures_are_resolved() -> None:
    first = b64url_json(["s1", "bob"])
    second = b64url_json(["s2", "carol"])
    street = b64url_json(["s3", "ticket", "INC-1"])
    approval = b64url_json(["s4", "approval", {"_sd": [digest_of(street)], "by": "dave"}])
    payload = {
        "_sd": [digest_of(approval)],
        "approvers": [{"...": digest_of(first)}, {"...": digest_of(second)}, {"...": "decoy"}],
    }

    claims, disclosed = _process(payload, first, second, street, approval)

    assert claims["approvers"] == ["bob", "carol"]
    assert claims["approval"] == {"by": "dave", "ticket": "INC-1"}
    assert disclosed == {"approval"}


def test_rejects_unreferenced_disclosure() -> None:
    role = b64url_json(["s1", "role", "admin"])
    stray = b64url_json(["s2", "role2", "root"])

    with pytest.raises(CredentialError) as caught:
        _process({"_sd": [digest_of(role)]}, role, stray)

    assert caught.value.code == "disclosure_unreferenced"


def test_rejects_same_disclosure_presented_twice() -> None:
    role = b64url_json(["s1", "role", "admin"])

    with pytest.raises(CredentialError) as caught:
        _process({"_sd": [digest_of(role)]}, role, role)

    assert caught.value.code == "disclosure_duplicate"


def test_rejects_duplicate_digest_in_sd() -> None:
    role = b64url_json(["s1", "role", "admin"])

    with pytest.raises(CredentialError) as caught:
        _process({"_sd": [digest_of(role), digest_of(role)]}, role)

    assert caught.value.code == "digest_duplicate"


def test_rejects_duplicate_decoy_digest_across_levels() -> None:
    payload = {"_sd": ["decoy"], "nested": {"_sd": ["decoy"]}}

    with pytest.raises(CredentialError) as caught:
        _process(payload)

    assert caught.value.code == "digest_duplicate"


def test_rejects_digest_in_both_sd_and_array() -> None:
    element = b64url_json(["s1", "bob"])
    payload = {"_sd": [digest_of(element)], "approvers": [{"...": digest_of(element)}]}

    with pytest.raises(CredentialError) as caught:
        _process(payload, element)

    assert caught.value.code == "digest_duplicate"


@pytest.mark.parametrize("name", ["_sd", "..."])
def test_rejects_reserved_disclosed_claim_name(name: str) -> None:
    disclosure = b64url_json(["s1", name, ["x"]])

    with pytest.raises(CredentialError) as caught:
        _process({"_sd": [digest_of(disclosure)]}, disclosure)

    assert caught.value.code == "reserved_claim_name"


def test_rejects_disclosed_name_colliding_with_plain_claim() -> None:
    disclosure = b64url_json(["s1", "role", "root"])

    with pytest.raises(CredentialError) as caught:
        _process({"_sd": [digest_of(disclosure)], "role": "viewer"}, disclosure)

    assert caught.value.code == "claim_collision"


def test_rejects_two_disclosures_with_same_name() -> None:
    first = b64url_json(["s1", "role", "viewer"])
    second = b64url_json(["s2", "role", "root"])

    with pytest.raises(CredentialError) as caught:
        _process({"_sd": [digest_of(first), digest_of(second)]}, first, second)

    assert caught.value.code == "claim_collision"


def test_rejects_array_disclosure_referenced_from_sd() -> None:
    element = b64url_json(["s1", "bob"])

    with pytest.raises(CredentialError) as caught:
        _process({"_sd": [digest_of(element)]}, element)

    assert caught.value.code == "disclosure_invalid"


def test_rejects_property_disclosure_referenced_from_array() -> None:
    prop = b64url_json(["s1", "role", "admin"])

    with pytest.raises(CredentialError) as caught:
        _process({"list": [{"...": digest_of(prop)}]}, prop)

    assert caught.value.code == "disclosure_invalid"


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"_sd": "digest"}, id="sd-not-array"),
        pytest.param({"_sd": [17]}, id="digest-not-string"),
        pytest.param({"list": [{"...": 17}]}, id="array-digest-not-string"),
    ],
)
def test_rejects_malformed_digest_structure(payload: dict[str, Any]) -> None:
    with pytest.raises(CredentialError) as caught:
        _process(payload)

    assert caught.value.code == "malformed"


def test_rejects_payload_nested_beyond_limit() -> None:
    payload: dict[str, Any] = {"leaf": 1}
    for _ in range(MAX_DEPTH + 1):
        payload = {"next": payload}

    with pytest.raises(CredentialError) as caught:
        _process(payload)

    assert caught.value.code == "malformed"
