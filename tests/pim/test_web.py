"""The approver page through the test client: sign-in, CSRF, cookie flags and CSP."""

from __future__ import annotations

import re

import asyncpg

from tests.pim.conftest import World, audit_events, source

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def cookie_value(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


async def sign_in(world: World, name: str) -> tuple[str, str]:
    """Sign in through the form; return the session cookie and the page's CSRF token."""
    client = world.client
    form_page = await client.get(f"/o/{world.org}/pim/login")
    login_csrf = CSRF_FIELD.search(await form_page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    user = world.users[name]
    response = await client.post(
        f"/o/{world.org}/pim/login",
        form={
            "csrf": login_csrf,
            "username": name,
            "password": user.password,
            "totp": world.totp(name),
        },
        headers={"Cookie": f"pim_login_csrf={login_csrf}"},
        scope_base=source(),
    )
    assert response.status_code == 303
    set_cookie = next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith("pim_session=")
    )
    session = cookie_value(set_cookie)
    page = await client.get(f"/o/{world.org}/pim/", headers={"Cookie": f"pim_session={session}"})
    csrf = CSRF_FIELD.search(await page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    return session, csrf


async def test_session_cookie_flags(world: World) -> None:
    form_page = await world.client.get(f"/o/{world.org}/pim/login")
    login_csrf = CSRF_FIELD.search(await form_page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    user = world.users["bob"]
    response = await world.client.post(
        f"/o/{world.org}/pim/login",
        form={
            "csrf": login_csrf,
            "username": "bob",
            "password": user.password,
            "totp": world.totp("bob"),
        },
        headers={"Cookie": f"pim_login_csrf={login_csrf}"},
    )
    set_cookie = next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith("pim_session=")
    )
    attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite"} <= attributes
    assert "SameSite=Strict" in set_cookie
    assert f"Path=/o/{world.org}/pim/" in set_cookie


async def test_page_lists_pending_with_details(world: World) -> None:
    created = await world.request(justification="vacuum the orders table")
    session, _ = await sign_in(world, "bob")
    page = await world.client.get(
        f"/o/{world.org}/pim/", headers={"Cookie": f"pim_session={session}"}
    )
    html = await page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'id="request-{created["id"]}"' in html
    for text in (
        "alice",
        "prod-db-admin",
        "30 min",
        "vacuum the orders table",
        "CHG-1234",
        "0 of 2",
    ):
        assert text in html, text
    csp = page.headers["Content-Security-Policy"]
    assert "script-src" not in csp
    assert "default-src 'none'" in csp
    assert "<script" not in html


async def test_approve_through_form(world: World, superuser: asyncpg.Connection) -> None:
    created = await world.request()
    session, csrf = await sign_in(world, "bob")
    response = await world.client.post(
        f"/o/{world.org}/pim/requests/{created['id']}/decision",
        form={"csrf": csrf, "action": "approve", "comment": "looks fine"},
        headers={"Cookie": f"pim_session={session}"},
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("?notice=approved")
    events = await audit_events(superuser, world.org_id, "pim.request.approval")
    assert [(e["actor"], e["outcome"]) for e in events] == [("bob", "success")]


async def test_form_without_valid_csrf_changes_nothing(
    world: World, superuser: asyncpg.Connection
) -> None:
    created = await world.request()
    session, _ = await sign_in(world, "bob")
    for csrf in ("", "0" * 64):
        response = await world.client.post(
            f"/o/{world.org}/pim/requests/{created['id']}/decision",
            form={"csrf": csrf, "action": "approve"},
            headers={"Cookie": f"pim_session={session}"},
        )
        assert response.headers["Location"].endswith("?notice=csrf")
    assert await audit_events(superuser, world.org_id, "pim.request.approval") == []


async def test_login_form_without_csrf_cookie_is_rejected(world: World) -> None:
    user = world.users["bob"]
    response = await world.client.post(
        f"/o/{world.org}/pim/login",
        form={
            "csrf": "forged",
            "username": "bob",
            "password": user.password,
            "totp": world.totp("bob"),
        },
    )
    assert response.headers["Location"].endswith("login?notice=csrf")
    assert not any(h.startswith("pim_session=") for h in response.headers.getlist("Set-Cookie"))


async def test_self_approval_through_form_is_refused(world: World) -> None:
    created = await world.request()
    world.clock.advance(30)  # the API sign-in used this step's TOTP code
    session, csrf = await sign_in(world, "alice")
    response = await world.client.post(
        f"/o/{world.org}/pim/requests/{created['id']}/decision",
        form={"csrf": csrf, "action": "approve"},
        headers={"Cookie": f"pim_session={session}"},
    )
    assert response.headers["Location"].endswith("?notice=self_approval_forbidden")


async def test_page_without_session_redirects_to_login(world: World) -> None:
    response = await world.client.get(f"/o/{world.org}/pim/")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/o/{world.org}/pim/login")


async def test_notice_text_is_never_reflected(world: World) -> None:
    page = await world.client.get(f"/o/{world.org}/pim/login?notice=<b>pwned</b>")
    assert "pwned" not in await page.get_data(as_text=True)
