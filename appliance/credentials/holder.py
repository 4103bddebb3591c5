"""Holder side of SD-JWT: key generation, presentation with a KB-JWT, and credential files.

A presentation is ``<issuer-signed JWT>~<disclosure>~...~<KB-JWT>`` (RFC 9901 section 4).
The KB-JWT (section 4.3) has the header ``typ: kb+jwt`` and the claims ``iat``, ``aud``,
``nonce`` and ``sd_hash``. ``sd_hash`` is the base64url SHA-256 digest of the ASCII
presentation up to and including the ``~`` before the KB-JWT (section 4.3.1).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from jwcrypto.common import JWException
from jwcrypto.jwk import JWK

from appliance.credentials.disclosures import (
    ARRAY_DIGEST_KEY,
    SD_DIGESTS_KEY,
    Disclosure,
    decode_disclosure,
)
from appliance.credentials.errors import CredentialFileError
from appliance.credentials.jws import (
    parse_compact_jws,
    public_jwk_members,
    sha256_b64url,
    sign_compact,
    signing_alg,
)

KB_JWT_TYP: Final = "kb+jwt"
# A credential file contains one SD-JWT and one JWK, a few KiB, so a larger file is not ours.
MAX_CREDENTIAL_FILE_BYTES: Final = 1024 * 1024

_T = TypeVar("_T")


def generate_holder_key() -> JWK:
    """Generate a new P-256 holder key pair for key binding (signs KB-JWTs with ES256)."""
    return JWK.generate(kty="EC", crv="P-256")


def present(
    credential: str,
    holder_key: JWK,
    *,
    aud: str,
    nonce: str,
    now: int,
    disclose: Iterable[str] | None = None,
) -> str:
    """Build a presentation of ``credential`` with a KB-JWT signed by ``holder_key``.

    ``disclose`` names the top-level disclosable claims to reveal, and None reveals all.
    Disclosures nested inside a revealed claim go with it. Raise ValueError when the
    credential is not an issuance ending in ``~``, ``holder_key`` is not the private key
    of ``cnf.jwk``, or ``disclose`` names a claim that the credential cannot disclose.
    Raise CredentialError when the credential or one of its disclosures is malformed.
    """
    if isinstance(disclose, str):
        raise TypeError("disclose must be an iterable of claim names, not one string")
    issuer_jwt, encoded = _split_issuance(credential)
    alg = signing_alg(holder_key)
    payload = parse_compact_jws(issuer_jwt, label="credential issuer-signed JWT").payload
    _check_holder_key(payload, holder_key)

    disclosures = [decode_disclosure(item) for item in encoded]
    selected = disclosures if disclose is None else _select(payload, disclosures, set(disclose))

    prefix = issuer_jwt + "~" + "".join(d.encoded + "~" for d in selected)
    kb_jwt = sign_compact(
        holder_key,
        {"alg": alg, "typ": KB_JWT_TYP},
        {"iat": now, "aud": aud, "nonce": nonce, "sd_hash": sha256_b64url(prefix)},
    )
    return prefix + kb_jwt


def _split_issuance(credential: str) -> tuple[str, list[str]]:
    if not credential.endswith("~"):
        raise ValueError("credential must be an SD-JWT issuance ending in '~' with no KB-JWT")
    issuer_jwt, *encoded = credential[:-1].split("~")
    return issuer_jwt, encoded


def _check_holder_key(payload: Mapping[str, Any], holder_key: JWK) -> None:
    cnf = payload.get("cnf")
    cnf_jwk = cnf.get("jwk") if isinstance(cnf, Mapping) else None
    if not isinstance(cnf_jwk, Mapping):
        raise ValueError("credential has no cnf.jwk, so it cannot be presented with key binding")
    if JWK(**public_jwk_members(cnf_jwk)).thumbprint() != holder_key.thumbprint():
        raise ValueError("holder key does not match the credential's cnf.jwk")


def _select(
    payload: Mapping[str, Any], disclosures: Sequence[Disclosure], names: set[str]
) -> list[Disclosure]:
    """Select top-level disclosures by name, plus the disclosures nested inside them."""
    by_digest = {d.digest: d for d in disclosures}
    top_level = [
        by_digest[digest] for digest in _digests_in(payload, nested=False) if digest in by_digest
    ]
    available = {d.name for d in top_level}
    unknown = sorted(names - available)
    if unknown:
        raise ValueError(f"credential has no disclosable claims named {unknown}")

    chosen: set[str] = set()
    pending = [d for d in top_level if d.name in names]
    while pending:
        disclosure = pending.pop()
        chosen.add(disclosure.digest)
        pending.extend(
            by_digest[digest]
            for digest in _digests_in(disclosure.value, nested=True)
            if digest in by_digest and digest not in chosen
        )
    return [d for d in disclosures if d.digest in chosen]


def _digests_in(value: Any, *, nested: bool) -> list[str]:
    """Return the digests that value references, looking below its own level only if ``nested``."""
    digests: list[str] = []
    if isinstance(value, Mapping):
        own = value.get(SD_DIGESTS_KEY, [])
        digests.extend(digest for digest in own if isinstance(digest, str))
        if set(value) == {ARRAY_DIGEST_KEY} and isinstance(value[ARRAY_DIGEST_KEY], str):
            digests.append(value[ARRAY_DIGEST_KEY])
        if nested:
            for item in value.values():
                digests.extend(_digests_in(item, nested=True))
    elif isinstance(value, list) and nested:
        for item in value:
            digests.extend(_digests_in(item, nested=True))
    return digests


@dataclass(frozen=True)
class CredentialFile:
    """Contents of a credential file as written by write_credential_file."""

    credential: str
    holder_key: JWK
    issuer: str
    expires_at: int


def write_credential_file(
    path: str | os.PathLike[str],
    *,
    credential: str,
    holder_key: JWK,
    issuer: str,
    expires_at: int,
) -> None:
    """Write a credential and its private holder key to ``path`` atomically, mode 0600.

    The JSON object goes to a new temporary file in the same directory (created with
    O_CREAT | O_EXCL, so an existing file or symlink is never written through) and is then
    renamed over ``path``. Readers see the old file or the complete new one. Raise
    CredentialFileError when the file cannot be written.
    """
    if not holder_key.has_private:
        raise ValueError("holder_key must be the private key")
    target = Path(path)
    document = {
        "credential": credential,
        "holder_key": holder_key.export_private(as_dict=True),
        "issuer": issuer,
        "expires_at": expires_at,
    }
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        descriptor = os.open(temporary, flags, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                os.fchmod(file.fileno(), 0o600)  # exact mode whatever the umask
                json.dump(document, file, indent=2)
                file.write("\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)  # make the rename itself durable
        finally:
            os.close(directory)
    except OSError as exc:
        raise CredentialFileError(
            f"cannot write credential file {target}: {exc.strerror or exc}"
        ) from exc


def read_credential_file(path: str | os.PathLike[str]) -> CredentialFile:
    """Read a credential file, raising CredentialFileError that names the path and the problem.

    The file must not be readable or writable by group or others, because it contains the
    private holder key.
    """
    target = Path(path)
    try:
        with target.open("rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            data = file.read(MAX_CREDENTIAL_FILE_BYTES + 1)
    except FileNotFoundError:
        raise CredentialFileError(f"credential file {target} does not exist") from None
    except OSError as exc:
        raise CredentialFileError(f"cannot read credential file {target}: {exc.strerror}") from exc
    if not stat.S_ISREG(mode):
        raise CredentialFileError(f"credential file {target} is not a regular file")
    if mode & 0o077:
        raise CredentialFileError(
            f"credential file {target} has mode {stat.S_IMODE(mode):04o} and is accessible "
            f"to other users: run chmod 600 {target}"
        )
    if len(data) > MAX_CREDENTIAL_FILE_BYTES:
        raise CredentialFileError(
            f"credential file {target} is larger than {MAX_CREDENTIAL_FILE_BYTES} bytes"
        )
    try:
        document = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise CredentialFileError(f"credential file {target} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise CredentialFileError(f"credential file {target} does not contain a JSON object")
    return CredentialFile(
        credential=_field(document, "credential", str, target),
        holder_key=_holder_key(_field(document, "holder_key", dict, target), target),
        issuer=_field(document, "issuer", str, target),
        expires_at=_field(document, "expires_at", int, target),
    )


def _field(document: Mapping[str, Any], name: str, kind: type[_T], target: Path) -> _T:
    value = document.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CredentialFileError(
            f"credential file {target} field {name!r} is missing or not a {kind.__name__}"
        )
    return value


def _holder_key(jwk: Mapping[str, Any], target: Path) -> JWK:
    problem = f"credential file {target} field 'holder_key' is not a private P-256 or Ed25519 JWK"
    try:
        key = JWK(**jwk)
    except (ValueError, TypeError, JWException) as exc:
        # The exception text may quote private key members, so only its type is reported.
        raise CredentialFileError(f"{problem} ({type(exc).__name__})") from None
    try:
        signing_alg(key)
    except ValueError as exc:
        raise CredentialFileError(f"{problem}: {exc}") from None
    return key
