"""The sources admin API (server/sources/api.py) and the learner's provenance of an aid, through
the real app with forged tokens and a real upstream server (tests/upstream.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.settings import Settings
from tests.test_sources_sync import (
    BULK,
    add_source,
    serve,
    service,
    source_body,
    sync,
    write_library,
)
from tests.upstream import Upstream

A = "/api/v1/admin"
PROBLEM = "application/problem+json"


@pytest.fixture
async def books(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Path
) -> TestClient:
    """Ledgerly's library (tests/test_sources_sync.py); fetches to 127.0.0.1 allowed; the
    scheduler off (a test runs a source's job itself)."""
    settings = make_settings(
        content_dir=write_library(tmp_path / "ledgerly"), fetch_allow_private=True, jobs=False
    )
    return await aiohttp_client(create_app(settings))


async def test_sources_round_trip(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    created = await add_source(books, admin, upstream)
    assert created["id"] == "vendor" and created["kind"] == "feed"
    assert created["last_status"] == "never" and created["running"] is False
    assert created["publish"] == "review" and created["on_remove"] == "archive"
    listed = await (await books.get(f"{A}/sources", headers=admin)).json()
    assert [s["id"] for s in listed["sources"]] == ["vendor"]
    # what GET answers can be sent back with PUT (read-only fields as they were)
    current = await (await books.get(f"{A}/sources/vendor", headers=admin)).json()
    current["name"] = "Ledgerly: what's new"
    current["interval_minutes"] = 60
    resp = await books.put(f"{A}/sources/vendor", json=current, headers=admin)
    assert resp.status == 200, await resp.text()
    changed = await resp.json()
    assert changed["name"] == "Ledgerly: what's new" and changed["interval_minutes"] == 60
    assert changed["created_at"] == created["created_at"]
    # its schedule follows (server/jobs.py)
    state = books.server.app[keys.JOBS].state("source:vendor")
    assert state["registered"] and state["every_seconds"] == 3600
    # a read-only field changed is a 422 naming it
    current["last_status"] = "ok"
    resp = await books.put(f"{A}/sources/vendor", json=current, headers=admin)
    assert resp.status == 422 and resp.content_type == PROBLEM
    assert "last_status" in str(await resp.json())
    # audited
    audit = await (
        await books.get(f"{A}/audit?target_type=source&target_id=vendor", headers=admin)
    ).json()
    assert [e["action"] for e in audit["entries"]] == ["source.update", "source.create"]


async def test_bad_source_input_is_a_422_problem_with_field_paths(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "wiki"}, "kind"),
        ({"url": "ftp://ledgerly.example/feed"}, "url"),
        ({"mode": "crawl"}, "mode"),  # a website's field on a feed
        ({"interval_minutes": 1}, "interval_minutes"),
        ({"allowed_hosts": ["not a host"]}, "allowed_hosts"),
        ({"apps": ["no-such-app"]}, "apps"),
        ({"publish": "sometimes"}, "publish"),
        ({"last_status": "ok"}, "last_status"),  # read-only
    ]
    for change, field in cases:
        resp = await books.post(f"{A}/sources", json=source_body(upstream, **change), headers=admin)
        assert resp.status == 422, (change, await resp.text())
        assert resp.content_type == PROBLEM
        problem = await resp.json()
        fields = [e["field"].split("[")[0].split(".")[0] for e in problem.get("errors", [])]
        assert field in fields or field in problem.get("fields", []), (change, problem)
    resp = await books.post(f"{A}/sources", json=["not", "an", "object"], headers=admin)
    assert resp.status == 422 and resp.content_type == PROBLEM


async def test_unknown_duplicate_and_forbidden(
    books: TestClient,
    admin: dict[str, str],
    learner: dict[str, str],
    upstream: Upstream,
) -> None:
    for url in ("/sources/nope", "/sources/nope/runs", "/sources/nope/items"):
        resp = await books.get(A + url, headers=admin)
        assert resp.status == 404 and resp.content_type == PROBLEM
    resp = await books.post(f"{A}/sources/nope/sync", headers=admin)
    assert resp.status == 404 and resp.content_type == PROBLEM
    await add_source(books, admin, upstream)
    resp = await books.post(f"{A}/sources", json=source_body(upstream), headers=admin)
    assert resp.status == 409 and resp.content_type == PROBLEM
    resp = await books.get(f"{A}/sources/vendor/runs/nope", headers=admin)
    assert resp.status == 404 and resp.content_type == PROBLEM
    for method, url in (
        ("GET", "/sources"),
        ("POST", "/sources"),
        ("POST", "/sources/vendor/sync"),
        ("DELETE", "/sources/vendor"),
    ):
        resp = await books.request(method, A + url, json={}, headers=learner)
        assert resp.status == 403 and resp.content_type == PROBLEM


