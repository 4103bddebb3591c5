"""The independent SD-JWT verifier: `tests/interop/verify.mjs`, @sd-jwt/sd-jwt-vc on Node."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent.parent / "tests" / "interop" / "verify.mjs"
TIMEOUT_SECONDS = 30.0


class NpmVerifier:
    """Run the npm verifier on a presentation; `available` is False without node or the script."""

    def __init__(self, script: Path = SCRIPT) -> None:
        self.script = script
        self.node = shutil.which("node")
        self.available = (
            self.node is not None
            and script.is_file()
            and (script.parent / "node_modules" / "@sd-jwt").is_dir()
        )

    async def verify(
        self,
        presentation: str,
        issuer_jwk: dict[str, Any],
        *,
        aud: str,
        nonce: str,
        now: int,
        status_list_token: str | None,
    ) -> tuple[bool, str]:
        """Return (passed, detail): the decoded `exp - iat`, or the verifier's reason."""
        if not self.available or self.node is None:
            return False, "npm verifier unavailable"
        payload = json.dumps(
            {
                "presentation": presentation,
                "issuer_jwk": issuer_jwk,
                "aud": aud,
                "nonce": nonce,
                "now": now,
                "status_list_token": status_list_token,
            }
        ).encode()
        process = await asyncio.create_subprocess_exec(
            self.node,
            str(self.script),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(payload), TIMEOUT_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            return False, "npm verifier timed out"
        if process.returncode != 0:
            return False, err.decode(errors="replace").strip()[:300]
        claims = json.loads(out)["payload"]
        return True, f"exp-iat={claims['exp'] - claims['iat']}"
