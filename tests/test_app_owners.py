"""An app's owners (peer learning: they moderate its tips and answer its questions): e-mail
addresses on the app, through the admin API and the console, kept by edits that do not touch them.
"""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from server import keys
from tests.test_admin_console import etag_of, sign_in
from tests.tokens import TokenMaker

A = "/api/v1/admin/apps"
ADMIN_ROLES = ("learner", "author", "admin", "reviewer")


async def test_owners_through_the_admin_api(client: TestClient, admin: dict[str, str]) -> None:
    resp = await client.get(f"{A}/hr", headers=admin)
    app = await resp.json()
    assert app["owners"] == []
    app["owners"] = ["HR.Ops@example.com", "hr.ops@example.com", "people-it@example.com"]
    resp = await client.put(
        f"{A}/hr", json=app, headers={**admin, "If-Match": resp.headers["ETag"]}
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["owners"] == ["HR.Ops@example.com", "people-it@example.com"]
    assert client.server.app[keys.LIBRARY].catalog.apps["hr"].owners == (
        "HR.Ops@example.com",
        "people-it@example.com",
    )
    etag = resp.headers["ETag"]
    too_many = {**app, "owners": [f"o{i}@example.com" for i in range(11)]}
    resp = await client.put(f"{A}/hr", json=too_many, headers={**admin, "If-Match": etag})
    assert resp.status == 422
    assert "owners" in await resp.text()
    bad = {**app, "owners": ["@handle", "https://evil.example"]}
    resp = await client.put(f"{A}/hr", json=bad, headers={**admin, "If-Match": etag})
    assert resp.status == 422
    assert "is not an e-mail address" in await resp.text()


async def test_console_edits_owners_and_keeps_wrapped_targets(
    client: TestClient, tokens: TokenMaker, admin: dict[str, str]
) -> None:
    """Saving an app in the console kept only what its form shows: an app's wrapped targets
    (ServiceNow's /nav_to.do?uri=...) were wiped by any console edit of its name or rules, and so
    would its owners be. The form now edits owners, and keeps wrapped targets."""
    resp = await client.post(
        A,
        json={
            "id": "snow",
            "name": "ServiceNow",
            "rules": ["https://acme.service-now.test/**"],
            "wrapped_targets": ["/nav_to.do?uri={target}"],
        },
        headers=admin,
    )
    assert resp.status == 201, await resp.text()
    csrf = await sign_in(client, tokens.token(sub="admin-1", roles=ADMIN_ROLES))
    page = await (await client.get("/admin/apps/snow")).text()
    assert 'name="owners"' in page
    form = {
        "csrf_token": csrf,
        "etag": etag_of(page),
        "name": "ServiceNow (Acme)",
        "description": "",
        "rules": "https://acme.service-now.test/**",
        "owners": "itsm.lead@acme.test\nservice.desk@acme.test",
    }
    resp = await client.post("/admin/apps/snow", data=form)
    assert resp.status == 200
    saved = client.server.app[keys.LIBRARY].catalog.apps["snow"]
    assert saved.name == "ServiceNow (Acme)"
    assert saved.owners == ("itsm.lead@acme.test", "service.desk@acme.test")
    assert saved.wrapped_targets == ("/nav_to.do?uri={target}",)
    page = await resp.text()
    assert "itsm.lead@acme.test\nservice.desk@acme.test</textarea>" in page

    # a bad address is refused on the form, nothing saved
    resp = await client.post(
        "/admin/apps/snow", data={**form, "etag": etag_of(page), "owners": "not-an-address"}
    )
    text = await resp.text()
    assert "is not an e-mail address" in text
    assert client.server.app[keys.LIBRARY].catalog.apps["snow"].owners == saved.owners
