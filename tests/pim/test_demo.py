"""The demo seed of `appliance up`: prod-db-admin with alice, bob and carol."""

from __future__ import annotations

import asyncpg

from appliance.demo import seed_demo
from appliance.settings import Plane
from tests.conftest import Database


async def test_seed_demo_creates_pim_users_and_role(
    database: Database, superuser: asyncpg.Connection
) -> None:
    outer = superuser.transaction()
    await outer.start()
    try:
        seeded = await seed_demo(
            superuser,
            breakglass_master_secret=database.master_secrets[Plane.BREAKGLASS],
            public_url="http://127.0.0.1:8404",
            plane_master_secrets={
                plane.value: secret for plane, secret in database.master_secrets.items()
            },
        )
        assert seeded is not None, "org demo already exists in the test database"
        for name in ("alice", "bob", "carol"):
            assert set(seeded[name]) == {"username", "password", "totp_secret"}
            assert seeded[name]["username"] == name
        planes = await superuser.fetch(
            "SELECT DISTINCT s.plane FROM user_totp_seals s JOIN users u ON u.id = s.user_id "
            "JOIN orgs o ON o.id = u.org_id "
            "WHERE o.name = 'demo' AND u.username = 'alice' ORDER BY 1"
        )
        assert [row["plane"] for row in planes] == ["admin", "auth", "pim"]
        policy = await superuser.fetchrow(
            "SELECT p.approvals_required FROM pim_policies p "
            "JOIN pim_roles r ON r.id = p.role_id "
            "JOIN orgs o ON o.id = r.org_id WHERE o.name = 'demo' AND r.name = 'prod-db-admin'"
        )
        assert policy["approvals_required"] == 2
    finally:
        await outer.rollback()
