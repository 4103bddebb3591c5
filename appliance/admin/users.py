"""User and role-binding changes shared by the API, the bootstrap command and the demo seed."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from appliance.admin.changes import append_change
from appliance.admin.errors import Conflict
from appliance.db.queries.admin import ADMIN_BINDING_INSERT, ADMIN_USER_INSERT
from appliance.db.queries.identity import USER_TOTP_SEAL_UPSERT
from appliance.identity.passwords import hash_passphrase
from appliance.identity.totp import new_secret
from appliance.keys.sealing import seal


def generate_password() -> str:
    """Generate a random 32-character password (192 bits), shown once to the operator."""
    return secrets.token_urlsafe(24)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def user_view(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    locked_until = row["locked_until"]
    return {
        "username": row["username"],
        "display_name": row["display_name"],
        "email": row["email"],
        "disabled": row["disabled"],
        "locked": locked_until is not None and locked_until > now,
        "locked_until": iso(locked_until),
        "failed_attempts": row["failed_attempts"],
        "totp_planes": list(row["totp_planes"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


async def seal_totp(
    conn: asyncpg.Connection,
    org_id: UUID,
    user_id: UUID,
    secret: str,
    public_keys: Mapping[str, bytes],
) -> None:
    for plane, public_key in sorted(public_keys.items()):
        await conn.execute(
            USER_TOTP_SEAL_UPSERT, org_id, user_id, plane, seal(public_key, secret.encode())
        )


async def create_user_with_totp(
    conn: asyncpg.Connection,
    org_id: UUID,
    *,
    username: str,
    password: str,
    display_name: str,
    email: str,
    public_keys: Mapping[str, bytes],
    actor: str,
    now: datetime,
) -> tuple[UUID, str]:
    """Insert a user with a new TOTP seed sealed to each plane in `public_keys`.

    Returns the user id and the seed, which the caller shows once and drops.
    Raises `Conflict` when the username is taken. Runs in the caller's
    transaction, with the org context of `org_id` set.
    """
    password_hash = await asyncio.to_thread(hash_passphrase, password)
    user_id: UUID | None = await conn.fetchval(
        ADMIN_USER_INSERT, org_id, username, display_name, email, password_hash, now
    )
    if user_id is None:
        raise Conflict(f"user {username!r} already exists in this org")
    secret = new_secret()
    await seal_totp(conn, org_id, user_id, secret, public_keys)
    await append_change(
        conn,
        org_id,
        actor=actor,
        now=now,
        event_type="user.created",
        subject=username,
        before=None,
        after={
            "username": username,
            "display_name": display_name,
            "email": email,
            "disabled": False,
            "totp_planes": sorted(public_keys),
        },
    )
    return user_id, secret


async def bind_role(
    conn: asyncpg.Connection,
    org_id: UUID,
    *,
    user_id: UUID,
    username: str,
    role: str,
    actor: str,
    now: datetime,
) -> bool:
    """Bind `role` to the user; return False (and audit nothing) if it was bound already."""
    inserted = await conn.fetchval(ADMIN_BINDING_INSERT, org_id, user_id, role, now, actor)
    if inserted is None:
        return False
    await append_change(
        conn,
        org_id,
        actor=actor,
        now=now,
        event_type="rbac.binding_added",
        subject=username,
        before=None,
        after={"username": username, "role": role},
    )
    return True
