"""Webhooks: registration, payload formats and the HMAC-SHA256 signature.

Each request carries

- `X-Appliance-Event`: the event type, e.g. `pim.request.created`;
- `X-Appliance-Delivery`: the delivery id, stable across retries, so a
  receiver can drop a duplicate;
- `X-Appliance-Signature: t=<unix seconds>,v1=<hex>`, where `<hex>` is
  HMAC-SHA256 under the webhook's secret over `<t>.<body>`. Binding the
  timestamp lets a receiver reject replays older than a few minutes.

The body is the event as JSON (`payload_format` `json`), or a Slack
incoming-webhook message with `text` and one `mrkdwn` section (`slack`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg

from appliance.audit.chain import AuditEvent, append, format_time
from appliance.db.queries.notify import NOTIFY_WEBHOOK_INSERT
from appliance.keys.sealing import seal
from appliance.notify.outbox import DEFAULT_EVENTS, EVENT_TYPES

PAYLOAD_FORMATS: Final = ("json", "slack")
SIGNATURE_HEADER: Final = "X-Appliance-Signature"
EVENT_HEADER: Final = "X-Appliance-Event"
DELIVERY_HEADER: Final = "X-Appliance-Delivery"
MIN_SECRET_CHARS: Final = 16


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """Return the signature header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    secret: bytes, header: str, body: bytes, *, now: int, tolerance: int = 300
) -> None:
    """Raise ValueError unless `header` signs `body` within `tolerance` seconds of `now`.

    A reference for receivers, and what the tests use.
    """
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
        received = fields["v1"]
    except (KeyError, ValueError):
        raise ValueError(
            f"{SIGNATURE_HEADER} is malformed: expected t=<seconds>,v1=<hex>"
        ) from None
    if abs(now - timestamp) > tolerance:
        raise ValueError(f"signature timestamp {timestamp} is more than {tolerance} s from now")
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, received):
        raise ValueError("signature does not match the body")


def render_body(
    payload_format: str,
    *,
    event_id: UUID,
    event_type: str,
    subject: str,
    data: dict[str, Any],
    created_at: datetime,
) -> bytes:
    """Return the request body of one delivery."""
    event = {
        "id": str(event_id),
        "type": event_type,
        "subject": subject,
        "occurred_at": format_time(created_at),
        "data": data,
    }
    if payload_format == "slack":
        text = summary(event_type, data)
        message = {
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        }
        return json.dumps(message, sort_keys=True).encode()
    return json.dumps(event, sort_keys=True).encode()


def summary(event_type: str, data: dict[str, Any]) -> str:
    """Return the one-line summary of an event that a person reads in a chat channel."""
    requester = data.get("requester", "?")
    role = data.get("role", "?")
    minutes = round(int(data.get("duration_seconds", 0)) / 60)
    by = data.get("by")
    lines = {
        "pim.request.created": f"{requester} requests *{role}* for {minutes} min: "
        f"{data.get('justification', '')}",
        "pim.request.approved": f"{requester}'s request for *{role}* is approved",
        "pim.request.denied": f"{requester}'s request for *{role}* was denied by {by}",
        "pim.request.cancelled": f"{requester} cancelled the request for *{role}*",
        "pim.request.expired": f"{requester}'s request for *{role}* expired without a decision",
        "pim.grant.activated": f"{requester} now holds *{role}* until {data.get('ends_at')}",
        "pim.grant.expiring_soon": f"{requester}'s *{role}* ends at {data.get('ends_at')}",
        "pim.grant.revoked": f"{requester}'s *{role}* was revoked by {by}",
        "pim.grant.relinquished": f"{requester} gave up *{role}*",
        "pim.grant.ended": f"{requester}'s *{role}* has ended",
    }
    text = lines.get(event_type, event_type)
    ticket = data.get("ticket")
    if ticket and event_type == "pim.request.created":
        text += f" (ticket {ticket})"
    request_id = data.get("request_id")
    return f"{text} [request {request_id}]" if request_id else text


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook URL {url!r} must be an absolute http:// or https:// URL")
    return url


async def create_webhook(
    conn: asyncpg.Connection,
    org_id: UUID,
    *,
    url: str,
    secret: str,
    pim_seal_public_key: bytes,
    actor: str,
    now: datetime,
    payload_format: str = "json",
    events: Iterable[str] = DEFAULT_EVENTS,
) -> UUID:
    """Register a webhook; its secret is sealed to the PIM plane, which signs deliveries."""
    check_url(url)
    if payload_format not in PAYLOAD_FORMATS:
        raise ValueError(f"payload format {payload_format!r} is unknown: use json or slack")
    if len(secret) < MIN_SECRET_CHARS:
        raise ValueError(f"webhook secret needs at least {MIN_SECRET_CHARS} characters")
    event_list = sorted(set(events))
    unknown = sorted(set(event_list) - EVENT_TYPES)
    if unknown or not event_list:
        raise ValueError(f"unknown or no event types {unknown}: use {sorted(EVENT_TYPES)}")
    webhook_id: UUID = await conn.fetchval(
        NOTIFY_WEBHOOK_INSERT,
        org_id,
        url,
        seal(pim_seal_public_key, secret.encode()),
        payload_format,
        event_list,
    )
    await append(
        conn,
        org_id,
        AuditEvent(
            event_type="notify.webhook_created",
            plane="admin",
            actor=actor,
            subject=str(webhook_id),
            outcome="success",
            occurred_at=now,
            data={"url": url, "payload_format": payload_format, "events": event_list},
        ),
    )
    return webhook_id
