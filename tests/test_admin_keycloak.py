"""Admin API and console against the real Keycloak: real tokens for each role, the service
account's import, and the console's sign-in (code flow + PKCE) through Keycloak's login form."""

from __future__ import annotations

import html
import io
import re
import socket
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.settings import Settings
from tests.conftest import DEMO
from tests.keycloak import KeycloakInfo, access_token, auth_settings, service_tokens

pytestmark = pytest.mark.keycloak
A = "/api/v1/admin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def kc_settings(tmp_path: Path, keycloak: KeycloakInfo) -> Callable[..., Settings]:
    def make(**changes: Any) -> Settings:
        base = Settings(
            data_dir=tmp_path / "data", content_dir=DEMO, auth=auth_settings(), search_threads=2
        )
        return base.with_(**changes)

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_each_role_gets_exactly_what_it_may(
    aiohttp_client: Any, kc_settings: Callable[..., Settings]
) -> None:
    client: TestClient = await aiohttp_client(create_app(kc_settings()))
    who = {
        "learner": bearer(access_token("learner")),
        "author": bearer(access_token("author")),
        "admin": bearer(access_token("admin")),
        "cli": bearer(service_tokens()["access_token"]),
    }
    aid = {"title": "Role matrix", "apps": ["hr"], "body": "x"}
    # (method, path, body, {caller: expected status})
    cases: list[tuple[str, str, Any, dict[str, int]]] = [
        (
            "GET",
            f"{A}/aids?limit=1",
            None,
            {"learner": 403, "author": 200, "admin": 200, "cli": 200},
        ),
        ("GET", f"{A}/apps/hr", None, {"learner": 403, "author": 200, "admin": 200, "cli": 200}),
        ("GET", f"{A}/audit", None, {"learner": 403, "author": 403, "admin": 200, "cli": 403}),
        ("GET", f"{A}/export", None, {"learner": 403, "author": 200, "admin": 200, "cli": 200}),
        (
            "POST",
            f"{A}/apps",
            {"id": "matrix", "name": "M"},
            {"learner": 403, "author": 403, "cli": 403, "admin": 201},
        ),
        (
            "POST",
            f"{A}/rules/test",
            {"url": "http://127.0.0.1/demo/hr/"},
            {"learner": 403, "author": 200, "admin": 200, "cli": 200},
        ),
    ]
    for method, path, body, expected in cases:
        for caller, status in expected.items():
            resp = await client.request(method, path, json=body, headers=who[caller])
            assert resp.status == status, (method, path, caller, await resp.text())
    for caller, status in {"learner": 403, "author": 201, "cli": 201, "admin": 201}.items():
        resp = await client.post(
            f"{A}/aids", json={**aid, "id": f"matrix-{caller}"}, headers=who[caller]
        )
        assert resp.status == status, (caller, await resp.text())
    # Author and service account write and submit, but only the admin (a reviewer) publishes.
    for caller in ("author", "cli", "admin"):
        url = f"{A}/aids/matrix-{caller}"
        etag = (await client.get(url, headers=who[caller])).headers["ETag"]
        resp = await client.post(
            f"{url}/transitions", json={"to": "review"}, headers={**who[caller], "If-Match": etag}
        )
        assert resp.status == 200, (caller, await resp.text())
        etag = resp.headers["ETag"]
        resp = await client.post(
            f"{url}/transitions",
            json={"to": "published"},
            headers={**who[caller], "If-Match": etag},
        )
        assert resp.status == (200 if caller == "admin" else 403), caller
    # Only the admin deletes.
    url = f"{A}/aids/matrix-author"
    etag = (await client.get(url, headers=who["admin"])).headers["ETag"]
    for caller, status in {"author": 403, "cli": 403, "admin": 200}.items():
        resp = await client.delete(url, headers={**who[caller], "If-Match": etag})
        assert resp.status == status, caller
    # The audit log names who did it: issuer, subject and username from the real token.
    resp = await client.get(f"{A}/audit?action=aid.create&limit=10", headers=who["admin"])
    entries = {e["target_id"]: e["who"] for e in (await resp.json())["entries"]}
    assert entries["matrix-author"]["username"] == "author"
    assert entries["matrix-cli"]["username"] == "service-account-inflow-cli"
    assert entries["matrix-admin"]["issuer"] == "http://127.0.0.1:8081/realms/inflow"


async def test_service_account_runs_an_import_end_to_end(
    aiohttp_client: Any, kc_settings: Callable[..., Settings]
) -> None:
    client: TestClient = await aiohttp_client(create_app(kc_settings()))
    cli = bearer(service_tokens()["access_token"])
    learner = bearer(access_token("learner"))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(
            "apps/intranet.yaml",
            "id: intranet\nname: Intranet\nrules:\n  - pattern: 'https://intranet.example/**'\n"
            "contexts:\n  - id: intranet-travel\n    name: Travel\n"
            "    rule: 'https://intranet.example/travel'\n    aids: [intranet-travel-policy]\n",
        )
        zf.writestr(
            "aids/intranet-travel-policy.md",
            "---\nid: intranet-travel-policy\ntitle: Travel policy\napps: [intranet]\n"
            "status: published\n---\nBook through the portal.\n",
        )
    resp = await client.post(
        f"{A}/import?filename=pipeline.zip",
        data=archive.getvalue(),
        headers={**cli, "Content-Type": "application/zip"},
    )
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    assert report["apps_created"] == ["intranet"]
    assert report["aids_created"] == ["intranet-travel-policy"]
    resp = await client.post(
        "/api/v1/suggest", json={"url": "https://intranet.example/travel"}, headers=learner
    )
    suggestion = await resp.json()
    assert suggestion["app"]["id"] == "intranet"
    assert suggestion["aids"][0]["id"] == "intranet-travel-policy"
    # A plain author may not import (the archive can carry published content and apps).
    resp = await client.post(
        f"{A}/import",
        data=archive.getvalue(),
        headers={**bearer(access_token("author")), "Content-Type": "application/zip"},
    )
    assert resp.status == 403


