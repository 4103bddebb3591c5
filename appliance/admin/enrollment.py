"""TOTP enrollment: seeds sealed to the planes that check them, shown once as URI and QR.

The admin plane generates a seed, seals it to the X25519 public key of each
plane that will check codes (`plane_seal_keys`), and returns the
provisioning URI and a QR code once. It keeps no copy it could open except
its own sealed one for admin logins, so it cannot show a break-glass or PIM
seed again.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable

import asyncpg

from appliance.admin.errors import Conflict
from appliance.db.queries.keys import SEAL_KEY_GET
from appliance.identity.totp import new_secret, provisioning_uri

# Planes whose embedded login checks a user's TOTP code.
USER_LOGIN_PLANES = ("admin", "auth", "pim")


async def plane_public_keys(
    conn: asyncpg.Connection, planes: Iterable[str], *, sealed: str = "TOTP seed"
) -> dict[str, bytes]:
    """Return each plane's published sealing key; raise `Conflict` naming a missing one.

    `sealed` names what the caller seals, for the error message.
    """
    keys: dict[str, bytes] = {}
    for plane in planes:
        public_key = await conn.fetchval(SEAL_KEY_GET, plane)
        if public_key is None:
            raise Conflict(
                f"the {plane} plane has not published its sealing key yet, so no {sealed} can "
                f"be sealed to it: start the {plane} plane once (appliance serve --plane "
                f"{plane}), then retry"
            )
        keys[plane] = bytes(public_key)
    return keys


def qr_png(uri: str) -> bytes:
    """Render `uri` as a PNG QR code (error correction M, 4-module quiet zone)."""
    buffer = io.BytesIO()
    # Imported here: QR codes are rare, and the module costs memory in every admin process.
    import segno

    segno.make_qr(uri, error="m").save(buffer, kind="png", scale=5, border=4)
    return buffer.getvalue()


def enrollment(secret: str, *, account: str, issuer: str) -> dict[str, str]:
    """Return the one-time enrollment view of `secret`: provisioning URI and QR PNG (base64)."""
    uri = provisioning_uri(secret, account=account, issuer=issuer)
    return {
        "provisioning_uri": uri,
        "qr_png_base64": base64.b64encode(qr_png(uri)).decode(),
    }


__all__ = ["USER_LOGIN_PLANES", "enrollment", "new_secret", "plane_public_keys", "qr_png"]
