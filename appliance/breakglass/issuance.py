"""Building a break-glass credential and its audit record, online or offline."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jwcrypto import jwk

from appliance.breakglass.request import ActivationRequest
from appliance.credentials.issue import issue_sd_jwt
from appliance.keys.signing import SigningKey

CREDENTIAL_TYPE = "urn:appliance:credential:breakglass"


@dataclass(frozen=True)
class Activation:
    credential: str
    issuer: str
    kid: str
    credential_id: str
    issued_at: int
    expires_at: int
    ttl_seconds: int
    ttl_capped: bool
    degraded: bool = False


def holder_thumbprint(holder_jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of the holder key, recorded in the audit event."""
    return str(jwk.JWK(**holder_jwk).thumbprint())


def issue_activation(
    *,
    signing_key: SigningKey,
    issuer: str,
    role: str,
    request: ActivationRequest,
    now: datetime,
    default_ttl: int,
    max_ttl: int,
    degraded: bool = False,
) -> tuple[Activation, dict[str, Any]]:
    """Sign the credential; return it with the data of its audit event.

    The lifetime is the requested one (or the account default), capped at
    `max_ttl`; `ttl_capped` tells the caller when the cap applied.
    """
    requested = request.ttl_seconds or default_ttl
    ttl = min(requested, max_ttl)
    issued_at = int(now.timestamp())
    credential_id = str(uuid.uuid4())
    credential = issue_sd_jwt(
        signing_key=signing_key.key,
        kid=signing_key.kid,
        issuer=issuer,
        subject=request.account,
        holder_jwk=request.holder_jwk,
        iat=issued_at,
        nbf=issued_at,
        exp=issued_at + ttl,
        disclosable={"role": role, "incident": request.incident, "reason": request.reason},
        claims={"jti": credential_id},
        vct=CREDENTIAL_TYPE,
    )
    activation = Activation(
        credential=credential,
        issuer=issuer,
        kid=signing_key.kid,
        credential_id=credential_id,
        issued_at=issued_at,
        expires_at=issued_at + ttl,
        ttl_seconds=ttl,
        ttl_capped=ttl < requested,
        degraded=degraded,
    )
    audit_data = {
        "incident": request.incident,
        "reason": request.reason,
        "role": role,
        "credential_id": credential_id,
        "kid": signing_key.kid,
        "issued_at": issued_at,
        "expires_at": issued_at + ttl,
        "ttl_seconds": ttl,
        "holder_jkt": holder_thumbprint(request.holder_jwk),
    }
    return activation, audit_data
