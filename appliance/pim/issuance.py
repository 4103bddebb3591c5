"""SD-JWT credentials for an active grant.

A credential is bound to the requester's holder key (`cnf.jwk`), lives from
now until the grant's end and never beyond it (`exp` is the grant's end),
and carries `status.status_list {idx, uri}` so a revocation reaches it.
The request row is locked while the credential is recorded, so a revocation
running at the same time either sees the new credential and revokes it, or
finishes first and this call finds the grant ended.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import asyncpg
from jwcrypto import jwk

from appliance.credentials.issue import issue_sd_jwt
from appliance.db.queries.pim import PIM_DECISIONS_FOR_REQUEST
from appliance.keys.signing import SigningKeyStore
from appliance.pim.audit import Rejected, audit
from appliance.pim.decisions import Actor, event_data, lock_request
from appliance.pim.errors import Conflict, Forbidden
from appliance.pim.model import ACTIVE, iso, request_state
from appliance.pim.status_lists import allocate_entry, status_list_uri

CREDENTIAL_TYPE: Final = "urn:appliance:credential:pim"
# A credential shorter than this is not worth issuing: the grant is about to end.
MIN_LIFETIME_SECONDS: Final = 5


@dataclass(frozen=True)
class IssuedCredential:
    credential: str
    credential_id: str
    issuer: str
    kid: str
    issued_at: int
    expires_at: int
    status_list_uri: str
    status_list_idx: int


def holder_thumbprint(holder_jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of the holder key, recorded instead of the key itself."""
    return str(jwk.JWK(**holder_jwk).thumbprint())


async def issue_credential(
    conn: asyncpg.Connection,
    org_id: UUID,
    request_id: UUID,
    *,
    actor: Actor,
    holder_jwk: dict[str, Any],
    issuer: str,
    keys: SigningKeyStore,
    now: datetime,
) -> IssuedCredential:
    """Issue a credential for the actor's active grant, or raise `Rejected`."""
    row = await lock_request(conn, org_id, request_id)
    subject = str(request_id)
    if row["requester_id"] != actor.user_id:
        raise Rejected(
            Forbidden("not_requester", "only the requester of a grant can obtain its credentials"),
            event_type="pim.credential.issue",
            actor=actor.username,
            subject=subject,
            reason="not_requester",
            data=event_data(row),
        )
    state = request_state(row, now)
    remaining = (row["ends_at"] - now).total_seconds() if row["ends_at"] is not None else 0
    if state != ACTIVE or remaining < MIN_LIFETIME_SECONDS:
        hints = {
            "pending": "it is still waiting for approvals",
            "scheduled": f"it starts at {iso(row['starts_at'])}",
            "ended": "the grant has ended; request the role again",
        }
        why = hints.get(state, f"it is {state}")
        raise Rejected(
            Conflict("grant_not_active", f"request {request_id} has no active grant: {why}"),
            event_type="pim.credential.issue",
            actor=actor.username,
            subject=subject,
            reason="grant_not_active",
            data=event_data(row, state=state),
        )

    credential_id = uuid.uuid4()
    iat = int(now.timestamp())
    exp = int(row["ends_at"].timestamp())
    holder_jkt = holder_thumbprint(holder_jwk)
    list_id, idx = await allocate_entry(
        conn,
        org_id,
        credential_id=credential_id,
        request_id=request_id,
        holder_jkt=holder_jkt,
        now=now,
        expires_at=datetime.fromtimestamp(exp, UTC),
    )
    uri = status_list_uri(issuer, list_id)
    decisions = await conn.fetch(PIM_DECISIONS_FOR_REQUEST, org_id, request_id)
    approvers = [d["approver"] for d in decisions if d["decision"] == "approve"]
    disclosable: dict[str, Any] = {"role": row["role"], "grant_id": subject, "approvers": approvers}
    if row["justification"]:
        disclosable["justification"] = row["justification"]
    if row["ticket"]:
        disclosable["ticket"] = row["ticket"]
    signing_key = await keys.active(conn, org_id, now=now)
    credential = issue_sd_jwt(
        signing_key=signing_key.key,
        kid=signing_key.kid,
        issuer=issuer,
        subject=row["requester"],
        holder_jwk=holder_jwk,
        iat=iat,
        nbf=iat,
        exp=exp,
        disclosable=disclosable,
        claims={"jti": str(credential_id), "status": {"status_list": {"idx": idx, "uri": uri}}},
        vct=CREDENTIAL_TYPE,
    )
    await audit(
        conn,
        org_id,
        "pim.credential.issued",
        actor=actor.username,
        subject=subject,
        now=now,
        data=event_data(
            row,
            credential_id=str(credential_id),
            kid=signing_key.kid,
            issued_at=iat,
            expires_at=exp,
            status_list=uri,
            status_idx=idx,
            holder_jkt=holder_jkt,
        ),
    )
    return IssuedCredential(
        credential=credential,
        credential_id=str(credential_id),
        issuer=issuer,
        kid=signing_key.kid,
        issued_at=iat,
        expires_at=exp,
        status_list_uri=uri,
        status_list_idx=idx,
    )
