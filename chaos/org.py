"""The drill's own org: break-glass accounts, PIM users and role, and an OIDC client.

A drill never works in an existing org. It creates `chaos-<random>` with the
same building blocks as the demo seed, so the audit chain it checks holds only
its own events, and a drill in a shared staging database touches no one
else's accounts. The secrets exist only in the drill's memory.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from appliance.audit.chain import AuditEvent, append
from appliance.db.queries.keys import SEAL_KEY_GET
from appliance.db.queries.orgs import ORG_INSERT
from appliance.db.tenancy import set_org
from appliance.demo import DEMO_BREAKGLASS_ROLE, create_breakglass_account, new_passphrase
from appliance.identity.totp import new_secret
from appliance.oidc.demo import seed_oidc_clients
from appliance.pim.demo import seed_pim_demo
from appliance.settings import Plane
from chaos.workload import BreakglassAccount

ACTOR = "chaos-drill"
# The PIM users' TOTP seeds are sealed to each plane that checks their codes.
TOTP_PLANES = (Plane.PIM, Plane.AUTH, Plane.ADMIN)


class SealKeyMissing(RuntimeError):
    """A plane has not published its sealing key, so secrets cannot be sealed to it."""


@dataclass(frozen=True)
class DrillOrg:
    id: UUID
    name: str
    accounts: list[BreakglassAccount]
    # User name to {"password", "totp_secret"}, for the PIM requester and approvers.
    pim_users: dict[str, dict[str, str]]
    # {"client_id", "client_secret"} of a confidential client allowed client_credentials.
    confidential_client: dict[str, str]


async def published_seal_keys(conn: asyncpg.Connection) -> dict[Plane, bytes]:
    """Read the sealing public keys the planes publish when they start."""
    keys: dict[Plane, bytes] = {}
    for plane in (*TOTP_PLANES, Plane.BREAKGLASS):
        key = await conn.fetchval(SEAL_KEY_GET, plane.value)
        if key is None:
            raise SealKeyMissing(
                f"the {plane.value} plane has not published its sealing key; "
                "it publishes it when it starts, so check that it runs against this database"
            )
        keys[plane] = bytes(key)
    return keys


async def create_drill_org(
    conn: asyncpg.Connection,
    seal_public_keys: Mapping[Plane, bytes],
    *,
    accounts: int,
    ttl_seconds: int,
) -> DrillOrg:
    """Create org `chaos-<random>` with `accounts` break-glass accounts, in one transaction.

    `conn` must be a superuser or a role with BYPASSRLS.
    """
    name = f"chaos-{secrets.token_hex(3)}"
    now = datetime.now(UTC)
    async with conn.transaction():
        row = await conn.fetchrow(ORG_INSERT, name, "Chaos drill")
        assert row is not None, f"org {name} exists already"
        org_id: UUID = row["id"]
        await set_org(conn, org_id)
        await append(
            conn,
            org_id,
            AuditEvent(
                event_type="org.created",
                plane="admin",
                actor=ACTOR,
                subject=name,
                outcome="success",
                occurred_at=now,
            ),
        )
        created = [
            BreakglassAccount(f"chaos-{index:02d}", new_passphrase(), new_secret())
            for index in range(accounts)
        ]
        for account in created:
            await create_breakglass_account(
                conn,
                org_id,
                name=account.name,
                role=DEMO_BREAKGLASS_ROLE,
                passphrase=account.passphrase,
                totp_secret=account.totp_secret,
                seal_public_key=seal_public_keys[Plane.BREAKGLASS],
                default_ttl_seconds=ttl_seconds,
                max_ttl_seconds=ttl_seconds,
                actor=ACTOR,
            )
        clients: dict[str, Any] = await seed_oidc_clients(conn, org_id, actor=ACTOR, now=now)
        pim_users = await seed_pim_demo(
            conn,
            org_id,
            seal_public_keys={plane.value: seal_public_keys[plane] for plane in TOTP_PLANES},
            actor=ACTOR,
            now=now,
        )
    return DrillOrg(org_id, name, created, pim_users, clients["confidential_client"])
