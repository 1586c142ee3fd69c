"""The admin console (/admin) with sessions made from forged tokens: pages, CSRF, escaping,
open redirects, concurrency and the publish flow through forms. The real Keycloak sign-in is in
tests/test_admin_keycloak.py, the real browser in tests/browser/test_admin_console.py."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from server import keys
from server.console.csrf import safe_next
from tests.tokens import TokenMaker

EVIL_NEXT = [
    "//evil.example",
    "//evil.example/admin",
    "/\\evil.example",
    "\\\\evil.example",
    "https:evil.example",
    "https://evil.example",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%252F%252Fevil.example",
    "/admin\r\nLocation: https://evil.example",
    "/\t/evil.example",
    "javascript:alert(1)",
    "evil.example",
    "",
]


async def sign_in(client: TestClient, token: str) -> str:
    """A console session for `token` (as the callback would make it); returns its CSRF token."""
    app = client.server.app
    identity = await app[keys.AUTHENTICATOR].authenticate(token)
    store = app[keys.ADMIN_SESSIONS]
    sid, session = await store.create(identity, {"access_token": token, "refresh_token": ""})
    client.session.cookie_jar.update_cookies({store.cookie_name: sid})
    return session.csrf


@pytest.fixture
def admin_token(tokens: TokenMaker) -> str:
    return tokens.token(sub="admin-1", roles=("learner", "author", "admin", "reviewer"))


def test_next_only_ever_stays_local() -> None:
    for raw in EVIL_NEXT:
        assert safe_next(raw) == "/admin", raw
    assert safe_next("/admin/aids?status=review") == "/admin/aids?status=review"
    assert safe_next("/admin/aids/x#history") == "/admin/aids/x#history"


async def test_signed_out_and_learner_are_kept_out(client: TestClient, tokens: TokenMaker) -> None:
    resp = await client.get("/admin/aids?status=review", allow_redirects=False)
    assert resp.status == 303
    location = urlsplit(resp.headers["Location"])
    assert location.path == "/admin/login"
    assert parse_qs(location.query) == {"next": ["/admin/aids?status=review"]}
    await sign_in(client, tokens.token(sub="learner-1", roles=("learner",)))
    for path in ("/admin", "/admin/aids", "/admin/apps", "/admin/audit", "/admin/import"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 403, path
        assert "authors, reviewers and admins" in await resp.text()


async def test_signed_in_next_redirects_stay_local(client: TestClient, admin_token: str) -> None:
    await sign_in(client, admin_token)
    for raw in EVIL_NEXT:
        resp = await client.get("/admin/login", params={"next": raw}, allow_redirects=False)
        assert resp.status == 303
        assert resp.headers["Location"] == "/admin", raw


async def test_csrf_missing_or_wrong_is_403_and_changes_nothing(
    client: TestClient, admin_token: str
) -> None:
    csrf = await sign_in(client, admin_token)
    form = {"id": "csrf-app", "name": "CSRF", "rules": "https://csrf.example/**"}
    for token in (None, "", "wrong", csrf[:-1] + ("A" if csrf[-1] != "A" else "B")):
        data = dict(form) if token is None else {**form, "csrf_token": token}
        resp = await client.post("/admin/apps", data=data, allow_redirects=False)
        assert resp.status == 403, token
        assert resp.content_type == "application/problem+json"
        assert "CSRF" in (await resp.json())["detail"]
    resp = await client.post("/admin/logout", data={"csrf_token": "wrong"}, allow_redirects=False)
    assert resp.status == 403
    upload = FormData()
    upload.add_field("csrf_token", "wrong")
    upload.add_field("archive", b"PK\x05\x06" + b"\0" * 18, filename="x.zip")
    resp = await client.post("/admin/import", data=upload, allow_redirects=False)
    assert resp.status == 403
    assert "csrf-app" not in client.server.app[keys.LIBRARY].catalog.apps
    resp = await client.post(
        "/admin/apps", data={**form, "csrf_token": csrf}, allow_redirects=False
    )
    assert resp.status == 303
    assert "csrf-app" in client.server.app[keys.LIBRARY].catalog.apps


async def test_every_value_is_escaped(client: TestClient, admin_token: str) -> None:
    csrf = await sign_in(client, admin_token)
    evil = "<script>alert('app')</script>"
    resp = await client.post(
        "/admin/apps",
        data={"csrf_token": csrf, "id": "evil", "name": evil, "rules": "https://evil.test/**"},
    )
    assert resp.status == 200
    for path in ("/admin/apps", "/admin/apps/evil", "/admin/tester?url=https://evil.test/x"):
        html = await (await client.get(path)).text()
        assert "&lt;script&gt;alert(&#39;app&#39;)&lt;/script&gt;" in html, path
        assert "<script>alert" not in html, path
    resp = await client.get("/admin/aids?owner=<img src=x onerror=alert(1)>")
    html = await resp.text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")


async def test_write_pin_and_publish_through_the_forms(
    client: TestClient, admin_token: str, learner: dict[str, str]
) -> None:
    csrf = await sign_in(client, admin_token)
    for path in (
        "/admin",
        "/admin/aids",
        "/admin/aids/new",
        "/admin/stale",
        "/admin/import",
        "/admin/audit",
        "/admin/tester",
        "/admin/contexts/hr-timeoff",
    ):
        assert (await client.get(path)).status == 200, path
    resp = await client.post(
        "/admin/aids/new",
        data={
            "csrf_token": csrf,
            "id": "console-aid",
            "title": "Carry over unused leave",
            "summary": "Quokka rules",
            "type": "howto",
            "apps": "hr",
            "body": "**Five days** carry over.",
            "review_interval_days": "90",
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/admin/aids/console-aid?notice=created"
    page = await (await client.get("/admin/aids/console-aid")).text()
    etag = re.search(r'name="etag" value="([^"]+)"', page)
    assert etag
    etag_value = etag.group(1).replace("&#34;", '"')

    # Preview (no JS): sanitized; the live preview endpoint answers JSON.
    resp = await client.post(
        "/admin/aids/console-aid",
        data={
            "csrf_token": csrf,
            "etag": etag_value,
            "title": "T",
            "action": "preview",
            "body": "<script>x()</script>\n\n**bold**",
        },
    )
    html = await resp.text()
    assert "<strong>bold</strong>" in html and "<script>x()" not in html
    resp = await client.post(
        "/admin/preview",
        data={"markdown": "<img src=x onerror=alert(1)>*hi*"},
        headers={"X-CSRF-Token": csrf},
    )
    preview = (await resp.json())["html"]
    assert "onerror" not in preview and "<em>hi</em>" in preview

    # Two editors saved from the same version: the second gets 412 and keeps its text.
    form = {
        "csrf_token": csrf,
        "etag": etag_value,
        "title": "Carry over unused leave",
        "apps": "hr",
        "body": "First editor.",
    }
    assert (
        await client.post("/admin/aids/console-aid", data=form, allow_redirects=False)
    ).status == 303
    resp = await client.post(
        "/admin/aids/console-aid", data={**form, "body": "Second editor."}, allow_redirects=False
    )
    assert resp.status == 412
    assert "Second editor." in await resp.text()

    # Pin to the time-off page, move it to the top, publish: the learner's suggest shows it.
    ctx_page = await (await client.get("/admin/contexts/hr-timeoff")).text()
    cetag = re.search(r'name="etag" value="([^"]+)"', ctx_page).group(1).replace("&#34;", '"')
    resp = await client.post(
        "/admin/contexts/hr-timeoff/pins",
        data={"csrf_token": csrf, "etag": cetag, "aid": "console-aid", "move": "add"},
        allow_redirects=False,
    )
    assert resp.status == 303
    for _ in range(4):
        ctx_page = await (await client.get("/admin/contexts/hr-timeoff")).text()
        cetag = re.search(r'name="etag" value="([^"]+)"', ctx_page).group(1).replace("&#34;", '"')
        resp = await client.post(
            "/admin/contexts/hr-timeoff/pins",
            data={"csrf_token": csrf, "etag": cetag, "aid": "console-aid", "move": "up"},
            allow_redirects=False,
        )
        assert resp.status == 303
    assert client.server.app[keys.LIBRARY].catalog.contexts["hr-timeoff"].aids[0] == "console-aid"
    page = await (await client.get("/admin/aids/console-aid")).text()
    etag_value = re.search(r'name="etag" value="([^"]+)"', page).group(1).replace("&#34;", '"')
    resp = await client.post(
        "/admin/aids/console-aid/transition",
        data={"csrf_token": csrf, "etag": etag_value, "to": "published"},
        allow_redirects=False,
    )
    assert resp.status == 303
    resp = await client.post(
        "/api/v1/suggest",
        json={"url": "http://127.0.0.1:8080/demo/hr/timeoff.html"},
        headers=learner,
    )
    assert (await resp.json())["aids"][0]["id"] == "console-aid"

    history = await (await client.get("/admin/aids/console-aid/history?from=1&to=3")).text()
    assert "First editor." in history and "published" in history
    audit = await (await client.get("/admin/audit?target_id=console-aid")).text()
    assert "aid.published" in audit and "admin-1" in audit

    # Sign out: the session is gone.
    resp = await client.post("/admin/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/signed-out"
    assert (await client.get("/admin", allow_redirects=False)).status == 303


async def test_session_cookie_flags(
    aiohttp_client: Any, make_settings: Any, admin_token: str
) -> None:
    from server.app import create_app

    for base_url, name, secure in (
        ("http://127.0.0.1:8080", "inflow_session", False),
        ("https://inflow.example", "__Host-inflow_session", True),
    ):
        client = await aiohttp_client(create_app(make_settings(base_url=base_url)))
        store = client.server.app[keys.ADMIN_SESSIONS]
        assert store.cookie_name == name
        from aiohttp import web

        response = web.Response()
        store.set_cookie(response, "sid")
        header = response.cookies[name].output(header="").strip()
        assert header.startswith(f"{name}=sid")
        assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
        assert ("Secure" in header) is secure
        await client.close()


async def test_sign_in_starts_on_the_configured_host(
    aiohttp_client: Any, make_settings: Any
) -> None:
    """Opened on another host name than base_url (localhost vs 127.0.0.1), the state cookie
    would be set on a host the Keycloak callback never reaches: start over on base_url's host."""
    from server.app import create_app

    client = await aiohttp_client(create_app(make_settings(base_url="http://localhost:8080")))
    resp = await client.get("/admin/login", params={"next": "/admin/aids"}, allow_redirects=False)
    assert resp.status == 303
    location = urlsplit(resp.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == (
        "http",
        "localhost:8080",
        "/admin/login",
    )
    assert parse_qs(location.query) == {"next": ["/admin/aids"], "moved": ["1"]}
