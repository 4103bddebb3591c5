"""Typed configuration read from environment variables and files.

Every variable `APPLIANCE_X` may instead be given as `APPLIANCE_X_FILE`, a path
whose content is the value (how Kubernetes mounts Secrets). Settings are
validated once at start; the first invalid value stops the process with a
`SettingsError` that names the variable and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class Plane(StrEnum):
    AUTH = "auth"
    ADMIN = "admin"
    PIM = "pim"
    BREAKGLASS = "breakglass"


PLANE_CHOICES = [*(plane.value for plane in Plane), "all"]

# The smallest master secret accepted. HKDF stretches nothing: the secret itself
# must carry the 256 bits of entropy that the derived AES-256 keys claim.
MIN_MASTER_SECRET_BYTES = 32

# Pool budgets per plane (min, max connections). They stay below the
# `CONNECTION LIMIT` that the migrations give each plane's role, so a plane
# that leaks connections exhausts its own budget, never another plane's.
DEFAULT_POOL_BUDGET: dict[Plane, tuple[int, int]] = {
    Plane.AUTH: (2, 20),
    Plane.ADMIN: (1, 5),
    Plane.PIM: (1, 8),
    Plane.BREAKGLASS: (1, 5),
}
DEFAULT_ACQUIRE_TIMEOUT_SECONDS = 5.0

# sslmode values that make libpq-style clients refuse a connection without TLS.
TLS_SSLMODES = frozenset({"require", "verify-ca", "verify-full"})


class SettingsError(ValueError):
    """An invalid or missing configuration value, named in the message."""


@dataclass(frozen=True)
class PoolSettings:
    min_size: int
    max_size: int
    acquire_timeout: float


@dataclass(frozen=True)
class PlaneSettings:
    plane: Plane
    database_url: str
    master_secret: bytes = field(repr=False)
    pool: PoolSettings


@dataclass(frozen=True)
class Settings:
    planes: dict[Plane, PlaneSettings]
    public_url: str
    host: str = "127.0.0.1"
    port: int = 8400
    data_dir: Path | None = None
    log_level: str = "info"
    # Past this snapshot age, offline break-glass activations still work but
    # their credentials live at most `breakglass_stale_ttl` seconds.
    breakglass_snapshot_max_age: int = 24 * 3600
    breakglass_stale_ttl: int = 5 * 60
    # Proxies (the gateway's Envoy pods) whose X-Forwarded-For is believed.
    # Without them every client behind the gateway shares one address, and one
    # client's failures would rate-limit everybody.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()

    def plane(self, plane: Plane) -> PlaneSettings:
        return self.planes[plane]


def _lookup(env: Mapping[str, str], name: str) -> str | None:
    """Return `name` from `env`, or the content of the file named by `name_FILE`."""
    if name in env:
        return env[name]
    file_name = env.get(f"{name}_FILE")
    if file_name is None:
        return None
    try:
        return Path(file_name).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise SettingsError(f"{name}_FILE: cannot read {file_name!r}: {error.strerror}") from None


def _require(env: Mapping[str, str], name: str, hint: str) -> str:
    value = _lookup(env, name)
    if value is None or value == "":
        raise SettingsError(f"{name} is missing: {hint}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = _lookup(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range: use {low}..{high}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = _lookup(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number of seconds") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range: use {low}..{high} seconds")
    return value


def check_database_url(name: str, url: str) -> str:
    """Reject a DSN that is not PostgreSQL, or that reaches TCP without TLS.

    Unix-socket DSNs (a `host` that is a path) carry no network traffic and
    are exempt, which is what the embedded development server uses.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise SettingsError(f"{name}: scheme {parts.scheme!r} is not postgresql://")
    try:
        parts.port  # noqa: B018 (parsing is the check)
    except ValueError:
        # The message must not quote the DSN: the "port" may be part of a password.
        raise SettingsError(
            f"{name}: the port is invalid; if the password contains / ? # or @, "
            "percent-encode them (for example / as %2F)"
        ) from None
    query = parse_qs(parts.query)
    hosts = query.get("host", [])
    socket_only = bool(hosts) and all(host.startswith("/") for host in hosts)
    if socket_only or (not parts.hostname and not hosts):
        return url
    sslmode = query.get("sslmode", [""])[-1]
    if sslmode not in TLS_SSLMODES:
        raise SettingsError(
            f"{name}: a TCP connection to PostgreSQL must use TLS, but sslmode is "
            f"{sslmode or 'unset'!r}; add sslmode=verify-full (or require) to the DSN"
        )
    return url


def read_secret_file(path: Path) -> bytes:
    """Return a secret file's bytes without one trailing line ending.

    Only the line ending goes: stripping all whitespace would shorten a
    binary secret that happens to end in a whitespace byte.
    """
    secret = path.read_bytes()
    if secret.endswith(b"\n"):
        secret = secret[:-1]
        if secret.endswith(b"\r"):
            secret = secret[:-1]
    return secret


