"""`appliance up` and local drills give each plane only its own secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.cli.up import plane_env
from appliance.local import DataDir
from appliance.settings import Plane


def test_plane_env_drops_caller_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "superuser-password")
    monkeypatch.setenv("PGPASSFILE", "/root/.pgpass")
    monkeypatch.setenv("APPLIANCE_ADMIN_MASTER_SECRET_FILE", "/secret/admin")
    monkeypatch.setenv("PGSSLMODE", "verify-full")

    env = plane_env(DataDir(tmp_path), Plane.PIM, 8403, "postgresql://appliance_pim@/appliance")

    assert "PGPASSWORD" not in env
    assert "PGPASSFILE" not in env
    assert "APPLIANCE_ADMIN_MASTER_SECRET_FILE" not in env
    assert env["PGSSLMODE"] == "verify-full"
    assert env["APPLIANCE_PIM_DATABASE_URL"] == "postgresql://appliance_pim@/appliance"
