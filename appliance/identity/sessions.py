"""Sessions of the embedded login: random bearer tokens, stored only as hashes.

A token is 256 random bits, URL-safe. The database keeps its SHA-256, so a
leaked table cannot be replayed. A session belongs to one org and one plane:
a PIM session is no admin session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from appliance.db.queries.identity import SESSION_BY_TOKEN, SESSION_INSERT, SESSION_REVOKE

# Short, because a session on the PIM or admin plane can approve privileged
# access; a person signs in again after this.
DEFAULT_SESSION_SECONDS = 30 * 60
MAX_TOKEN_CHARS = 128


@dataclass(frozen=True)
class Session:
    id: UUID
    org_id: UUID
    user_id: UUID
    username: str
    display_name: str
    expires_at: datetime


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_session(
    conn: asyncpg.Connection,
    org_id: UUID,
    user_id: UUID,
    *,
    plane: str,
    now: datetime,
    lifetime_seconds: int = DEFAULT_SESSION_SECONDS,
) -> tuple[str, datetime]:
    """Store a new session; return its token (shown once) and expiry."""
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=lifetime_seconds)
    await conn.execute(SESSION_INSERT, org_id, user_id, plane, token_hash(token), now, expires_at)
    return token, expires_at


async def load_session(
    conn: asyncpg.Connection, org_id: UUID, token: str, *, plane: str, now: datetime
) -> Session | None:
    """Return the live session for `token`, or None if unknown, expired, revoked or disabled."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    row = await conn.fetchrow(SESSION_BY_TOKEN, token_hash(token), plane, org_id, now)
    if row is None or row["disabled"]:
        return None
    return Session(
        row["id"], org_id, row["user_id"], row["username"], row["display_name"], row["expires_at"]
    )


async def revoke_session(conn: asyncpg.Connection, token: str, *, now: datetime) -> None:
    await conn.execute(SESSION_REVOKE, token_hash(token), now)
