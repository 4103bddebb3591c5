"""`check_database_url`: the TLS rule for TCP DSNs, and errors that never quote a password."""

from __future__ import annotations

import pytest

from appliance.settings import SettingsError, check_database_url


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@db.example:5432/x?sslmode=require",
        "postgresql://u:p@db.example/x?sslmode=verify-full",
        "postgresql://u:p%2Fq@db.example/x?sslmode=verify-ca",
        "postgresql://u:p@/x?host=/run/postgresql",
    ],
)
def test_accepted_urls(url: str) -> None:
    assert check_database_url("DSN", url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:p@db.example/x", "must use TLS"),
        ("postgresql://u:p@db.example/x?sslmode=prefer", "must use TLS"),
        ("mysql://u:p@db.example/x", "is not postgresql://"),
        ("postgresql://u:SECRET/rest@db.example:5432/x?sslmode=require", "port is invalid"),
        ("postgresql://u:SECRET#rest@db.example/x?sslmode=require", "port is invalid"),
    ],
)
def test_rejected_urls_name_the_problem(url: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        check_database_url("DSN", url)

    assert message in str(raised.value)
    assert "SECRET" not in str(raised.value)
