"""Embedded login: password + TOTP per plane, lockout, sessions."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest

from appliance.db.tenancy import set_org
from appliance.identity.sessions import create_session, load_session, revoke_session
from appliance.identity.totp import STEP_SECONDS, code_at, new_secret
from appliance.identity.users import AuthenticatedUser, LoginFailed, authenticate, create_user
from appliance.keys.sealing import sealing_private_key
from appliance.settings import Plane
from tests.conftest import Database

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


async def _user(
    database: Database, superuser: asyncpg.Connection, org_id: UUID
) -> tuple[str, str, str]:
    username = f"user-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    totp_secret = new_secret()
    keys = {
        plane.value: bytes(
            sealing_private_key(database.master_secrets[plane], plane.value).public_key
        )
        for plane in (Plane.AUTH, Plane.PIM)
    }
    async with superuser.transaction():
        await set_org(superuser, org_id)
        await create_user(
            superuser,
            org_id,
            username=username,
            password=password,
            totp_secret=totp_secret,
            seal_public_keys=keys,
            actor="tests",
            now=NOW,
        )
    return username, password, totp_secret


async def _login(
    database: Database,
    org_id: UUID,
    plane: Plane,
    username: str,
    password: str,
    code: str,
    now: datetime = NOW,
) -> AuthenticatedUser:
    conn = await asyncpg.connect(database.dsn(plane))
    try:
        async with conn.transaction():
            await set_org(conn, org_id)
            try:
                return await authenticate(
                    conn,
                    org_id,
                    plane=plane.value,
                    seal_key=sealing_private_key(database.master_secrets[plane], plane.value),
                    username=username,
                    password=password,
                    totp=code,
                    now=now,
                )
            except LoginFailed as failure:
                caught = failure
        raise caught
    finally:
        await conn.close()


def _code(secret: str, now: datetime = NOW) -> str:
    return code_at(secret, int(now.timestamp() // STEP_SECONDS))


async def _reasons(superuser: asyncpg.Connection, org_id: UUID) -> list[str]:
    rows = await superuser.fetch(
        "SELECT failure_reason FROM audit_events "
        "WHERE org_id = $1 AND event_type = 'user.login_failed' ORDER BY seq",
        org_id,
    )
    return [r["failure_reason"] for r in rows]


async def test_login_succeeds_on_each_sealed_plane(
    database: Database, superuser: asyncpg.Connection, org: tuple[UUID, str]
) -> None:
    username, password, secret = await _user(database, superuser, org[0])
    user = await _login(database, org[0], Plane.PIM, username, password, _code(secret))
    assert user.username == username
    later = NOW + timedelta(seconds=STEP_SECONDS)
    await _login(database, org[0], Plane.AUTH, username, password, _code(secret, later), later)


@pytest.mark.parametrize("mistake", ["password", "totp", "user"])
async def test_login_failure_is_audited_with_reason(
    database: Database, superuser: asyncpg.Connection, org: tuple[UUID, str], mistake: str
) -> None:
    username, password, secret = await _user(database, superuser, org[0])
    code = _code(secret)
    wrong_code = "000000" if code != "000000" else "111111"
    args = {
        "password": (username, "wrong", code),
        "totp": (username, password, wrong_code),
        "user": ("ghost", password, code),
    }[mistake]
    with pytest.raises(LoginFailed):
        await _login(database, org[0], Plane.PIM, *args)
    expected = {"password": "wrong_password", "totp": "wrong_totp", "user": "unknown_user"}[mistake]
    assert await _reasons(superuser, org[0]) == [expected]


async def test_totp_code_works_once_across_planes(
    database: Database, superuser: asyncpg.Connection, org: tuple[UUID, str]
) -> None:
    username, password, secret = await _user(database, superuser, org[0])
    await _login(database, org[0], Plane.PIM, username, password, _code(secret))
    with pytest.raises(LoginFailed) as failure:
        await _login(database, org[0], Plane.AUTH, username, password, _code(secret))
    assert failure.value.reason == "totp_replayed"


async def test_plane_without_seal_cannot_check_totp(
    database: Database, superuser: asyncpg.Connection, org: tuple[UUID, str]
) -> None:
    username, password, secret = await _user(database, superuser, org[0])
    with pytest.raises(LoginFailed) as failure:
        await _login(database, org[0], Plane.ADMIN, username, password, _code(secret))
    assert failure.value.reason == "totp_not_enrolled_for_admin"


async def test_lockout_after_five_failures(
    database: Database, superuser: asyncpg.Connection, org: tuple[UUID, str]
) -> None:
    username, password, secret = await _user(database, superuser, org[0])
    for _ in range(5):
        with pytest.raises(LoginFailed):
            await _login(database, org[0], Plane.PIM, username, "wrong", _code(secret))
    with pytest.raises(LoginFailed) as failure:
        await _login(database, org[0], Plane.PIM, username, password, _code(secret))
    assert failure.value.reason == "user_locked"
    later = NOW + timedelta(minutes=16)
    await _login(database, org[0], Plane.PIM, username, password, _code(secret, later), later)


async def test_session_lifecycle(
    database: Database, superuser: asyncpg.Connection, org: tuple[UUID, str]
) -> None:
    username, password, secret = await _user(database, superuser, org[0])
    user = await _login(database, org[0], Plane.PIM, username, password, _code(secret))
    conn = await asyncpg.connect(database.dsn(Plane.PIM))
    try:
        async with conn.transaction():
            await set_org(conn, org[0])
            token, expires_at = await create_session(conn, org[0], user.id, plane="pim", now=NOW)
            stored = await conn.fetchval(
                "SELECT count(*) FROM sessions WHERE token_hash = $1", token.encode()
            )
            assert stored == 0  # only the hash is stored
            session = await load_session(conn, org[0], token, plane="pim", now=NOW)
            assert session is not None
            assert session.username == username
            assert await load_session(conn, org[0], token, plane="pim", now=expires_at) is None
            assert await load_session(conn, org[0], token + "x", plane="pim", now=NOW) is None
            assert await load_session(conn, org[0], "x" * 500, plane="pim", now=NOW) is None
            await revoke_session(conn, token, now=NOW)
            assert await load_session(conn, org[0], token, plane="pim", now=NOW) is None
    finally:
        await conn.close()


async def test_session_of_one_org_is_unknown_in_another(
    database: Database, superuser: asyncpg.Connection, org: tuple[UUID, str]
) -> None:
    from tests.conftest import create_org

    other_org, _ = await create_org(superuser)
    username, password, secret = await _user(database, superuser, org[0])
    user = await _login(database, org[0], Plane.PIM, username, password, _code(secret))
    conn = await asyncpg.connect(database.dsn(Plane.PIM))
    try:
        async with conn.transaction():
            await set_org(conn, org[0])
            token, _ = await create_session(conn, org[0], user.id, plane="pim", now=NOW)
        async with conn.transaction():
            await set_org(conn, other_org)
            assert await load_session(conn, other_org, token, plane="pim", now=NOW) is None
    finally:
        await conn.close()
