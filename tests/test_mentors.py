"""Vetted peer mentors: the content format, the admin API and console, and what learners see.

Learners may only ever see a mentor who is vetted, active, mapped to the page's app and meant for
them (audience); everything else here serves that rule.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from index.service import IndexService
from server import keys
from server.content import load_dir
from server.errors import ContentError
from server.library import Library
from server.storage import Storage
from tests.conftest import DEMO
from tests.test_admin_console import sign_in
from tests.tokens import TokenMaker

A = "/api/v1/admin"
CRM_DEAL = "http://127.0.0.1:8080/demo/crm/opportunities/1042"
CRM_REPORTS = "http://127.0.0.1:8080/demo/crm/reports/"
APPROVALS = "http://127.0.0.1:8080/demo/expenses/#/approvals"


def h(headers: dict[str, str], etag: str | None = None) -> dict[str, str]:
    return {**headers, "If-Match": etag} if etag else dict(headers)


async def mentors_on(client: TestClient, who: dict[str, str], url: str, **page: Any) -> list[str]:
    resp = await client.post("/api/v1/suggest", json={"url": url, **page}, headers=who)
    assert resp.status == 200, await resp.text()
    return [m["id"] for m in (await resp.json())["mentors"]]


# -- the content format ------------------------------------------------------------------------


async def test_mentor_files_import_export_and_reimport(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "db.sqlite3")
    await storage.open()
    index = IndexService(tmp_path / "index", search_threads=1)
    await index.open()
    try:
        library = Library(storage, index)
        await library.reconcile()
        first = await library.import_dir(DEMO)
        assert len(first["mentors_created"]) == 6
        assert {m.id for m in library.catalog.app_mentors["crm"]} == {"maria-lopez", "dev-patel"}
        out = tmp_path / "export"
        await library.export_dir(out)
        assert (out / "mentors" / "tom-becker.yaml").is_file()
        exported = {m.id: m.content_fields() for m in load_dir(out).mentors}
        assert exported == {m.id: m.content_fields() for m in load_dir(DEMO).mentors}
        again = await library.import_dir(out)
        assert len(again["mentors_unchanged"]) == 6 and not again["mentors_updated"]
        assert again["content_version"] == first["content_version"]
        assert (await library.check())["ok"]
    finally:
        await index.close()
        await storage.close()


def test_mentor_file_errors_name_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "content"
    (root / "mentors").mkdir(parents=True)
    (root / "mentors" / "bad.yaml").write_text(
        "id: bad\n"
        "name: Bad Mentor\n"
        "contact: javascript:alert(1)\n"
        "apps: [crm, ghost-app]\n"
        "vetted: true\n"
        "colour: red\n"
    )
    (root / "mentors" / "other.yaml").write_text(
        "id: someone-else\nname: X\ncontact: '@x'\nvetted: false\nvetted_by: me\n"
    )
    (root / "mentors" / "broken.yaml").write_text("id: broken\nname: [oops\n")
    with pytest.raises(ContentError) as info:
        load_dir(root, known_apps={"crm"})
    errors = info.value.errors
    expected = [
        ("mentors/bad.yaml", 3, "contact: 'javascript:alert(1)' is neither an email address"),
        ("mentors/bad.yaml", 5, "vetted: a vetted mentor needs 'vetted_by'"),
        ("mentors/bad.yaml", 6, "colour: unknown field(s): colour"),
        ("mentors/other.yaml", 5, "vetted_by: only a vetted mentor"),
        ("mentors/broken.yaml", 3, "YAML syntax error"),
    ]
    for file, line, start in expected:
        assert any((f, n) == (file, line) and m.startswith(start) for f, n, m in errors), (
            file,
            line,
            start,
            errors,
        )
    # Valid but pointing at an app that does not exist; the id must match the file name.
    (root / "mentors" / "bad.yaml").write_text(
        "id: bad\nname: Bad\ncontact: bad@example.com\napps:\n  - crm\n  - ghost-app\n"
    )
    (root / "mentors" / "broken.yaml").unlink()
    (root / "mentors" / "other.yaml").write_text("id: someone-else\nname: X\ncontact: '@x'\n")
    with pytest.raises(ContentError) as info:
        load_dir(root, known_apps={"crm"})
    assert ("mentors/bad.yaml", 6, "apps: unknown app 'ghost-app'") in info.value.errors
    assert any(
        f == "mentors/other.yaml" and n == 1 and "file name" in m for f, n, m in info.value.errors
    )


# -- the admin API -----------------------------------------------------------------------------


async def test_admin_crud_concurrency_vetting_and_audit(
    client: TestClient, tokens: TokenMaker, admin: dict[str, str], learner: dict[str, str]
) -> None:
    author = tokens.auth(sub="author-1", roles=("learner", "author"))
    new = {
        "id": "jo-kim",
        "name": "Jo Kim",
        "contact": "jo.kim@example.com",
        "can_help_with": "Time off in the middle of a project.",
        "apps": ["hr"],
        "topics": ["Time-Off", "pto"],
    }
    for who in (learner, author):
        assert (await client.post(f"{A}/mentors", json=new, headers=who)).status == 403
    assert (await client.get(f"{A}/mentors", headers=learner)).status == 403
    assert (await client.get(f"{A}/mentors", headers=author)).status == 200
    resp = await client.post(f"{A}/mentors", json=new, headers=admin)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["vetted"] is False and created["vetted_by"] == "" and created["active"]
    assert created["topics"] == ["time-off", "pto"]
    assert (await client.post(f"{A}/mentors", json=new, headers=admin)).status == 409
    for bad in ({"contact": "https://evil.example"}, {"apps": ["ghost"]}, {"id": "Bad Id"}):
        resp = await client.post(f"{A}/mentors", json={**new, "id": "x", **bad}, headers=admin)
        assert resp.status == 422, bad
    resp = await client.post(
        f"{A}/mentors", json={**new, "id": "y", "vetted_by": "me"}, headers=admin
    )
    assert resp.status == 422  # set by the server, never by a client

    url = f"{A}/mentors/jo-kim"
    resp = await client.get(url, headers=author)
    etag = resp.headers["ETag"]
    assert (await client.patch(url, json={"vetted": True}, headers=admin)).status == 428
    resp = await client.patch(url, json={"vetted": True}, headers=h(author, etag))
    assert resp.status == 403
    resp = await client.patch(url, json={"vetted": True}, headers=h(admin, etag))
    assert resp.status == 200, await resp.text()
    vetted = await resp.json()
    assert vetted["vetted_by"] == "admin-1"
    assert vetted["vetted_at"] == dt.date.today().isoformat()
    resp = await client.patch(url, json={"active": False}, headers=h(admin, etag))
    assert resp.status == 412
    assert (await resp.json())["current_etag"] != etag
    etag = (await client.get(url, headers=admin)).headers["ETag"]
    # PUT replaces; the vetting stays unless the body names it.
    resp = await client.put(
        url, json={"name": "Jo Kim", "contact": "@jo.kim", "apps": ["hr"]}, headers=h(admin, etag)
    )
    assert resp.status == 200, await resp.text()
    replaced = await resp.json()
    assert replaced["topics"] == [] and replaced["vetted"] and replaced["vetted_by"] == "admin-1"
    resp = await client.patch(url, json={"vetted": False}, headers=h(admin, resp.headers["ETag"]))
    assert (await resp.json())["vetted_by"] == "" and (await resp.json())["vetted_at"] is None
    resp = await client.delete(url, headers=h(admin, resp.headers["ETag"]))
    assert resp.status == 200
    assert (await client.get(url, headers=admin)).status == 404

    resp = await client.get(f"{A}/audit?target_type=mentor&target_id=jo-kim", headers=admin)
    actions = [e["action"] for e in (await resp.json())["entries"]]
    assert actions == [
        "mentor.delete",
        "mentor.unvetted",
        "mentor.update",
        "mentor.vetted",
        "mentor.create",
    ]
    resp = await client.get(f"{A}/mentors?app=crm&vetted=true", headers=author)
    assert [m["id"] for m in (await resp.json())["mentors"]] == ["dev-patel", "maria-lopez"]
    # Mentor-only writes still move the index's recorded content version: no rebuild at start.
    assert (await client.server.app[keys.LIBRARY].check())["ok"]


# -- what learners see -------------------------------------------------------------------------


async def test_only_vetted_active_mentors_meant_for_the_caller_reach_suggest(
    client: TestClient,
    admin: dict[str, str],
    learner: dict[str, str],
    manager: dict[str, str],
) -> None:
    # A deal page: the deal-desk mentor fits the page's pinned aids best; unvetted Sam is hidden.
    resp = await client.post(
        "/api/v1/suggest", json={"url": CRM_DEAL, "title": "Opportunity #1042"}, headers=learner
    )
    data = await resp.json()
    assert [m["id"] for m in data["mentors"]] == ["dev-patel", "maria-lopez"]
    assert set(data["mentors"][0]) == {"id", "name", "contact", "can_help_with", "reason"}
    assert data["mentors"][0]["reason"].startswith("Knows about discount")
    # Audience: the managers-only mentor reaches managers, not everyone.
    assert "tom-becker" not in await mentors_on(client, learner, APPROVALS)
    assert (await mentors_on(client, manager, APPROVALS))[0] == "tom-becker"
    assert await mentors_on(client, learner, "https://example.com/unmapped") == []

    # Vetting Sam makes him appear at once (the cached answer for this page is not reused),
    # first on the reports page his topics fit; a fourth CRM mentor shows the limit of three.
    cache = client.server.app[keys.RESULT_CACHE]
    assert "sam-okafor" not in await mentors_on(client, learner, CRM_REPORTS)
    hits = cache.hits
    assert "sam-okafor" not in await mentors_on(client, learner, CRM_REPORTS)
    assert cache.hits == hits + 1
    etag = (await client.get(f"{A}/mentors/sam-okafor", headers=admin)).headers["ETag"]
    resp = await client.patch(
        f"{A}/mentors/sam-okafor", json={"vetted": True}, headers=h(admin, etag)
    )
    assert resp.status == 200
    assert (await mentors_on(client, learner, CRM_REPORTS))[0] == "sam-okafor"
    extra = {"name": "Zed", "contact": "@zed", "apps": ["crm"], "vetted": True}
    resp = await client.post(f"{A}/mentors", json={"id": "zed", **extra}, headers=admin)
    assert resp.status == 201
    assert len(await mentors_on(client, learner, CRM_REPORTS)) == 3

    # Inactive or restricted mentors disappear for learners; a mentor never sees themselves.
    etag = (await client.get(f"{A}/mentors/dev-patel", headers=admin)).headers["ETag"]
    resp = await client.patch(
        f"{A}/mentors/dev-patel", json={"active": False}, headers=h(admin, etag)
    )
    assert resp.status == 200
    etag = (await client.get(f"{A}/mentors/maria-lopez", headers=admin)).headers["ETag"]
    resp = await client.patch(
        f"{A}/mentors/maria-lopez", json={"audience": ["finance"]}, headers=h(admin, etag)
    )
    assert resp.status == 200
    etag = (await client.get(f"{A}/mentors/zed", headers=admin)).headers["ETag"]
    resp = await client.patch(
        f"{A}/mentors/zed", json={"subject": "learner-1"}, headers=h(admin, etag)
    )
    assert resp.status == 200
    assert await mentors_on(client, learner, CRM_DEAL) == ["sam-okafor"]
    assert "maria-lopez" in await mentors_on(client, manager, CRM_DEAL)
    assert "zed" in await mentors_on(client, manager, CRM_DEAL)


# -- the console -------------------------------------------------------------------------------


async def test_console_escapes_names_and_vets_with_csrf(
    client: TestClient, tokens: TokenMaker, learner: dict[str, str]
) -> None:
    csrf = await sign_in(
        client, tokens.token(sub="admin-1", roles=("learner", "author", "admin", "reviewer"))
    )
    evil = "<script>alert('mentor')</script>"
    form = {
        "id": "evil-mentor",
        "name": evil,
        "contact": "evil@example.com",
        "can_help_with": "<img src=x onerror=alert(1)>",
        "apps": "hr",
        "topics": "benefits",
        "active": "1",
    }
    resp = await client.post("/admin/mentors/new", data=form, allow_redirects=False)
    assert resp.status == 403  # no CSRF token
    resp = await client.post(
        "/admin/mentors/new", data={**form, "csrf_token": csrf}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/admin/mentors/evil-mentor?notice=created"
    for path in ("/admin/mentors", "/admin/mentors/evil-mentor"):
        html = await (await client.get(path)).text()
        assert "&lt;script&gt;alert(&#39;mentor&#39;)&lt;/script&gt;" in html, path
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert 'href="/admin/mentors" aria-current="page"' in html
    assert "evil-mentor" not in await mentors_on(client, learner, "http://127.0.0.1/demo/hr/")

    page = await (await client.get("/admin/mentors")).text()
    match = re.search(
        r'action="/admin/mentors/evil-mentor/vetting".*?name="etag" value="([^"]+)"', page, re.S
    )
    assert match
    etag = match.group(1).replace("&#34;", '"')
    vet = {"csrf_token": csrf, "etag": etag, "vetted": "1", "back": "list"}
    resp = await client.post("/admin/mentors/evil-mentor/vetting", data=vet, allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/admin/mentors?notice=vetted"
    resp = await client.post(
        "/api/v1/suggest", json={"url": "http://127.0.0.1/demo/hr/"}, headers=learner
    )
    shown = {m["id"]: m for m in (await resp.json())["mentors"]}
    assert shown["evil-mentor"]["name"] == evil  # JSON carries text; the panel must not parse it
    resp = await client.post("/admin/mentors/evil-mentor/vetting", data=vet, allow_redirects=False)
    assert resp.status == 412  # the page's ETag is stale now
