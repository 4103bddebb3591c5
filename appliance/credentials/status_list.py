"""Token Status List (draft-ietf-oauth-status-list): codec, signed token and status check.

A status list is a byte array of statuses that are ``bits`` wide (1, 2, 4 or 8), packed
from the least significant bit of each byte. It is compressed with DEFLATE in the ZLIB
format and base64url-encoded as ``lst``. The status list token is a JWT with
``typ: statuslist+jwt``, ``sub`` equal to the URI that credentials reference, ``iat``,
optional ``exp`` and ``ttl``, and ``status_list: {bits, lst}``. A credential points at
its entry with ``status: {status_list: {idx, uri}}``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from jwcrypto.jwk import JWK

from appliance.credentials.errors import CredentialError
from appliance.credentials.jws import (
    b64url_decode,
    b64url_encode,
    check_header,
    is_int,
    parse_compact_jws,
    select_jwks_key,
    sign_compact,
    signing_alg,
    verify_signature,
)
from appliance.credentials.verify import DEFAULT_LEEWAY, VerifiedCredential

STATUS_LIST_TYP: Final = "statuslist+jwt"
ALLOWED_BITS: Final = (1, 2, 4, 8)
# Status type values defined by the draft.
VALID: Final = 0
INVALID: Final = 1  # revoked
SUSPENDED: Final = 2
# Maximum decompressed size in bytes, which is 32 Mi entries at 1 bit. DEFLATE data can
# inflate about 1,000-fold, so a token of MAX_TOKEN_LENGTH could otherwise become gigabytes.
MAX_STATUS_LIST_BYTES: Final = 4 * 1024 * 1024
# Maximum token length in characters: an incompressible list of MAX_STATUS_LIST_BYTES
# in base64url plus headroom for the header, claims and signature.
MAX_TOKEN_LENGTH: Final = MAX_STATUS_LIST_BYTES * 4 // 3 + 64 * 1024
_WHAT: Final = "status list token"


@dataclass(frozen=True)
class StatusList:
    """A decoded status list. ``uri`` and ``issuer`` are set when it came from a verified token."""

    bits: int
    data: bytes
    uri: str | None = None
    issuer: str | None = None

    @property
    def size(self) -> int:
        """Number of entries the byte array holds, including any padding entries."""
        return len(self.data) * 8 // self.bits

    def get(self, idx: int) -> int:
        """Return the status at ``idx``, raising IndexError outside 0 <= idx < size."""
        if not 0 <= idx < self.size:
            raise IndexError(f"status list index {idx} is outside 0..{self.size - 1}")
        position = idx * self.bits
        return (self.data[position // 8] >> (position % 8)) & ((1 << self.bits) - 1)


def encode_status_list(values: Sequence[int], bits: int) -> str:
    """Pack statuses LSB first, compress with ZLIB at level 9 and return base64url ``lst``."""
    if bits not in ALLOWED_BITS:
        raise ValueError(f"bits must be one of {ALLOWED_BITS}, got {bits!r}")
    data = bytearray((len(values) * bits + 7) // 8)
    limit = 1 << bits
    for idx, value in enumerate(values):
        if not is_int(value) or not 0 <= value < limit:
            raise ValueError(f"status {value!r} at index {idx} does not fit in {bits} bits")
        position = idx * bits
        data[position // 8] |= value << (position % 8)
    return b64url_encode(zlib.compress(bytes(data), 9))


def decode_status_list(
    lst: str, bits: int, *, max_bytes: int = MAX_STATUS_LIST_BYTES
) -> StatusList:
    """Decode ``lst``, raising CredentialError(too_large) when it inflates beyond ``max_bytes``."""
    if not is_int(bits) or bits not in ALLOWED_BITS:
        raise CredentialError(
            "malformed", f"status list bits {bits!r} is not one of {ALLOWED_BITS}"
        )
    compressed = b64url_decode(lst, label="status list lst")
    decompressor = zlib.decompressobj()
    try:
        data = decompressor.decompress(compressed, max_bytes + 1)
    except zlib.error as exc:
        raise CredentialError(
            "malformed", f"status list lst is not valid ZLIB data: {exc}"
        ) from None
    if len(data) > max_bytes:
        raise CredentialError(
            "too_large", f"status list inflates to more than {max_bytes} bytes, the limit"
        )
    if not decompressor.eof:
        raise CredentialError("malformed", "status list lst is a truncated ZLIB stream")
    if decompressor.unused_data:
        raise CredentialError("malformed", "status list lst has bytes after the ZLIB stream")
    return StatusList(bits=bits, data=data)


def sign_status_list_token(
    *,
    signing_key: JWK,
    kid: str,
    uri: str,
    values: Sequence[int],
    bits: int,
    iat: int,
    exp: int,
    ttl: int,
    issuer: str | None = None,
) -> str:
    """Sign a status list token for ``uri``. ``ttl`` is in seconds.

    ``issuer`` sets ``iss``, which check_status compares with the credential's ``iss``.
    """
    alg = signing_alg(signing_key)
    if not (is_int(iat) and is_int(exp) and iat < exp):
        raise ValueError(f"iat and exp must be integers with iat < exp, got {iat!r} and {exp!r}")
    if not is_int(ttl) or ttl <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    payload: dict[str, Any] = {
        "sub": uri,
        "iat": iat,
        "exp": exp,
        "ttl": ttl,
        "status_list": {"bits": bits, "lst": encode_status_list(values, bits)},
    }
    if issuer is not None:
        payload["iss"] = issuer
    return sign_compact(signing_key, {"alg": alg, "typ": STATUS_LIST_TYP, "kid": kid}, payload)


def verify_status_list_token(
    token: str,
    *,
    issuer_jwks: Mapping[str, Any],
    expected_uri: str,
    now: int,
    expected_issuer: str | None = None,
    leeway: int = DEFAULT_LEEWAY,
    max_length: int = MAX_TOKEN_LENGTH,
) -> StatusList:
    """Verify a status list token and return its decoded list.

    ``ttl`` is enforced as a hard limit. A token older than ``iat + ttl`` raises
    status_unavailable like an expired one, so a relying party never decides on a list
    that the issuer asked it to refresh. Any failure raises CredentialError.
    """
    if len(token) > max_length:
        raise CredentialError(
            "too_large", f"{_WHAT} is {len(token)} characters, the limit is {max_length}"
        )
    jws = parse_compact_jws(token, label=_WHAT)
    alg = check_header(jws, label=_WHAT, expected_typ=STATUS_LIST_TYP)
    kid = jws.header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise CredentialError("unknown_kid", f"{_WHAT} header has no kid")
    verify_signature(
        jws, select_jwks_key(issuer_jwks, kid=kid, alg=alg, label=_WHAT), alg, label=_WHAT
    )

    payload = jws.payload
    subject = payload.get("sub")
    if subject != expected_uri:
        raise CredentialError(
            "status_uri_mismatch", f"{_WHAT} sub is {subject!r}, expected {expected_uri!r}"
        )
    issuer = payload.get("iss")
    if issuer is not None and not isinstance(issuer, str):
        raise CredentialError("malformed", f"{_WHAT} iss is not a string")
    if expected_issuer is not None and issuer != expected_issuer:
        raise CredentialError(
            "issuer_mismatch", f"{_WHAT} iss is {issuer!r}, expected {expected_issuer!r}"
        )
    _check_token_times(payload, now=now, leeway=leeway)

    status_list = payload.get("status_list")
    if not isinstance(status_list, dict) or not isinstance(status_list.get("lst"), str):
        raise CredentialError("malformed", f"{_WHAT} has no status_list object with a string lst")
    bits = status_list.get("bits")
    if not is_int(bits):
        raise CredentialError("malformed", f"{_WHAT} status_list bits {bits!r} is not an integer")
    decoded = decode_status_list(status_list["lst"], bits)
    return StatusList(bits=decoded.bits, data=decoded.data, uri=subject, issuer=issuer)


def _check_token_times(payload: Mapping[str, Any], *, now: int, leeway: int) -> None:
    iat = payload.get("iat")
    if not is_int(iat):
        raise CredentialError("claim_missing", f"{_WHAT} has no integer iat claim")
    if iat > now + leeway:
        raise CredentialError("iat_in_future", f"{_WHAT} iat {iat} is in the future (now {now})")
    exp = payload.get("exp")
    if exp is not None:
        if not is_int(exp):
            raise CredentialError("malformed", f"{_WHAT} exp {exp!r} is not an integer")
        if now >= exp + leeway:
            raise CredentialError("status_unavailable", f"{_WHAT} expired at {exp} (now {now})")
    ttl = payload.get("ttl")
    if ttl is not None:
        if not is_int(ttl) or ttl <= 0:
            raise CredentialError("malformed", f"{_WHAT} ttl {ttl!r} is not a positive integer")
        if now > iat + ttl + leeway:
            raise CredentialError(
                "status_unavailable",
                f"{_WHAT} issued at {iat} is older than its ttl of {ttl} s: fetch a fresh one",
            )


def check_status(verified: VerifiedCredential, status_list: StatusList) -> None:
    """Raise CredentialError unless the credential's entry in ``status_list`` is VALID.

    The list must come from verify_status_list_token for the credential's status URI.
    Status 1 raises status_revoked, 2 status_suspended, and any other non-zero value
    status_unrecognized, because no application-specific status is defined here.
    """
    reference = (verified.status or {}).get("status_list")
    idx = reference.get("idx") if isinstance(reference, dict) else None
    uri = reference.get("uri") if isinstance(reference, dict) else None
    if not is_int(idx) or not isinstance(uri, str):
        raise CredentialError(
            "status_missing", "credential has no status.status_list claim with idx and uri"
        )
    if status_list.uri != uri:
        raise CredentialError(
            "status_uri_mismatch",
            f"status list is for {status_list.uri!r}, credential uses {uri!r}",
        )
    if status_list.issuer is not None and status_list.issuer != verified.issuer:
        raise CredentialError(
            "status_issuer_mismatch",
            f"status list iss {status_list.issuer!r} differs from "
            f"credential iss {verified.issuer!r}",
        )
    try:
        value = status_list.get(idx)
    except IndexError as exc:
        raise CredentialError("status_unavailable", f"credential status {exc}") from None
    if value == INVALID:
        raise CredentialError("status_revoked", f"credential at index {idx} of {uri} is revoked")
    if value == SUSPENDED:
        raise CredentialError(
            "status_suspended", f"credential at index {idx} of {uri} is suspended"
        )
    if value != VALID:
        raise CredentialError(
            "status_unrecognized", f"credential at index {idx} of {uri} has unknown status {value}"
        )
