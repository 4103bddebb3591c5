"""The PIM acceptance sequence, from the CLI against a PIM plane process.

alice requests prod-db-admin for 30 minutes; alice cannot approve it; bob and
carol approve; alice obtains a credential that verifies with status valid;
carol revokes; the same presentation now fails verification as revoked.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner, Result

from appliance.cli.main import cli
from appliance.db.tenancy import set_org
from appliance.identity.totp import STEP_SECONDS, code_at
from appliance.keys.sealing import sealing_private_key
from appliance.pim.demo import DEMO_ROLE, seed_pim_demo
from appliance.ports import free_port
from appliance.settings import Plane
from tests.conftest import Database, create_org

AUD = "https://db.example"


@pytest.fixture
def pim_process(database: Database, tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    """`appliance serve --plane pim` as its own process; yields its URL and master secret."""
    master_secret = base64.urlsafe_b64encode(secrets.token_bytes(48))
    secret_file = tmp_path / "pim-master-secret"
    secret_file.write_bytes(master_secret)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")},
        "APPLIANCE_PIM_DATABASE_URL": database.dsn(Plane.PIM),
        "APPLIANCE_PIM_MASTER_SECRET_FILE": str(secret_file),
        "APPLIANCE_PUBLIC_URL": url,
        "APPLIANCE_LOG_LEVEL": "warning",
    }
    log_file = (tmp_path / "pim.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "appliance", "serve", "--plane", "pim", "--port", str(port)],
        env=env,
        stdout=log_file,
        stderr=log_file,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except (OSError, http.client.HTTPException):
                pass
            assert process.poll() is None, (tmp_path / "pim.log").read_text()
            assert time.monotonic() < deadline, "PIM plane did not become healthy"
            time.sleep(0.1)
        yield url, master_secret
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def totp(secret: str) -> str:
    return code_at(secret, int(time.time() // STEP_SECONDS))


async def test_done_when_sequence_from_the_cli(
    pim_process: tuple[str, bytes], superuser: asyncpg.Connection, tmp_path: Path
) -> None:
    url, master_secret = pim_process
    org_id, org = await create_org(superuser)
    seal_key = bytes(sealing_private_key(master_secret, "pim").public_key)
    async with superuser.transaction():
        await set_org(superuser, org_id)
        users = await seed_pim_demo(
            superuser,
            org_id,
            seal_public_keys={"pim": seal_key},
            actor="tests",
            now=datetime.now(UTC),
        )
    sessions = {name: str(tmp_path / f"{name}.json") for name in users}

    for name, user in users.items():
        signed_in = run(
            "pim",
            "login",
            "--url",
            url,
            "--org",
            org,
            "--username",
            name,
            "--password-stdin",
            "--totp",
            totp(user["totp_secret"]),
            "--session-file",
            sessions[name],
            stdin=user["password"] + "\n",
        )
        assert signed_in.exit_code == 0, signed_in.output
        assert Path(sessions[name]).stat().st_mode & 0o777 == 0o600  # noqa: ASYNC240

    requested = run(
        "pim",
        "request",
        "--role",
        DEMO_ROLE,
        "--duration",
        "30m",
        "--reason",
        "rotate replication password",
        "--ticket",
        "CHG-42",
        "--session-file",
        sessions["alice"],
        "--json",
    )
    assert requested.exit_code == 0, requested.output
    request_id = json.loads(requested.output)["id"]

    own = run("pim", "approve", request_id, "--session-file", sessions["alice"])
    assert own.exit_code == 1
    assert "self_approval_forbidden" in own.output

    for approver in ("bob", "carol"):
        approved = run(
            "pim", "approve", request_id, "--comment", "ok", "--session-file", sessions[approver]
        )
        assert approved.exit_code == 0, approved.output
    assert "state: active" in approved.output

    pending = run("pim", "list", "--pending", "--session-file", sessions["bob"], "--json")
    assert json.loads(pending.output)["requests"] == []

    credential_file = tmp_path / "credential.json"
    obtained = run(
        "pim",
        "credential",
        request_id,
        "--out",
        str(credential_file),
        "--session-file",
        sessions["alice"],
    )
    assert obtained.exit_code == 0, obtained.output
    assert credential_file.stat().st_mode & 0o777 == 0o600
    expires_at = json.loads(credential_file.read_text())["expires_at"]
    assert expires_at <= time.time() + 30 * 60 + 5

    presented = run("credential", "present", str(credential_file), "--aud", AUD, "--nonce", "n-1")
    assert presented.exit_code == 0, presented.output
    presentation = presented.output.strip()
    issuer = f"{url}/o/{org}/pim"
    verify_args = (
        "credential",
        "verify",
        presentation,
        "--issuer",
        issuer,
        "--aud",
        AUD,
        "--nonce",
        "n-1",
    )

    valid = run(*verify_args)
    assert valid.exit_code == 0, valid.output
    verified = json.loads(valid.output)
    assert verified["status"] == "valid"
    assert verified["claims"]["role"] == DEMO_ROLE
    assert verified["claims"]["approvers"] == ["bob", "carol"]

    offline = offline_verify(tmp_path, issuer, presentation)
    assert offline.exit_code == 0, offline.output

    revoked = run(
        "pim", "revoke", request_id, "--comment", "done", "--session-file", sessions["carol"]
    )
    assert revoked.exit_code == 0, revoked.output
    assert "(revoked by carol)" in revoked.output

    rejected = run(*verify_args)
    assert rejected.exit_code == 1
    assert "status_revoked" in rejected.output
    offline_rejected = offline_verify(tmp_path, issuer, presentation)
    assert offline_rejected.exit_code == 1
    assert "status_revoked" in offline_rejected.output


def offline_verify(tmp_path: Path, issuer: str, presentation: str) -> Result:
    """Verify with saved JWKS and status list files, as a relying party without network access."""
    with urllib.request.urlopen(f"{issuer}/jwks.json") as response:
        (tmp_path / "jwks.json").write_bytes(response.read())
    with urllib.request.urlopen(status_list_uri_of(presentation)) as response:
        (tmp_path / "status.jwt").write_bytes(response.read())
    return run(
        "credential",
        "verify",
        presentation,
        "--jwks",
        str(tmp_path / "jwks.json"),
        "--status-list",
        str(tmp_path / "status.jwt"),
        "--aud",
        AUD,
        "--nonce",
        "n-1",
    )


def status_list_uri_of(presentation: str) -> str:
    payload = presentation.split("~", 1)[0].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["status"]["status_list"]["uri"])
