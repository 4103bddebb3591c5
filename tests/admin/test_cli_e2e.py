"""The operator's path, through the real CLI against a running admin plane process.

A fresh database, an `appliance serve --plane admin` subprocess and the
`appliance` command: bootstrap the platform admin, create an org, a user with
TOTP, a PIM policy and a break-glass account with two custodians, request a
break-glass key rotation, and export and verify the audit trail.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pyotp
import pytest

from appliance.db.migrate import migrate
from appliance.db.queries.keys import SEAL_KEY_UPSERT
from appliance.keys.envelope import EnvelopeError
from appliance.keys.sealing import sealing_private_key, unseal
from appliance.ports import free_port
from tests.conftest import Database

DATABASE = "appliance_admin_cli"
START_TIMEOUT_SECONDS = 30


@dataclass
class AdminPlane:
    url: str
    admin_dsn: str
    superuser_dsn: str
    master_secrets: dict[str, bytes]
    workdir: Path

    def cli(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
        result = subprocess.run(
            [sys.executable, "-m", "appliance", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"appliance {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def cli_json(self, *args: str, stdin: str | None = None) -> Any:
        return json.loads(self.cli(*args, "--json", stdin=stdin).stdout)


def totp_secret(provisioning_uri: str) -> str:
    return parse_qs(urlsplit(provisioning_uri).query)["secret"][0]


def now_code(secret: str) -> str:
    return pyotp.TOTP(secret).now()


@pytest.fixture(scope="module")
async def fresh_database(database: Database) -> AsyncIterator[tuple[str, str]]:
    """A database of its own, so this test bootstraps the `system` org from nothing."""
    superuser = await asyncpg.connect(database.superuser_dsn)
    try:
        await superuser.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        await superuser.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await superuser.close()
    cluster = database.cluster
    superuser_dsn = cluster.dsn_for("postgres", cluster.superuser_password, DATABASE)
    # The roles serve the session's database too, so their passwords stay as they are.
    await migrate(superuser_dsn)
    from appliance.settings import Plane

    admin_dsn = cluster.dsn_for("appliance_admin", database.role_passwords[Plane.ADMIN], DATABASE)
    return superuser_dsn, admin_dsn


@pytest.fixture(scope="module")
def admin_plane(
    fresh_database: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AdminPlane]:
    import asyncio

    superuser_dsn, admin_dsn = fresh_database
    workdir = tmp_path_factory.mktemp("admin-cli")
    master = {
        p: base64.b64encode(secrets.token_bytes(36)) for p in ("admin", "auth", "pim", "breakglass")
    }
    secret_file = workdir / "admin-master-secret"
    secret_file.write_bytes(master["admin"])

    async def publish_other_planes() -> None:
        conn = await asyncpg.connect(superuser_dsn)
        try:
            for plane in ("auth", "pim", "breakglass"):
                public = bytes(sealing_private_key(master[plane], plane).public_key)
                await conn.execute(SEAL_KEY_UPSERT, plane, public)
        finally:
            await conn.close()

    asyncio.run(publish_other_planes())
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env.update(
        {
            "APPLIANCE_ADMIN_DATABASE_URL": admin_dsn,
            "APPLIANCE_ADMIN_MASTER_SECRET_FILE": str(secret_file),
            "APPLIANCE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        }
    )
    log = (workdir / "admin.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "appliance", "serve", "--plane", "admin", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            assert process.poll() is None, (workdir / "admin.log").read_text()
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
                    if response.status == 200:
                        break
            except (OSError, http.client.HTTPException):
                pass
            assert time.monotonic() < deadline, "admin plane did not become ready"
            time.sleep(0.1)
        yield AdminPlane(url, admin_dsn, superuser_dsn, master, workdir)
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_operator_path_through_cli(admin_plane: AdminPlane) -> None:
    plane = admin_plane
    work = plane.workdir
    root_session = str(work / "root-session.json")
    acme_session = str(work / "acme-session.json")

    # Bootstrap the platform admin with database access, then log in to org `system`.
    boot = plane.cli_json(
        "admin",
        "bootstrap",
        "--org",
        "system",
        "--username",
        "root",
        "--password-stdin",
        "--database-url",
        plane.admin_dsn,
        stdin="root password is long enough\n",
    )
    assert boot["role"] == "platform-admin"
    root_totp = totp_secret(boot["totp"]["provisioning_uri"])
    again = plane.cli(
        "admin",
        "bootstrap",
        "--org",
        "system",
        "--username",
        "root2",
        "--password-stdin",
        "--database-url",
        plane.admin_dsn,
        stdin="root password is long enough\n",
        check=False,
    )
    assert again.returncode == 1
    assert "already has an enabled platform-admin" in again.stderr
    plane.cli(
        "admin",
        "login",
        "--url",
        plane.url,
        "--org",
        "system",
        "--username",
        "root",
        "--password-stdin",
        "--totp",
        now_code(root_totp),
        "--session-file",
        root_session,
        stdin="root password is long enough\n",
    )
    assert stat.S_IMODE(os.stat(root_session).st_mode) == 0o600

    # Create org acme with its first org-admin, and log in as that admin.
    created = plane.cli_json(
        "admin",
        "orgs",
        "create",
        "acme",
        "--admin-username",
        "alice",
        "--admin-password-stdin",
        "--session-file",
        root_session,
        stdin="alice password is long enough\n",
    )
    assert created["org"]["name"] == "acme"
    alice_totp = totp_secret(created["admin"]["totp"]["provisioning_uri"])
    plane.cli(
        "admin",
        "login",
        "--url",
        plane.url,
        "--org",
        "acme",
        "--username",
        "alice",
        "--password-stdin",
        "--totp",
        now_code(alice_totp),
        "--session-file",
        acme_session,
        stdin="alice password is long enough\n",
    )
    acme = ("--session-file", acme_session)

    # A user with TOTP on every login plane, and its QR code.
    qr = work / "bob.png"
    user = plane.cli_json(
        "admin", "users", "create", "bob", "--email", "bob@example.com", "--qr-out", str(qr), *acme
    )
    assert user["user"]["totp_planes"] == ["admin", "auth", "pim"]
    assert "password" in user
    assert qr.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    # A PIM role with its policy, eligibility and approvers.
    plane.cli("admin", "groups", "create", "db-approvers", *acme)
    plane.cli("admin", "groups", "add-member", "db-approvers", "alice", *acme)
    role = plane.cli_json(
        "admin",
        "pim",
        "create",
        "prod-db-admin",
        "--max-duration",
        "1h",
        "--approvals",
        "2",
        "--ticket-required",
        "--ticket-pattern",
        "^INC-[0-9]+$",
        *acme,
    )
    assert role["role"]["policy"]["approvals_required"] == 2
    plane.cli("admin", "pim", "add-eligible", "prod-db-admin", "--user", "bob", *acme)
    role = plane.cli_json(
        "admin", "pim", "add-approver", "prod-db-admin", "--group", "db-approvers", *acme
    )
    assert role["role"]["eligible"]["users"] == ["bob"]
    assert role["role"]["approvers"]["groups"] == ["db-approvers"]

    # A break-glass account with two custodians, each with its own seed.
    account = plane.cli_json(
        "admin",
        "breakglass",
        "create",
        "oncall",
        "--role",
        "breakglass-admin",
        "--custodian",
        "carol",
        "--custodian",
        "dave",
        "--passphrase-stdin",
        "--default-ttl",
        "15m",
        "--max-ttl",
        "1h",
        "--qr-dir",
        str(work / "qr"),
        *acme,
        stdin="a break-glass passphrase\n",
    )
    custodians = account["custodians"]
    assert [c["name"] for c in custodians] == ["carol", "dave"]
    assert account["account"]["custodians_required"] == 2
    seeds = [totp_secret(c["totp"]["provisioning_uri"]) for c in custodians]
    assert seeds[0] != seeds[1]
    assert (work / "qr" / "carol.png").read_bytes().startswith(b"\x89PNG")

    # Alert targets of break-glass activations; a generated secret is printed once.
    alerts = ("admin", "breakglass", "alert-targets")
    target = plane.cli_json(
        *alerts, "add", "--webhook-url", "https://hooks.example.test/bg", "--format", "slack", *acme
    )
    assert len(target["secret"]) >= 32
    target_id = target["alert_target"]["id"]
    own = plane.cli_json(
        *alerts,
        "add",
        "--webhook-url",
        "http://127.0.0.1:9/hook",
        "--secret-stdin",
        *acme,
        stdin="a receiver's own secret\n",
    )
    assert "secret" not in own
    updated = plane.cli_json(*alerts, "update", target_id, "--disable", *acme)
    assert updated["alert_target"]["enabled"] is False
    plane.cli(*alerts, "remove", own["alert_target"]["id"], *acme)
    listed = plane.cli(*alerts, "list", *acme).stdout
    assert target_id in listed
    assert "disabled" in listed
    assert own["alert_target"]["id"] not in listed
    assert target["secret"] not in listed
    refused = plane.cli(*alerts, "update", target_id, *acme, check=False)
    assert refused.returncode == 2

    # Rotate the break-glass signing key: a request the break-glass plane performs.
    rotation = plane.cli_json("admin", "keys", "rotate", "breakglass", "--reason", "drill", *acme)
    assert rotation["rotation_request"]["status"] == "pending"
    assert rotation["rotation_request"]["plane"] == "breakglass"

    # Export the audit trail, verify it offline and on the server.
    export = work / "acme-audit.jsonl"
    summary = plane.cli_json("admin", "audit", "export", "--out", str(export), *acme)
    assert summary["anchored_at_genesis"] is True
    assert summary["events"] >= 10
    assert stat.S_IMODE(os.stat(export).st_mode) == 0o600
    verified = plane.cli("audit", "verify-export", str(export))
    assert verified.stdout.startswith("ok,")
    assert plane.cli_json("admin", "audit", "verify", *acme)["verified"] is True
    plane.cli("audit", "verify", "--org", "acme", "--database-url", plane.admin_dsn)
    event_types = [json.loads(line)["event_type"] for line in export.read_text().splitlines()]
    for expected in (
        "org.created",
        "user.created",
        "rbac.binding_added",
        "pim.role_created",
        "breakglass.account_created",
        "breakglass.alert_target_created",
        "breakglass.alert_target_deleted",
        "key.rotation_requested",
    ):
        assert expected in event_types

    # A tampered export fails verification.
    lines = export.read_text().splitlines()
    record = json.loads(lines[2])
    record["actor"] = "mallory"
    lines[2] = json.dumps(record)
    tampered = work / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    broken = plane.cli("audit", "verify-export", str(tampered), check=False)
    assert broken.returncode == 1
    assert "seq 3" in broken.stdout

    # The rotation request and the custodian seeds are where the owning plane reads them.
    check_database(plane, seeds)


def check_database(plane: AdminPlane, seeds: list[str]) -> None:
    import asyncio

    async def read() -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
        conn = await asyncpg.connect(plane.superuser_dsn)
        try:
            requests = await conn.fetch("SELECT plane, status FROM key_rotation_requests")
            seals = await conn.fetch(
                "SELECT c.position, c.totp_secret_sealed, a.totp_secret_sealed AS primary_seal "
                "FROM breakglass_custodians c JOIN breakglass_accounts a ON a.id = c.account_id "
                "ORDER BY c.position"
            )
            return requests, seals
        finally:
            await conn.close()

    requests, seals = asyncio.run(read())
    assert [(r["plane"], r["status"]) for r in requests] == [("breakglass", "pending")]
    breakglass_key = sealing_private_key(plane.master_secrets["breakglass"], "breakglass")
    admin_key = sealing_private_key(plane.master_secrets["admin"], "admin")
    opened = [unseal(breakglass_key, bytes(row["totp_secret_sealed"])).decode() for row in seals]
    assert opened == seeds
    assert unseal(breakglass_key, bytes(seals[0]["primary_seal"])).decode() == seeds[0]
    with pytest.raises(EnvelopeError):
        unseal(admin_key, bytes(seals[0]["totp_secret_sealed"]))
