"""Errors raised while issuing, presenting and verifying SD-JWT credentials.

Verification never returns a bool. Every failed check raises CredentialError with a
machine-readable ``code``, meant for the audit log's ``failure_reason``, and a message that
names the failed check and the offending value. Messages contain no key material, salts
or whole tokens. Relying parties should show clients one opaque error and log the code.
"""

from __future__ import annotations

from typing import Final

# Codes of CredentialError, one per check. The checks are described where they raise.
CODES: Final = frozenset(
    {
        # Structure and size (RFC 9901 section 4 and 7.1).
        "too_large",
        "malformed",
        "unsupported_header",
        # Issuer-signed JWT header and key (RFC 7515, RFC 8725 section 3.1).
        "unsupported_alg",
        "invalid_typ",
        "unknown_kid",
        "key_mismatch",
        "jwks_invalid",
        "signature_invalid",
        # Issuer-signed JWT claims (RFC 7519 section 4.1).
        "claim_missing",
        "issuer_mismatch",
        "expired",
        "not_yet_valid",
        "iat_in_future",
        "sd_alg_unsupported",
        # Disclosures (RFC 9901 section 4.2 and 7.1).
        "disclosure_invalid",
        "disclosure_duplicate",
        "disclosure_unreferenced",
        "digest_duplicate",
        "reserved_claim_name",
        "claim_collision",
        "claim_not_disclosable",
        # Key binding (RFC 9901 section 4.3 and 7.3).
        "cnf_missing",
        "cnf_invalid",
        "kb_missing",
        "kb_invalid",
        "kb_sd_hash_mismatch",
        "kb_aud_mismatch",
        "kb_nonce_mismatch",
        "kb_stale",
        "kb_iat_in_future",
        # Token Status List (draft-ietf-oauth-status-list).
        "status_missing",
        "status_uri_mismatch",
        "status_issuer_mismatch",
        "status_unavailable",
        "status_revoked",
        "status_suspended",
        "status_unrecognized",
    }
)


class CredentialError(Exception):
    """A credential, presentation or status list that failed a check.

    ``code`` is one of CODES, and the message names what failed and on which value.
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in CODES:
            raise ValueError(f"unknown CredentialError code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class CredentialFileError(Exception):
    """A credential file that could not be read or written. The message names the path."""