async def _keycloak_login(kc: aiohttp.ClientSession, auth_url: str, user: str) -> str:
    """Fill Keycloak's login form; returns the redirect to our callback."""
    resp = await kc.get(auth_url, allow_redirects=False)
    if resp.status == 302:  # SSO session still alive
        return resp.headers["Location"]
    page = await resp.text()
    action = re.search(r'<form[^>]+action="([^"]+)"', page)
    assert action, re.sub(r"(?s)<head>.*?</head>", "", page)[:3000]
    resp = await kc.post(
        html.unescape(action.group(1)),
        data={"username": user, "password": user, "credentialId": ""},
        allow_redirects=False,
    )
    assert resp.status == 302, (await resp.text())[:2000]
    return resp.headers["Location"]


async def test_console_sign_in_through_keycloak_and_sign_out(
    aiohttp_client: Any, kc_settings: Callable[..., Settings]
) -> None:
    port = free_port()
    settings = kc_settings(base_url=f"http://127.0.0.1:{port}")
    client: TestClient = await aiohttp_client(create_app(settings), server_kwargs={"port": port})
    # The "browser" side of Keycloak, with its cookies: unsafe=True takes cookies of an IP
    # address, and Keycloak's cookies are Secure (browsers treat 127.0.0.1 as secure).
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=["http://127.0.0.1:8081"])
    async with aiohttp.ClientSession(cookie_jar=jar) as kc:
        for evil in ("//evil.example", "/\\evil.example", "https:evil.example"):
            client.session.cookie_jar.clear()  # no console session: the full flow each time
            resp = await client.get("/admin/login", params={"next": evil}, allow_redirects=False)
            assert resp.status == 303
            auth_url = resp.headers["Location"]
            assert auth_url.startswith("http://127.0.0.1:8081/realms/inflow/")
            query = parse_qs(urlsplit(auth_url).query)
            assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [
                "inflow-admin"
            ]
            back = await _keycloak_login(kc, auth_url, "admin")
            assert back.startswith(f"http://127.0.0.1:{port}/admin/callback?")
            resp = await client.get(
                urlsplit(back).path + "?" + urlsplit(back).query, allow_redirects=False
            )
            assert resp.status == 303, await resp.text()
            assert resp.headers["Location"] == "/admin", evil
        # A real next works; the callback cannot be replayed.
        resp = await client.get(
            "/admin/login", params={"next": "/admin/aids?status=review"}, allow_redirects=False
        )
        assert resp.headers["Location"] == "/admin/aids?status=review"  # already signed in
        page = await (await client.get("/admin")).text()
        assert "admin (admin, author, learner, reviewer)" in page
        resp = await client.get(
            urlsplit(back).path + "?" + urlsplit(back).query, allow_redirects=False
        )
        assert resp.status == 400
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        # With the real session: CSRF missing or wrong is a 403 problem; a <script> name is
        # escaped on every page that shows it.
        evil = {"id": "kc-evil", "name": "<script>alert(1)</script>", "rules": "https://kc.test/**"}
        for token in (None, "not-the-token"):
            data = evil if token is None else {**evil, "csrf_token": token}
            resp = await client.post("/admin/apps", data=data, allow_redirects=False)
            assert resp.status == 403
            assert resp.content_type == "application/problem+json"
        resp = await client.post("/admin/apps", data={**evil, "csrf_token": csrf})
        assert resp.status == 200
        for path in ("/admin/apps", "/admin/apps/kc-evil"):
            body = await (await client.get(path)).text()
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert" not in body
        # An access token about to expire is refreshed with the (rotating) refresh token.
        app = client.server.app
        store = app[keys.ADMIN_SESSIONS]
        sid = next(c.value for c in client.session.cookie_jar if c.key == store.cookie_name)
        session = await store.get(sid)
        assert session is not None
        old_refresh, session.access_expires_at = session.refresh_token, 0.0
        await store.save(session)
        assert (await client.get("/admin")).status == 200
        refreshed = await store.get(sid)
        assert refreshed is not None and refreshed.refresh_token != old_refresh
        assert refreshed.access_expires_at > time.time() + 60
        # Sign out ends the Keycloak session too: the next sign-in shows the login form again.
        resp = await client.post("/admin/logout", data={"csrf_token": csrf}, allow_redirects=False)
        assert resp.status == 303
        assert (await client.get("/admin", allow_redirects=False)).status == 303
        resp = await client.get("/admin/login", allow_redirects=False)
        login_page = await kc.get(resp.headers["Location"], allow_redirects=False)
        assert login_page.status == 200 and "kc-form-login" in await login_page.text()
        # A learner signs in at Keycloak but gets no console session.
        kc.cookie_jar.clear()
        back = await _keycloak_login(kc, resp.headers["Location"], "learner")
        resp = await client.get(
            urlsplit(back).path + "?" + urlsplit(back).query, allow_redirects=False
        )
        assert resp.status == 403
        assert (await client.get("/admin", allow_redirects=False)).status == 303
