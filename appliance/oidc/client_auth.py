"""Client authentication (RFC 6749 section 2.3).

It runs at the token, introspection and revocation endpoints.

A request uses exactly one method: HTTP Basic (`client_secret_basic`), the
secret in the body (`client_secret_post`), a signed assertion
(`private_key_jwt`, RFC 7523), or only `client_id` for a public client
(`none`). The method must be the one the client registered, so a client
registered for `private_key_jwt` cannot fall back to a guessed secret.
Every failure is `invalid_client` (401); which check failed is logged,
never sent to the client.
"""

from __future__ import annotations

import base64
import binascii
import logging
from urllib.parse import unquote_plus
from uuid import UUID

from quart import request

from appliance.log import RepeatLimiter, log_fields
from appliance.oidc.client_secrets import client_secret_matches
from appliance.oidc.clients import Client
from appliance.oidc.errors import InvalidClient, InvalidRequest
from appliance.oidc.jose import JoseError, parse_unverified
from appliance.oidc.params import Params
from appliance.oidc.rfc7523 import ASSERTION_TYPE, verify_client_assertion
from appliance.oidc.service import OidcService

log = logging.getLogger("appliance.oidc.client_auth")
MAX_AUTHORIZATION_HEADER = 1024


def _basic_credentials(header: str) -> tuple[str, str] | None:
    """Decode `Authorization: Basic` into (client_id, secret).

    Both halves are form-decoded first, as RFC 6749 section 2.3.1 requires.
    """
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _failure("basic_header_malformed", basic=True) from None
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        raise _failure("basic_header_malformed", basic=True)
    return unquote_plus(client_id), unquote_plus(secret)


# Failed client authentication is logged at most 20 times a second per process.
FAILURE_LOG_LIMITER = RepeatLimiter(limit=20, window_seconds=1.0)


def _failure(reason: str, *, basic: bool, client_id: str | None = None) -> InvalidClient:
    allowed, suppressed = FAILURE_LOG_LIMITER.allow()
    if allowed:
        log.info(
            "client authentication failed",
            extra=log_fields(
                reason=reason, client_id=(client_id or "")[:128], suppressed_before=suppressed
            ),
        )
    headers = {"WWW-Authenticate": 'Basic realm="token"'} if basic else None
    return InvalidClient(
        "client authentication failed: check the client_id and the credentials "
        "of its registered method",
        headers=headers,
    )


async def authenticate_client(
    service: OidcService,
    org_id: UUID,
    org_name: str,
    params: Params,
    *,
    endpoint: str,
    allow_public: bool = True,
) -> Client:
    """Authenticate the client of this request, or raise `InvalidClient` / `InvalidRequest`."""
    header = request.headers.get("Authorization")
    basic = None
    if header is not None:
        if len(header) > MAX_AUTHORIZATION_HEADER:
            raise _failure("authorization_header_too_long", basic=True)
        basic = _basic_credentials(header)
        if basic is None:
            raise _failure("authorization_scheme_not_basic", basic=True)
    secret_in_body = params.get("client_secret")
    assertion = params.get("client_assertion")
    used = [
        name
        for name, present in (("basic", basic), ("post", secret_in_body), ("jwt", assertion))
        if present
    ]
    if len(used) > 1:
        raise InvalidRequest(
            "the request uses more than one client authentication method; use exactly one"
        )
    body_client_id = params.get("client_id")

    if basic is not None:
        client_id, secret = basic
        if body_client_id is not None and body_client_id != client_id:
            raise _failure("client_id_mismatch", basic=True, client_id=client_id)
        client = await _registered(service, org_id, client_id, "client_secret_basic", basic=True)
        _check_secret(client, secret, basic=True)
        return client
    if secret_in_body is not None:
        client_id = _required_client_id(body_client_id)
        client = await _registered(service, org_id, client_id, "client_secret_post", basic=False)
        _check_secret(client, secret_in_body, basic=False)
        return client
    if assertion is not None:
        if params.get("client_assertion_type") != ASSERTION_TYPE:
            raise InvalidRequest(f"client_assertion_type must be {ASSERTION_TYPE}")
        client_id = _assertion_subject(assertion, body_client_id)
        client = await _registered(service, org_id, client_id, "private_key_jwt", basic=False)
        issuer = service.issuer(org_name)
        try:
            await verify_client_assertion(
                service, org_id, client, assertion, audiences={issuer, endpoint}
            )
        except JoseError as error:
            raise _failure(f"assertion_{error.reason}", basic=False, client_id=client_id) from None
        return client
    client_id = _required_client_id(body_client_id)
    client = await _registered(service, org_id, client_id, "none", basic=False)
    if not allow_public:
        raise _failure("public_client_not_allowed", basic=False, client_id=client_id)
    return client


def _required_client_id(client_id: str | None) -> str:
    if client_id is None:
        raise InvalidClient(
            "no client authentication: send HTTP Basic credentials, client_id with client_secret, "
            "or a client_assertion",
            headers={"WWW-Authenticate": 'Basic realm="token"'},
        )
    return client_id


def _assertion_subject(assertion: str, body_client_id: str | None) -> str:
    try:
        _, claims, _, _ = parse_unverified(assertion)
    except JoseError as error:
        raise _failure(f"assertion_{error.reason}", basic=False, client_id=body_client_id) from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or (body_client_id is not None and subject != body_client_id):
        raise _failure("assertion_sub_not_client_id", basic=False, client_id=body_client_id)
    return subject


async def _registered(
    service: OidcService, org_id: UUID, client_id: str, method: str, *, basic: bool
) -> Client:
    client = await service.clients.get(org_id, client_id)
    if client is None:
        raise _failure("unknown_client", basic=basic, client_id=client_id)
    if client.disabled:
        raise _failure("client_disabled", basic=basic, client_id=client_id)
    if client.auth_method != method:
        raise _failure(f"method_{method}_not_registered", basic=basic, client_id=client_id)
    return client


def _check_secret(client: Client, secret: str, *, basic: bool) -> None:
    if client.secret_salt is None or client.secret_hash is None:
        raise _failure("client_has_no_secret", basic=basic, client_id=client.client_id)
    if not client_secret_matches(secret, salt=client.secret_salt, stored_hash=client.secret_hash):
        raise _failure("wrong_secret", basic=basic, client_id=client.client_id)