def load_master_secret(name: str, path: str) -> bytes:
    try:
        secret = read_secret_file(Path(path))
    except OSError as error:
        raise SettingsError(
            f"{name}: cannot read master secret {path!r}: {error.strerror}"
        ) from None
    if len(secret) < MIN_MASTER_SECRET_BYTES:
        raise SettingsError(
            f"{name}: master secret in {path!r} has {len(secret)} bytes, "
            f"needs at least {MIN_MASTER_SECRET_BYTES}; generate one with "
            "`head -c 48 /dev/urandom | base64 > FILE`"
        )
    return secret


def load_plane_settings(env: Mapping[str, str], plane: Plane) -> PlaneSettings:
    prefix = f"APPLIANCE_{plane.name}"
    url = _require(
        env,
        f"{prefix}_DATABASE_URL",
        f"set it to the DSN of role appliance_{plane.value} (or {prefix}_DATABASE_URL_FILE)",
    )
    secret_file = env.get(f"{prefix}_MASTER_SECRET_FILE")
    if not secret_file:
        raise SettingsError(
            f"{prefix}_MASTER_SECRET_FILE is missing: point it at this plane's master secret file"
        )
    min_default, max_default = DEFAULT_POOL_BUDGET[plane]
    pool_min = _int(env, f"{prefix}_POOL_MIN", min_default, 0, 100)
    pool_max = _int(env, f"{prefix}_POOL_MAX", max_default, 1, 200)
    if pool_min > pool_max:
        raise SettingsError(f"{prefix}_POOL_MIN={pool_min} exceeds {prefix}_POOL_MAX={pool_max}")
    return PlaneSettings(
        plane=plane,
        database_url=check_database_url(f"{prefix}_DATABASE_URL", url),
        master_secret=load_master_secret(f"{prefix}_MASTER_SECRET_FILE", secret_file),
        pool=PoolSettings(
            min_size=pool_min,
            max_size=pool_max,
            acquire_timeout=_float(
                env, f"{prefix}_POOL_ACQUIRE_TIMEOUT", DEFAULT_ACQUIRE_TIMEOUT_SECONDS, 0.1, 120
            ),
        ),
    )


def parse_planes(choice: str) -> list[Plane]:
    if choice == "all":
        return list(Plane)
    try:
        return [Plane(choice)]
    except ValueError:
        raise SettingsError(
            f"plane {choice!r} is unknown: use one of {', '.join(PLANE_CHOICES)}"
        ) from None


def load_settings(env: Mapping[str, str] | None = None, *, plane: str | None = None) -> Settings:
    """Build `Settings` for `plane` (or `APPLIANCE_PLANE`) from `env` (default: os.environ)."""
    env = os.environ if env is None else env
    choice = plane or _lookup(env, "APPLIANCE_PLANE") or ""
    if not choice:
        raise SettingsError("APPLIANCE_PLANE is missing: pass --plane or set it")
    planes = {p: load_plane_settings(env, p) for p in parse_planes(choice)}
    public_url = (_lookup(env, "APPLIANCE_PUBLIC_URL") or "").rstrip("/")
    port = _int(env, "APPLIANCE_PORT", 8400, 1, 65535)
    host = _lookup(env, "APPLIANCE_HOST") or "127.0.0.1"
    if not public_url:
        public_url = f"http://{host}:{port}"
    scheme = urlsplit(public_url).scheme
    if scheme not in ("http", "https"):
        raise SettingsError(f"APPLIANCE_PUBLIC_URL={public_url!r} must start with https://")
    data_dir = _lookup(env, "APPLIANCE_DATA_DIR")
    log_level = (_lookup(env, "APPLIANCE_LOG_LEVEL") or "info").lower()
    if log_level not in ("debug", "info", "warning", "error"):
        raise SettingsError(f"APPLIANCE_LOG_LEVEL={log_level!r}: use debug, info, warning or error")
    return Settings(
        planes=planes,
        public_url=public_url,
        host=host,
        port=port,
        data_dir=Path(data_dir) if data_dir else None,
        log_level=log_level,
        breakglass_snapshot_max_age=_int(
            env, "APPLIANCE_BREAKGLASS_SNAPSHOT_MAX_AGE", 24 * 3600, 60, 30 * 24 * 3600
        ),
        breakglass_stale_ttl=_int(env, "APPLIANCE_BREAKGLASS_STALE_TTL", 5 * 60, 60, 3600),
        trusted_proxies=parse_networks(
            "APPLIANCE_TRUSTED_PROXIES", _lookup(env, "APPLIANCE_TRUSTED_PROXIES") or ""
        ),
    )


def parse_networks(name: str, raw: str) -> tuple[IPv4Network | IPv6Network, ...]:
    networks = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            networks.append(ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(
                f"{name}: {item!r} is not an IP network such as 10.0.0.0/8"
            ) from None
    return tuple(networks)
