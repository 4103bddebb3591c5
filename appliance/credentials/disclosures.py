"""SD-JWT disclosures (RFC 9901 section 4.2) and their strict processing (section 7.1).

A disclosure is the base64url encoding of a JSON array. The array is ``[salt, name, value]``
for an object property (section 4.2.1) or ``[salt, value]`` for an array element (section
4.2.2). Its digest is base64url(SHA-256(ASCII disclosure string)), computed over the encoded
string and not over the decoded JSON (section 4.2.3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from appliance.credentials.errors import CredentialError
from appliance.credentials.jws import b64url_decode, loads_json, sha256_b64url

SD_DIGESTS_KEY: Final = "_sd"
SD_ALG_KEY: Final = "_sd_alg"
ARRAY_DIGEST_KEY: Final = "..."
# Claim names that a disclosure must never carry (RFC 9901 section 7.1).
RESERVED_CLAIM_NAMES: Final = frozenset({SD_DIGESTS_KEY, ARRAY_DIGEST_KEY})
# Maximum nesting depth of the payload and disclosed values. Credentials issued here use
# fewer than 5 levels.
# A bound keeps a crafted payload from exhausting the Python stack.
MAX_DEPTH: Final = 32


@dataclass(frozen=True)
class Disclosure:
    """One decoded disclosure. ``name`` is None for an array element."""

    encoded: str
    salt: str
    name: str | None
    value: Any
    digest: str


def decode_disclosure(encoded: str) -> Disclosure:
    """Decode and check one disclosure. Any defect raises CredentialError(disclosure_invalid)."""
    label = "disclosure"
    if not encoded:
        raise CredentialError("disclosure_invalid", "presentation contains an empty disclosure")
    item = loads_json(
        b64url_decode(encoded, label=label, code="disclosure_invalid"),
        label=label,
        code="disclosure_invalid",
    )
    digest = sha256_b64url(encoded)
    if not isinstance(item, list) or len(item) not in (2, 3):
        raise CredentialError(
            "disclosure_invalid",
            f"disclosure {digest} is not a JSON array of 2 or 3 elements",
        )
    salt = item[0]
    if not isinstance(salt, str):
        raise CredentialError("disclosure_invalid", f"disclosure {digest} salt is not a string")
    if len(item) == 2:
        return Disclosure(encoded=encoded, salt=salt, name=None, value=item[1], digest=digest)
    name = item[1]
    if not isinstance(name, str):
        raise CredentialError(
            "disclosure_invalid", f"disclosure {digest} claim name is not a string"
        )
    return Disclosure(encoded=encoded, salt=salt, name=name, value=item[2], digest=digest)


def process_disclosures(
    payload: Mapping[str, Any], disclosures: Sequence[Disclosure]
) -> tuple[dict[str, Any], frozenset[str]]:
    """Replace digests in a verified payload with disclosed claims (RFC 9901 section 7.1).

    Return the processed claims, without ``_sd`` and the top-level ``_sd_alg``, and the
    names of the top-level claims that came from disclosures. Digests without a disclosure
    are decoys or undisclosed claims and are dropped. Raise CredentialError when a digest
    appears twice, a disclosure appears twice or is never referenced, a disclosure has the
    wrong form for where it is referenced, uses a reserved name, or collides with a claim.
    """
    return _Processor(disclosures).run(payload)


class _Processor:
    def __init__(self, disclosures: Sequence[Disclosure]) -> None:
        self._by_digest: dict[str, Disclosure] = {}
        for disclosure in disclosures:
            if disclosure.digest in self._by_digest:
                raise CredentialError(
                    "disclosure_duplicate",
                    f"disclosure {disclosure.digest} is presented more than once",
                )
            self._by_digest[disclosure.digest] = disclosure
        self._seen_digests: set[str] = set()
        self._used_digests: set[str] = set()
        self._top_level_disclosed: set[str] = set()

    def run(self, payload: Mapping[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
        claims = self._object(payload, depth=0, top_level=True)
        unreferenced = sorted(set(self._by_digest) - self._used_digests)
        if unreferenced:
            raise CredentialError(
                "disclosure_unreferenced",
                f"disclosures {unreferenced} are not referenced by the issuer-signed JWT",
            )
        return claims, frozenset(self._top_level_disclosed)

    def _value(self, value: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise CredentialError("malformed", f"claims are nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            return self._object(value, depth=depth, top_level=False)
        if isinstance(value, list):
            return self._array(value, depth=depth)
        return value

    def _claim_digest(self, digest: object) -> Disclosure | None:
        """Record a digest and return its disclosure, or None for a decoy or undisclosed claim."""
        if not isinstance(digest, str):
            raise CredentialError("malformed", f"digest {digest!r} is not a string")
        if digest in self._seen_digests:
            raise CredentialError("digest_duplicate", f"digest {digest} appears more than once")
        self._seen_digests.add(digest)
        disclosure = self._by_digest.get(digest)
        if disclosure is not None:
            self._used_digests.add(digest)
        return disclosure

    def _object(self, obj: Mapping[str, Any], *, depth: int, top_level: bool) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, value in obj.items():
            if name == SD_DIGESTS_KEY or (top_level and name == SD_ALG_KEY):
                continue
            result[name] = self._value(value, depth + 1)

        digests = obj.get(SD_DIGESTS_KEY, [])
        if not isinstance(digests, list):
            raise CredentialError("malformed", "_sd is not an array of digests")
        for digest in digests:
            disclosure = self._claim_digest(digest)
            if disclosure is None:
                continue
            if disclosure.name is None:
                raise CredentialError(
                    "disclosure_invalid",
                    f"array-element disclosure {disclosure.digest} is referenced from _sd",
                )
            if disclosure.name in RESERVED_CLAIM_NAMES:
                raise CredentialError(
                    "reserved_claim_name",
                    f"disclosure {disclosure.digest} uses the reserved claim name "
                    f"{disclosure.name!r}",
                )
            if disclosure.name in result:
                raise CredentialError(
                    "claim_collision",
                    f"disclosed claim {disclosure.name!r} already exists at the same level",
                )
            result[disclosure.name] = self._value(disclosure.value, depth + 1)
            if top_level:
                self._top_level_disclosed.add(disclosure.name)
        return result

    def _array(self, array: Sequence[Any], *, depth: int) -> list[Any]:
        result: list[Any] = []
        for element in array:
            if not (isinstance(element, dict) and set(element) == {ARRAY_DIGEST_KEY}):
                result.append(self._value(element, depth + 1))
                continue
            disclosure = self._claim_digest(element[ARRAY_DIGEST_KEY])
            if disclosure is None:
                continue
            if disclosure.name is not None:
                raise CredentialError(
                    "disclosure_invalid",
                    f"object-property disclosure {disclosure.digest} is referenced "
                    "from an array element",
                )
            result.append(self._value(disclosure.value, depth + 1))
        return result
