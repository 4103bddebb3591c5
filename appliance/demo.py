"""Seeding of the demo org on the first `appliance up`."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

from appliance.admin.demo import seed_admin_demo
from appliance.audit.chain import AuditEvent, append
from appliance.db.queries.breakglass import ACCOUNT_INSERT
from appliance.db.queries.orgs import ORG_INSERT
from appliance.db.tenancy import set_org
from appliance.identity.passwords import hash_passphrase
from appliance.identity.totp import new_secret, provisioning_uri
from appliance.keys.sealing import seal, sealing_private_key
from appliance.oidc.demo import seed_oidc_clients
from appliance.pim.demo import seed_pim_demo

DEMO_ORG = "demo"
DEMO_BREAKGLASS_ACCOUNT = "oncall"
DEMO_BREAKGLASS_ROLE = "breakglass-admin"
SEED_ACTOR = "appliance-up"


def new_passphrase() -> str:
    """A random passphrase of six groups of five characters, easy to paste."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(6))


async def create_breakglass_account(
    conn: asyncpg.Connection,
    org_id: Any,
    *,
    name: str,
    role: str,
    passphrase: str,
    totp_secret: str,
    seal_public_key: bytes,
    default_ttl_seconds: int = 900,
    max_ttl_seconds: int = 3600,
    actor: str,
) -> None:
    """Insert a break-glass account with its TOTP seed sealed to the break-glass plane."""
    await set_org(conn, org_id)
    await conn.execute(
        ACCOUNT_INSERT,
        org_id,
        name,
        role,
        hash_passphrase(passphrase),
        seal(seal_public_key, totp_secret.encode()),
        default_ttl_seconds,
        max_ttl_seconds,
    )
    await append(
        conn,
        org_id,
        AuditEvent(
            event_type="breakglass.account_created",
            plane="admin",
            actor=actor,
            subject=name,
            outcome="success",
            occurred_at=datetime.now(UTC),
            data={
                "role": role,
                "default_ttl_seconds": default_ttl_seconds,
                "max_ttl_seconds": max_ttl_seconds,
            },
        ),
    )


async def seed_demo(
    conn: asyncpg.Connection,
    *,
    breakglass_master_secret: bytes,
    public_url: str,
    plane_master_secrets: Mapping[str, bytes] | None = None,
) -> dict[str, Any] | None:
    """Create org `demo` with its accounts; return the demo secrets, or None if it exists.

    With `plane_master_secrets` (plane name to master secret) the PIM demo users
    are created too, their TOTP seeds sealed to the pim, auth and admin planes given.
    """
    async with conn.transaction():
        org = await conn.fetchrow(ORG_INSERT, DEMO_ORG, "Demo org")
        if org is None:
            return None
        org_id = org["id"]
        await set_org(conn, org_id)
        await append(
            conn,
            org_id,
            AuditEvent(
                event_type="org.created",
                plane="admin",
                actor=SEED_ACTOR,
                subject=DEMO_ORG,
                outcome="success",
                occurred_at=datetime.now(UTC),
            ),
        )
        passphrase = new_passphrase()
        totp_secret = new_secret()
        seal_public_key = bytes(
            sealing_private_key(breakglass_master_secret, "breakglass").public_key
        )
        await create_breakglass_account(
            conn,
            org_id,
            name=DEMO_BREAKGLASS_ACCOUNT,
            role=DEMO_BREAKGLASS_ROLE,
            passphrase=passphrase,
            totp_secret=totp_secret,
            seal_public_key=seal_public_key,
            actor=SEED_ACTOR,
        )
        oidc_clients = await seed_oidc_clients(
            conn, org_id, actor=SEED_ACTOR, now=datetime.now(UTC)
        )
        pim_users: dict[str, dict[str, str]] = {}
        if plane_master_secrets is not None:
            pim_users = await seed_pim_demo(
                conn,
                org_id,
                seal_public_keys={
                    plane: bytes(sealing_private_key(secret, plane).public_key)
                    for plane, secret in plane_master_secrets.items()
                    if plane in ("pim", "auth", "admin")
                },
                actor=SEED_ACTOR,
                now=datetime.now(UTC),
            )
        admin_users: dict[str, Any] = {}
        if plane_master_secrets is not None:
            admin_users = await seed_admin_demo(
                conn,
                org_id,
                plane_master_secrets=plane_master_secrets,
                actor=SEED_ACTOR,
                now=datetime.now(UTC),
            )
    return {
        "org": DEMO_ORG,
        "oidc": oidc_clients,
        "breakglass": {
            "url": public_url,
            "account": DEMO_BREAKGLASS_ACCOUNT,
            "passphrase": passphrase,
            "totp_secret": totp_secret,
            "totp_uri": provisioning_uri(
                totp_secret, account=DEMO_BREAKGLASS_ACCOUNT, issuer=f"appliance {DEMO_ORG}"
            ),
            "role": DEMO_BREAKGLASS_ROLE,
        },
        **pim_users,
        **admin_users,
    }


def dump_demo_credentials(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()
