"""Publication of the PIM plane's Token Status Lists (draft-ietf-oauth-status-list).

Each org has one or more lists of `CAPACITY` one-bit entries (0 valid,
1 revoked). A credential gets a random free index, so its position does not
reveal when it was issued. A list takes new credentials until it is 3/4 full,
because beyond that a random free index gets slow to find. Then a new list
starts.

`pim_status_lists.version` grows with every revocation in the revoking
transaction. The signed token is cached in the row with the version it
reflects and is signed again only when the version moved or the token is
older than `REFRESH_AFTER_SECONDS`: a revocation is visible to the next
fetch, and an unchanged list costs one row read.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Final
from uuid import UUID

import asyncpg

from appliance.credentials.status_list import INVALID, VALID, sign_status_list_token
from appliance.db.queries.pim import (
    PIM_CREDENTIAL_INSERT,
    PIM_CREDENTIALS_REVOKE_FOR_REQUEST,
    PIM_STATUS_LIST_ALLOCATED,
    PIM_STATUS_LIST_BUMP,
    PIM_STATUS_LIST_GET,
    PIM_STATUS_LIST_INSERT,
    PIM_STATUS_LIST_LOCK_ORG,
    PIM_STATUS_LIST_OPEN,
    PIM_STATUS_LIST_REVOKED,
    PIM_STATUS_LIST_STORE_TOKEN,
)
from appliance.keys.signing import SigningKeyStore

# 8192 entries are 1 KiB before compression.
CAPACITY: Final = 8192
BITS: Final = 1
# How long a relying party may cache a token (the `ttl` claim), in seconds.
# Our verifier treats it as a hard limit, so this is also how long an offline
# copy of the list stays usable.
TTL_SECONDS: Final = 300
# `exp` of a token: after this no verifier accepts it, whatever it does with `ttl`.
LIFETIME_SECONDS: Final = 900
# A cached token is signed again once it is this old, so a served token always
# has at least half of its `ttl` left.
REFRESH_AFTER_SECONDS: Final = TTL_SECONDS // 2
MAX_INDEX_TRIES: Final = 32


def status_list_uri(issuer: str, list_id: UUID) -> str:
    return f"{issuer}/statuslists/{list_id}"


async def allocate_entry(
    conn: asyncpg.Connection,
    org_id: UUID,
    *,
    credential_id: UUID,
    request_id: UUID,
    holder_jkt: str,
    now: datetime,
    expires_at: datetime,
) -> tuple[UUID, int]:
    """Reserve a random free index for a new credential; return (list id, index)."""
    # Serialises list creation per org, so concurrent issuers share one open list.
    await conn.execute(PIM_STATUS_LIST_LOCK_ORG, str(org_id))
    row = await conn.fetchrow(PIM_STATUS_LIST_OPEN, org_id)
    if row is None:
        row = await conn.fetchrow(PIM_STATUS_LIST_INSERT, org_id, CAPACITY, now)
    assert row is not None
    for _ in range(MAX_INDEX_TRIES):
        idx = secrets.randbelow(row["capacity"])
        inserted = await conn.fetchval(
            PIM_CREDENTIAL_INSERT,
            credential_id,
            org_id,
            request_id,
            row["id"],
            idx,
            holder_jkt,
            now,
            expires_at,
        )
        if inserted is not None:
            await conn.execute(PIM_STATUS_LIST_ALLOCATED, row["id"])
            return row["id"], idx
    # At most 3/4 of the entries are taken, so 32 tries all fail with odds below 1e-4.
    raise RuntimeError(f"no free status list index found in list {row['id']}")


async def revoke_credentials(conn: asyncpg.Connection, request_id: UUID, *, now: datetime) -> int:
    """Mark every credential of a grant revoked and move the version of their lists."""
    rows = await conn.fetch(PIM_CREDENTIALS_REVOKE_FOR_REQUEST, request_id, now)
    list_ids = sorted({row["list_id"] for row in rows})
    if list_ids:
        await conn.execute(PIM_STATUS_LIST_BUMP, list_ids)
    return len(rows)


async def current_token(
    conn: asyncpg.Connection,
    org_id: UUID,
    list_id: UUID,
    *,
    issuer: str,
    keys: SigningKeyStore,
    now: datetime,
) -> str | None:
    """Return the list's token, signing a fresh one only when needed; None for an unknown list."""
    row = await conn.fetchrow(PIM_STATUS_LIST_GET, org_id, list_id)
    if row is None:
        return None
    fresh = (
        row["token"] is not None
        and row["token_version"] == row["version"]
        and (now - row["token_iat"]).total_seconds() < REFRESH_AFTER_SECONDS
    )
    if fresh:
        token: str = row["token"]
        return token
    return await sign_and_store(conn, org_id, row, issuer=issuer, keys=keys, now=now)


async def sign_and_store(
    conn: asyncpg.Connection,
    org_id: UUID,
    row: asyncpg.Record,
    *,
    issuer: str,
    keys: SigningKeyStore,
    now: datetime,
) -> str:
    """Sign the list of `row` (a PIM_STATUS_LIST_GET row) as of its version and cache it."""
    values = [VALID] * row["capacity"]
    for revoked in await conn.fetch(PIM_STATUS_LIST_REVOKED, row["id"]):
        values[revoked["idx"]] = INVALID
    signing_key = await keys.active(conn, org_id, now=now)
    iat = int(now.timestamp())
    token = sign_status_list_token(
        signing_key=signing_key.key,
        kid=signing_key.kid,
        uri=status_list_uri(issuer, row["id"]),
        values=values,
        bits=BITS,
        iat=iat,
        exp=iat + LIFETIME_SECONDS,
        ttl=TTL_SECONDS,
        issuer=issuer,
    )
    # Stored only if no revocation committed since the row was read; either
    # way the token is correct for the version it was signed from.
    await conn.execute(PIM_STATUS_LIST_STORE_TOKEN, row["id"], token, row["version"], now)
    return token
