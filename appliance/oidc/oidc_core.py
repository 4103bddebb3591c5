"""ID tokens and user claims (OpenID Connect Core 1.0 sections 2, 3.1.3.6 and 5.4)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from uuid import UUID

import asyncpg

from appliance.db.queries.oidc import USER_CLAIMS
from appliance.oidc.jose import Es256Signer

ID_TOKEN_TTL_SECONDS = 300
TYP = "JWT"


def user_claims(row: asyncpg.Record, scopes: set[str]) -> dict[str, Any]:
    """Claims released for `scopes`: `sub` always, the rest by the standard scopes."""
    claims: dict[str, Any] = {"sub": str(row["id"])}
    if "profile" in scopes:
        claims["preferred_username"] = row["username"]
        claims["name"] = row["display_name"] or row["username"]
    if "email" in scopes and row["email"]:
        claims["email"] = row["email"]
        # NOTE: the appliance does not verify e-mail addresses; operators enter them.
        claims["email_verified"] = False
    if "groups" in scopes:
        claims["groups"] = list(row["groups"])
    return claims


async def load_user(conn: asyncpg.Connection, org_id: UUID, user_id: UUID) -> asyncpg.Record | None:
    """Load the user's claim row; return None if the user is deleted or disabled."""
    row = await conn.fetchrow(USER_CLAIMS, org_id, user_id)
    if row is None or row["disabled"]:
        return None
    return row


def at_hash(access_token: str) -> str:
    """Left half of the SHA-256 of the access token, base64url (section 3.1.3.6, for ES256)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def issue_id_token(
    signer: Es256Signer,
    *,
    issuer: str,
    client_id: str,
    user: asyncpg.Record,
    scopes: set[str],
    now: int,
    auth_time: int,
    nonce: str | None,
    access_token: str,
    session_id: UUID | None = None,
) -> str:
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + ID_TOKEN_TTL_SECONDS,
        "auth_time": auth_time,
        "at_hash": at_hash(access_token),
        **user_claims(user, scopes),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if session_id is not None:
        claims["sid"] = str(session_id)
    return signer.sign(claims, typ=TYP)
