"""Break-glass with PostgreSQL really stopped: snapshot, journal, replay.

The sequence: activate online; stop PostgreSQL; restart the plane, which
loads its snapshot from disk; activate several times (single and two-person,
with a wrong passphrase and a replayed code among them); SIGKILL the plane
before it can replay; start PostgreSQL and the plane again; then every event
is in the audit chain exactly once and the chain verifies.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from jwcrypto import jwk

from appliance.audit.verify import verify_chain
from appliance.credentials.holder import present
from appliance.credentials.verify import verify_presentation
from appliance.db.migrate import migrate
from appliance.db.queries.breakglass_alerts import ALERT_TARGET_INSERT
from appliance.db.tenancy import set_org
from appliance.demo import create_breakglass_account
from appliance.identity.totp import new_secret
from appliance.keys.sealing import seal, sealing_private_key
from tests.breakglass.outage_support import PlaneProcess, new_plane
from tests.conftest import create_org
from tests.pgcluster import PgCluster
from tests.totp_codes import CodeSource
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

DATABASE = "outage"
AUD = "https://bastion.example"


@dataclass
class OutageWorld:
    cluster: PgCluster
    superuser_dsn: str
    plane_dsn: str
    master_secret: bytes
    org_id: UUID
    org: str
    passphrase: str
    single: CodeSource
    pair_passphrase: str
    pair_first: CodeSource
    pair_second: CodeSource


@pytest.fixture(scope="module")
def outage_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver().start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
async def world(
    outage_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory, receiver: WebhookReceiver
) -> OutageWorld:
    admin = await asyncpg.connect(outage_cluster.superuser_dsn)
    await admin.execute(f"CREATE DATABASE {DATABASE}")
    await admin.close()
    passwords = tmp_path_factory.mktemp("outage-passwords")
    password = secrets.token_urlsafe(18)
    (passwords / "breakglass").write_text(password)
    superuser_dsn = outage_cluster.dsn_for("postgres", outage_cluster.superuser_password, DATABASE)
    await migrate(superuser_dsn, role_password_dir=passwords)
    master = secrets.token_urlsafe(32).encode()
    seal_public = bytes(sealing_private_key(master, "breakglass").public_key)
    conn = await asyncpg.connect(superuser_dsn)
    try:
        org_id, org = await create_org(conn)
        single_secret, first_secret, second_secret = new_secret(), new_secret(), new_secret()
        passphrase, pair_passphrase = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        async with conn.transaction():
            for name, secret, phrase in (
                ("oncall", single_secret, passphrase),
                ("pair", first_secret, pair_passphrase),
            ):
                await create_breakglass_account(
                    conn,
                    org_id,
                    name=name,
                    role="breakglass-admin",
                    passphrase=phrase,
                    totp_secret=secret,
                    seal_public_key=seal_public,
                    actor="tests",
                )
            await set_org(conn, org_id)
            account_id = await conn.fetchval(
                "SELECT id FROM breakglass_accounts WHERE name = 'pair'"
            )
            await conn.execute(
                "UPDATE breakglass_accounts SET custodians_required = 2 WHERE id = $1", account_id
            )
            await conn.fetchval(
                ALERT_TARGET_INSERT,
                org_id,
                receiver.url,
                seal(seal_public, b"alert-secret-0123456789"),
                "json",
            )
            for position, name, secret in ((1, "carol", first_secret), (2, "dave", second_secret)):
                await conn.execute(
                    "INSERT INTO breakglass_custodians (org_id, account_id, position, name, "
                    "totp_secret_sealed, enrolled_at, enrolled_by) "
                    "VALUES ($1, $2, $3, $4, $5, now(), 'tests')",
                    org_id,
                    account_id,
                    position,
                    name,
                    seal(seal_public, secret.encode()),
                )
    finally:
        await conn.close()
    return OutageWorld(
        cluster=outage_cluster,
        superuser_dsn=superuser_dsn,
        plane_dsn=outage_cluster.dsn_for("appliance_breakglass", password, DATABASE),
        master_secret=master,
        org_id=org_id,
        org=org,
        passphrase=passphrase,
        single=CodeSource(single_secret),
        pair_passphrase=pair_passphrase,
        pair_first=CodeSource(first_secret),
        pair_second=CodeSource(second_secret),
    )


def _activate(
    plane: PlaneProcess, world: OutageWorld, account: str, **fields: Any
) -> tuple[int, Any, jwk.JWK]:
    key = jwk.JWK.generate(kty="EC", crv="P-256")
    body = {
        "account": account,
        "incident": "INC-DB-DOWN",
        "reason": "PostgreSQL primary lost",
        "holder_jwk": key.export_public(as_dict=True),
        **fields,
    }
    status, response = plane.request("POST", f"/o/{world.org}/breakglass/activate", body)
    return status, response, key


def _verify(
    plane: PlaneProcess, world: OutageWorld, response: dict[str, Any], key: jwk.JWK
) -> dict[str, Any]:
    jwks = plane.get(f"/o/{world.org}/breakglass/jwks.json")
    now = int(datetime.now(UTC).timestamp())
    presentation = present(response["credential"], key, aud=AUD, nonce="n", now=now)
    verified = verify_presentation(
        presentation,
        issuer_jwks=jwks,
        expected_issuer=response["issuer"],
        expected_aud=AUD,
        expected_nonce="n",
        now=now,
    )
    assert verified.exp - verified.iat <= 3600
    return verified.disclosed


async def _events(world: OutageWorld) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(world.superuser_dsn)
    try:
        return await conn.fetch(
            "SELECT event_id, event_type, failure_reason, data FROM audit_events "
            "WHERE org_id = $1 AND plane = 'breakglass' ORDER BY seq",
            world.org_id,
        )
    finally:
        await conn.close()


async def _verify_chain(world: OutageWorld) -> int:
    conn = await asyncpg.connect(world.superuser_dsn)
    try:
        async with conn.transaction():
            await set_org(conn, world.org_id)
            return (await verify_chain(conn, world.org_id)).events
    finally:
        await conn.close()


async def _eventually(condition: Callable[[], bool], seconds: float = 15) -> None:
    for _ in range(int(seconds / 0.2)):
        if condition():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


def _alerted_credentials(receiver: WebhookReceiver) -> set[str]:
    return {json.loads(r.body)["data"]["credential_id"] for r in receiver.received}


def _single(world: OutageWorld) -> dict[str, str]:
    return {"passphrase": world.passphrase, "totp": world.single.next()}


async def test_outage_activations_replayed_once(
    world: OutageWorld, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    plane = new_plane(world.plane_dsn, world.master_secret, tmp_path)
    plane.start()
    try:
        plane.wait_for(lambda status, bg: bg.get("snapshot_taken_at"), "first snapshot")
        status, online, key = _activate(plane, world, "oncall", **_single(world))
        assert status == 201, online
        online_claims = _verify(plane, world, online, key)

        world.cluster.stop()
        plane.stop()
        plane.start()
        body = plane.wait_for(
            lambda status, bg: bg.get("database") == "unreachable", "degraded mode"
        )
        assert "serving from snapshot of" in body["planes"]["breakglass"]["mode"]
        status, _ = plane.readiness()
        assert status == 200

        offline: list[dict[str, Any]] = []
        for _ in range(2):
            status, response, key = _activate(plane, world, "oncall", **_single(world))
            assert status == 201, response
            assert _verify(plane, world, response, key).keys() == online_claims.keys()
            offline.append(response)
        replayed_code = world.single.last_code
        status, _, _ = _activate(
            plane, world, "oncall", passphrase=world.passphrase, totp=replayed_code
        )
        assert status == 401
        status, _, _ = _activate(plane, world, "oncall", passphrase="wrong", totp="123456")
        assert status == 401
        status, _, _ = _activate(
            plane, world, "pair", passphrase=world.pair_passphrase, totp=world.pair_first.next()
        )
        assert status == 401
        status, pair, key = _activate(
            plane,
            world,
            "pair",
            passphrase=world.pair_passphrase,
            totp=world.pair_first.next(),
            second_totp=world.pair_second.next(),
        )
        assert status == 201, pair
        _verify(plane, world, pair, key)
        metrics = plane.request("GET", "/metrics")[1]
        assert "appliance_breakglass_degraded 1.0" in metrics
        # Alerts go out while the database is down: the three offline activations.
        offline_ids = {
            offline[0]["credential_id"],
            offline[1]["credential_id"],
            pair["credential_id"],
        }
        await _eventually(lambda: offline_ids <= _alerted_credentials(receiver))
        # Killed before it can replay anything.
        plane.kill()

        world.cluster.start()
        plane.start()
        plane.wait_for(
            lambda status, bg: bg.get("database") == "reachable" and bg.get("journal_backlog") == 0,
            "journal replay",
        )
    finally:
        plane.stop()

    events = await _events(world)
    event_ids = [e["event_id"] for e in events]
    assert len(event_ids) == len(set(event_ids))
    activated = [e for e in events if e["event_type"] == "breakglass.activated"]
    credential_ids = {json.loads(e["data"])["credential_id"] for e in activated}
    assert credential_ids == {
        online["credential_id"],
        offline[0]["credential_id"],
        offline[1]["credential_id"],
        pair["credential_id"],
    }
    degraded = [
        json.loads(e["data"]) for e in activated if json.loads(e["data"]).get("mode") == "degraded"
    ]
    assert len(degraded) == 3
    failures = sorted(
        e["failure_reason"] for e in events if e["event_type"] == "breakglass.activation_failed"
    )
    assert failures == ["second_custodian_missing", "totp_replayed", "wrong_passphrase"]
    assert await _verify_chain(world) >= len(events)
    conn = await asyncpg.connect(world.superuser_dsn)
    try:
        alerts = await conn.fetch(
            "SELECT status FROM breakglass_alerts WHERE org_id = $1", world.org_id
        )
    finally:
        await conn.close()
    assert len(alerts) == 4
    await _eventually(lambda: len(_alerted_credentials(receiver)) >= 4)
    assert _alerted_credentials(receiver) == credential_ids
    # One delivery id per alert. Delivery is at least once: the plane was killed
    # right after the offline sends, and a send whose outcome had not reached the
    # journal yet goes out again, with the same id so the receiver can drop it.
    credentials_by_delivery: dict[str, set[str]] = {}
    for received in receiver.received:
        credential = json.loads(received.body)["data"]["credential_id"]
        delivery = received.headers["X-Appliance-Delivery"]
        credentials_by_delivery.setdefault(delivery, set()).add(credential)
    assert len(credentials_by_delivery) == 4
    assert all(len(credentials) == 1 for credentials in credentials_by_delivery.values())


async def test_start_without_database_or_snapshot_is_not_ready(
    world: OutageWorld, tmp_path: Path
) -> None:
    plane = new_plane(world.plane_dsn, world.master_secret, tmp_path)
    world.cluster.stop()
    try:
        plane.start()
        body = plane.wait_for(lambda status, bg: status == 503, "not ready")
        assert "no usable snapshot" in body["planes"]["breakglass"]["mode"]
        status, response, _ = _activate(
            plane, world, "oncall", passphrase=world.passphrase, totp="123456"
        )
        assert status == 503
        assert response["error"] == "temporarily_unavailable"
    finally:
        plane.stop()
        world.cluster.start()


async def test_corrupt_snapshot_is_refused(world: OutageWorld, tmp_path: Path) -> None:
    plane = new_plane(world.plane_dsn, world.master_secret, tmp_path)
    plane.start()
    try:
        plane.wait_for(lambda status, bg: bg.get("snapshot_taken_at"), "first snapshot")
    finally:
        plane.stop()
    snapshot = tmp_path / "data" / "breakglass" / "snapshot.bin"
    raw = bytearray(snapshot.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    snapshot.write_bytes(bytes(raw))
    world.cluster.stop()
    try:
        plane.start()
        body = plane.wait_for(lambda status, bg: status == 503, "refusal")
        assert "snapshot corrupt" in body["planes"]["breakglass"]["problem"]
        status, _, _ = _activate(plane, world, "oncall", passphrase=world.passphrase, totp="123456")
        assert status == 503
    finally:
        plane.stop()
        world.cluster.start()


async def test_corrupt_journal_is_refused(world: OutageWorld, tmp_path: Path) -> None:
    plane = new_plane(world.plane_dsn, world.master_secret, tmp_path)
    plane.start()
    try:
        plane.wait_for(lambda status, bg: bg.get("snapshot_taken_at"), "first snapshot")
        world.cluster.stop()
        plane.wait_for(lambda status, bg: bg.get("database") == "unreachable", "degraded mode")
        status, response, _ = _activate(plane, world, "oncall", passphrase="wrong", totp="123456")
        assert status == 401, response
    finally:
        plane.stop()
    journal = tmp_path / "data" / "breakglass" / "journal.jsonl"
    journal.write_text(journal.read_text().replace("wrong_passphrase", "unknown_account"))
    try:
        plane.start()
        body = plane.wait_for(lambda status, bg: "problem" in bg, "refusal")
        assert "journal corrupt" in body["planes"]["breakglass"]["problem"]
        status, _, _ = _activate(plane, world, "oncall", passphrase=world.passphrase, totp="123456")
        assert status == 503
    finally:
        plane.stop()
        world.cluster.start()
