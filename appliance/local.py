"""The data folder of `appliance up`: where its secrets, logs and cluster live.

```
<data-dir>/postgres, run/          embedded PostgreSQL cluster and its socket
<data-dir>/secrets/master/<plane>  each plane's master secret (0600)
<data-dir>/secrets/db/<plane>      each plane role's database password (0600)
<data-dir>/planes/<plane>/         each plane's writable folder
<data-dir>/logs/<plane>.log        each plane's JSON log
<data-dir>/demo-credentials.json   demo secrets for scripts (0600)
```
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from appliance.settings import Plane, read_secret_file

DEFAULT_ROOT_DATA_DIR = Path("/var/lib/appliance")


def default_data_dir() -> Path:
    """`/var/lib/appliance` for root (the embedded server runs as another user
    that must reach the folder), else the user's data directory."""
    if os.geteuid() == 0:
        return DEFAULT_ROOT_DATA_DIR
    return Path(platformdirs.user_data_dir("appliance"))


def write_private(path: Path, content: bytes) -> None:
    """Write `content` to `path` with mode 0600, replacing any previous file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def ensure_secret(path: Path, *, random_bytes: int = 48) -> str:
    """Return the secret stored at `path`, generating it on first use."""
    if not path.exists():
        write_private(path, base64.urlsafe_b64encode(secrets.token_bytes(random_bytes)) + b"\n")
    return path.read_text("utf-8").strip()


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def demo_credentials(self) -> Path:
        return self.root / "demo-credentials.json"

    @property
    def role_password_dir(self) -> Path:
        return self.root / "secrets" / "db"

    def master_secret_file(self, plane: Plane) -> Path:
        return self.root / "secrets" / "master" / plane.value

    def plane_dir(self, plane: Plane) -> Path:
        return self.root / "planes" / plane.value

    def log_file(self, plane: Plane) -> Path:
        return self.root / "logs" / f"{plane.value}.log"

    def ensure_secrets(self) -> None:
        for plane in Plane:
            ensure_secret(self.master_secret_file(plane))
            ensure_secret(self.role_password_dir / plane.value, random_bytes=24)

    def role_password(self, plane: Plane) -> str:
        return (self.role_password_dir / plane.value).read_text("utf-8").strip()

    def master_secret(self, plane: Plane) -> bytes:
        return read_secret_file(self.master_secret_file(plane))