async def test_sync_answers_202_then_runs_and_items_tell_what_it_did(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    serve(upstream, "vendor-notes.rss")
    await add_source(books, admin, upstream)
    resp = await books.post(f"{A}/sources/vendor/sync", headers=admin)
    assert resp.status == 202, await resp.text()
    run = (await resp.json())["run"]
    assert run["status"] == "running" and run["trigger"] == "manual"
    assert run["started_by"]
    await service(books).wait("vendor")
    runs = await (await books.get(f"{A}/sources/vendor/runs", headers=admin)).json()
    assert [r["id"] for r in runs["runs"]] == [run["id"]]
    done = await (await books.get(f"{A}/sources/vendor/runs/{run['id']}", headers=admin)).json()
    assert done["status"] == "ok" and done["added"] == 3 and done["failures"] == []
    assert done["finished_at"]
    items = await (await books.get(f"{A}/sources/vendor/items", headers=admin)).json()
    by_id = {i["external_id"]: i for i in items["items"]}
    assert by_id["ledgerly-2024-031"]["aid_id"] == BULK
    assert by_id["ledgerly-2024-031"]["state"] == "active"


async def test_a_second_sync_while_one_runs_is_a_409(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    """Two syncs of one source at once would both add the same entries: the second is refused.
    The first one waits on a slow upstream (/slow) while the second is asked for."""
    await add_source(books, admin, upstream, url=upstream.url("/slow?seconds=30"))
    first = await books.post(f"{A}/sources/vendor/sync", headers=admin)
    assert first.status == 202
    second = await books.post(f"{A}/sources/vendor/sync", headers=admin)
    assert second.status == 409 and second.content_type == PROBLEM
    source = await (await books.get(f"{A}/sources/vendor", headers=admin)).json()
    assert source["running"] is True and source["last_status"] == "running"
    assert source["progress"]["run_id"] == (await first.json())["run"]["id"]
    # what GET answered while it runs (progress and all) can be sent back: a rename goes through
    source["name"] = "Ledgerly (slow mirror)"
    resp = await books.put(f"{A}/sources/vendor", json=source, headers=admin)
    assert resp.status == 200, await resp.text()
    # deleting it meanwhile is refused
    resp = await books.delete(f"{A}/sources/vendor?archive=1", headers=admin)
    assert resp.status == 409


async def test_delete_needs_archive_while_aids_are_live(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    serve(upstream, "vendor-notes.rss")
    await add_source(books, admin, upstream, publish="auto")
    await sync(books)
    resp = await books.delete(f"{A}/sources/vendor", headers=admin)
    assert resp.status == 409 and resp.content_type == PROBLEM
    resp = await books.delete(f"{A}/sources/vendor?archive=1", headers=admin)
    assert resp.status == 204
    assert (await books.get(f"{A}/sources/vendor", headers=admin)).status == 404
    aid = await (await books.get(f"{A}/aids/{BULK}", headers=admin)).json()
    assert aid["status"] == "archived"  # kept, archived, and Inflow's own from now on
    assert aid["origin"] == ""
    assert "source:vendor" not in books.server.app[keys.JOBS].names()


async def test_learner_aid_json_says_where_it_comes_from(
    books: TestClient,
    admin: dict[str, str],
    manager: dict[str, str],
    upstream: Upstream,
) -> None:
    serve(upstream, "vendor-notes.rss")
    await add_source(books, admin, upstream, publish="auto")
    await sync(books)
    resp = await books.get(f"/api/v1/aids/{BULK}", headers=manager)
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    provenance = data["provenance"]
    assert provenance["source_id"] == "vendor"
    assert provenance["source_name"] == "Ledgerly release notes"
    assert provenance["kind"] == "feed"
    assert provenance["url"] == "https://ledgerly.example/releases/bulk-approval"
    assert provenance["updated_at"]
    # written in Inflow: null
    own = await (await books.get("/api/v1/aids/ledgerly-month-end", headers=manager)).json()
    assert own["provenance"] is None
    # a renamed source shows at once (and the ETag moves on)
    etag = resp.headers["ETag"]
    current = await (await books.get(f"{A}/sources/vendor", headers=admin)).json()
    current["name"] = "Ledgerly changelog"
    assert (await books.put(f"{A}/sources/vendor", json=current, headers=admin)).status == 200
    again = await books.get(f"/api/v1/aids/{BULK}", headers={**manager, "If-None-Match": etag})
    assert again.status == 200
    assert (await again.json())["provenance"]["source_name"] == "Ledgerly changelog"


async def test_openapi_describes_the_sources_routes(books: TestClient) -> None:
    doc = await (await books.get("/api/v1/openapi.json")).json()
    paths = doc["paths"]
    for path in (
        f"{A}/sources",
        f"{A}/sources/{{source_id}}",
        f"{A}/sources/{{source_id}}/sync",
        f"{A}/sources/{{source_id}}/runs",
        f"{A}/sources/{{source_id}}/runs/{{run_id}}",
        f"{A}/sources/{{source_id}}/items",
    ):
        assert path in paths, path
    assert paths[f"{A}/sources/{{source_id}}/sync"]["post"]["x-operation"] == "source.sync"
    learner_aid = doc["components"]["schemas"]["LearnerAid"]
    assert "provenance" in learner_aid["required"]


async def test_a_scheduled_run_is_the_source_s_job(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    serve(upstream, "vendor-notes.rss")
    await add_source(books, admin, upstream, publish="auto")
    jobs = books.server.app[keys.JOBS]
    assert await jobs.run_now("source:vendor")
    await jobs.wait("source:vendor")
    runs = await (await books.get(f"{A}/sources/vendor/runs", headers=admin)).json()
    assert [(r["trigger"], r["status"], r["added"]) for r in runs["runs"]] == [
        ("schedule", "ok", 3)
    ]
    # an inactive source has no job
    current = await (await books.get(f"{A}/sources/vendor", headers=admin)).json()
    current["active"] = False
    assert (await books.put(f"{A}/sources/vendor", json=current, headers=admin)).status == 200
    assert "source:vendor" not in jobs.names()
