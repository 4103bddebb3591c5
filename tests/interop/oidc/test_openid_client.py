"""panva openid-client 6.9 (Node) against a real auth plane server.

It discovers the issuer, runs the code flow with PKCE, validates the ID token
(signature, `iss`, `aud`, `exp`, `nonce`) and uses userinfo, refresh,
introspection, revocation and client credentials. Install its packages with
`npm ci --prefix tests/interop/oidc`; without them these tests fail.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.interop.oidc.conftest import LiveServer
from tests.oidc.conftest import RP_CALLBACK, Tenant

HERE = Path(__file__).parent
INSTALL = "npm ci --prefix tests/interop/oidc"


async def _run(server: LiveServer, tenant: Tenant, mode: str) -> tuple[int, str, str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: install Node 20 or later (apt-get install nodejs npm)")
    if not (HERE / "node_modules" / "openid-client").is_dir():
        pytest.fail(f"openid-client is not installed: run `{INSTALL}`")
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "ISSUER": f"{server.url}/o/{tenant.org}",
        "CLIENT_ID": tenant.confidential_id,
        "CLIENT_SECRET": tenant.confidential_secret,
        "REDIRECT_URI": RP_CALLBACK,
        "USERNAME": tenant.username,
        "PASSWORD": tenant.password,
        "TOTP": tenant.totp(),
        "SERVICE_SCOPE": "api.read",
        "MODE": mode,
    }
    process = await asyncio.create_subprocess_exec(
        node,
        str(HERE / "code_flow.mjs"),
        env=env,
        cwd=HERE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_code_flow_and_id_token(live_server: LiveServer, live_tenant: Tenant) -> None:
    code, stdout, stderr = await _run(live_server, live_tenant, "flow")
    assert code == 0, stderr
    seen: dict[str, Any] = json.loads(stdout)
    issuer = f"{live_server.url}/o/{live_tenant.org}"
    assert seen["issuer"] == issuer
    assert seen["claims"]["iss"] == issuer
    assert seen["claims"]["aud"] == live_tenant.confidential_id
    assert seen["claims"]["sub"] == str(live_tenant.user_id)
    assert seen["userinfo"]["preferred_username"] == live_tenant.username
    assert seen["refreshed"] is True
    assert seen["introspection"]["active"] is True
    assert seen["afterRevocation"] == {"active": False}
    assert seen["serviceTokenType"].lower() == "bearer"


async def test_library_rejects_wrong_nonce(live_server: LiveServer, live_tenant: Tenant) -> None:
    code, _, stderr = await _run(live_server, live_tenant, "wrong-nonce")
    assert code != 0
    assert "nonce" in stderr
