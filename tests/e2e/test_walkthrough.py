"""The README walk-through against a real `appliance up`: activate, present, verify."""

from __future__ import annotations

import json
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningAppliance, free_port_block, start_appliance, stop_appliance
from tests.totp_codes import CodeSource

pytestmark = pytest.mark.e2e

AUD = "https://bastion.example"
NONCE = "e2e-nonce-7"


CODES: dict[str, CodeSource] = {}


def _activate(
    appliance: RunningAppliance, out: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    demo = appliance.demo()["breakglass"]
    return appliance.cli(
        "breakglass",
        "activate",
        "--url",
        appliance.breakglass_url,
        "--org",
        "demo",
        "--account",
        demo["account"],
        "--incident",
        "INC-2042",
        "--reason",
        "primary IdP is down",
        "--totp",
        CODES.setdefault(demo["totp_secret"], CodeSource(demo["totp_secret"])).next(),
        "--passphrase-stdin",
        "--out",
        str(out),
        *extra,
        stdin=demo["passphrase"] + "\n",
        check=False,
    )


def test_demo_credentials_file_is_private(appliance: RunningAppliance) -> None:
    path = appliance.data_dir / "demo-credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    demo = appliance.demo()
    assert {"account", "passphrase", "totp_secret"} <= set(demo["breakglass"])


def test_activate_present_verify(appliance: RunningAppliance, tmp_path: Path) -> None:
    out = tmp_path / "credential.json"
    result = _activate(appliance, out, "--ttl", "10m")
    assert result.returncode == 0, result.stderr
    assert "expires:" in result.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    stored = json.loads(out.read_text())
    assert 0 < stored["expires_at"] - time.time() <= 600

    presentation = appliance.cli(
        "credential", "present", str(out), "--aud", AUD, "--nonce", NONCE
    ).stdout.strip()
    issuer = f"{appliance.breakglass_url}/o/demo/breakglass"
    verified = appliance.cli(
        "credential", "verify", presentation, "--issuer", issuer, "--aud", AUD, "--nonce", NONCE
    )
    claims = json.loads(verified.stdout)
    assert claims["valid"] is True
    assert claims["claims"]["incident"] == "INC-2042"
    assert claims["expires_at"] - claims["issued_at"] == 600


def test_verify_rejects_wrong_nonce_and_tampering(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    out = tmp_path / "credential.json"
    assert _activate(appliance, out).returncode == 0
    presentation = appliance.cli(
        "credential", "present", str(out), "--aud", AUD, "--nonce", NONCE
    ).stdout.strip()
    issuer = f"{appliance.breakglass_url}/o/demo/breakglass"
    wrong_nonce = appliance.cli(
        "credential",
        "verify",
        presentation,
        "--issuer",
        issuer,
        "--aud",
        AUD,
        "--nonce",
        "other",
        check=False,
    )
    assert wrong_nonce.returncode == 1
    assert "kb_nonce_mismatch" in wrong_nonce.stderr
    issuer_jwt, _, rest = presentation.partition("~")
    header, payload, signature = issuer_jwt.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA~{rest}"
    result = appliance.cli(
        "credential",
        "verify",
        tampered,
        "--issuer",
        issuer,
        "--aud",
        AUD,
        "--nonce",
        NONCE,
        check=False,
    )
    assert result.returncode == 1
    assert "signature_invalid" in result.stderr
    stripped = presentation[: presentation.rindex("~") + 1]
    result = appliance.cli(
        "credential",
        "verify",
        stripped,
        "--issuer",
        issuer,
        "--aud",
        AUD,
        "--nonce",
        NONCE,
        check=False,
    )
    assert result.returncode == 1
    assert "kb_missing" in result.stderr


def test_wrong_passphrase_fails_clearly(appliance: RunningAppliance, tmp_path: Path) -> None:
    demo = appliance.demo()["breakglass"]
    result = appliance.cli(
        "breakglass",
        "activate",
        "--url",
        appliance.breakglass_url,
        "--org",
        "demo",
        "--account",
        demo["account"],
        "--incident",
        "INC-1",
        "--reason",
        "test",
        "--totp",
        "000000",
        "--passphrase-stdin",
        "--out",
        str(tmp_path / "c.json"),
        stdin="not the passphrase\n",
        check=False,
    )
    assert result.returncode == 1
    assert "activation_failed" in result.stderr
    assert not (tmp_path / "c.json").exists()


def test_independent_verifier_accepts_credential(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    out = tmp_path / "credential.json"
    assert _activate(appliance, out).returncode == 0
    presentation = appliance.cli(
        "credential", "present", str(out), "--aud", AUD, "--nonce", NONCE
    ).stdout.strip()
    import urllib.request

    with urllib.request.urlopen(
        f"{appliance.breakglass_url}/o/demo/breakglass/jwks.json"
    ) as response:
        jwks = json.loads(response.read())
    node_modules = Path(__file__).parents[1] / "interop" / "node_modules" / "@sd-jwt" / "sd-jwt-vc"
    if not node_modules.is_dir():
        pytest.fail("npm packages missing: run `npm ci --prefix tests/interop`")
    result = subprocess.run(
        ["node", str(Path(__file__).parents[1] / "interop" / "verify.mjs")],
        input=json.dumps(
            {
                "presentation": presentation,
                "issuer_jwk": jwks["keys"][0],
                "aud": AUD,
                "nonce": NONCE,
                "now": int(time.time()),
            }
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    decoded = json.loads(result.stdout)
    assert decoded["payload"]["iss"] == f"{appliance.breakglass_url}/o/demo/breakglass"
    assert decoded["payload"]["incident"] == "INC-2042"


def test_audit_chain_verifies(appliance: RunningAppliance) -> None:
    result = appliance.cli("audit", "verify", "--data-dir", str(appliance.data_dir))
    assert "demo: ok" in result.stdout


def test_planes_are_isolated_processes(appliance: RunningAppliance) -> None:
    import urllib.error
    import urllib.request

    for offset, plane in enumerate(["auth", "admin", "pim", "breakglass"]):
        with urllib.request.urlopen(f"{appliance.url(offset)}/healthz") as response:
            assert json.loads(response.read())["planes"] == [plane]
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{appliance.url(0)}/o/demo/breakglass/jwks.json")
    assert missing.value.code == 404
    missing.value.close()


def test_restart_reuses_data(appliance_root: Path) -> None:
    data_dir = appliance_root / "restart"
    first = start_appliance(data_dir, free_port_block())
    secrets_before = first.demo()
    assert stop_appliance(first) == 0
    assert "stopped" in "".join(first.output)
    second = start_appliance(data_dir, free_port_block())
    try:
        assert "kept from an earlier run" in "".join(second.output)
        assert second.demo() == secrets_before
    finally:
        assert stop_appliance(second) == 0
    assert first.process.returncode == 0
