"""The sync engine (server/sources/sync.py) through the real app: a feed source on a real HTTP
server (tests/upstream.py) serving real RSS files, synced into a real database and index.

The library is another company's (Ledgerly's invoicing app), not the demo's. What an admin or a
learner would notice: which aids appear, change, go to review, get archived or come back; that a
304, a broken feed or a refused fetch changes nothing; what the run says.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.settings import Settings
from server.sources.models import SourceItem, SyncRun
from server.sources.service import SourceService
from tests.upstream import Upstream

A = "/api/v1/admin"
FEEDS = Path(__file__).parent / "fixtures" / "feeds"
RSS = "application/rss+xml"
FEED_PATH = "/ledgerly/releases.rss"

APP = """\
id: ledgerly
name: Ledgerly
description: Invoicing for small firms.
rules:
  - pattern: "https://app.ledgerly.example/**"
contexts:
  - id: ledgerly-invoices
    name: Invoices
    rule: "https://app.ledgerly.example/invoices/**"
    aids: [ledgerly-month-end]
"""
AID = """\
---
id: ledgerly-month-end
title: Month-end close checklist
summary: What to check before closing a month in Ledgerly.
type: checklist
apps: [ledgerly]
owner: finance-ops@ledgerly.example
status: published
verified_at: 2026-09-01
---
1. Reconcile the bank feed.
2. Send the open credit notes.
"""


def write_library(root: Path) -> Path:
    (root / "apps").mkdir(parents=True)
    (root / "aids").mkdir(parents=True)
    (root / "apps" / "ledgerly.yaml").write_text(APP, encoding="utf-8")
    (root / "aids" / "ledgerly-month-end.md").write_text(AID, encoding="utf-8")
    return root


def feed(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def serve(upstream: Upstream, name: str) -> None:
    upstream.set(FEED_PATH, feed(name), content_type=RSS)


@pytest.fixture
def ledgerly_settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return make_settings(
        content_dir=write_library(tmp_path / "ledgerly"), fetch_allow_private=True, jobs=False
    )


@pytest.fixture
async def books(aiohttp_client: Any, ledgerly_settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(ledgerly_settings))


def service(client: TestClient) -> SourceService:
    return client.server.app[keys.SOURCES]


def source_body(upstream: Upstream, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "vendor",
        "name": "Ledgerly release notes",
        "kind": "feed",
        "url": upstream.url(FEED_PATH),
        "apps": ["ledgerly"],
        "tags": ["release-notes"],
        "audience": ["finance"],
        "owner": "finance-ops@ledgerly.example",
        "aid_type": "faq",
    }
    body.update(changes)
    return body


async def add_source(
    client: TestClient, admin: dict[str, str], upstream: Upstream, **changes: Any
) -> dict[str, Any]:
    resp = await client.post(f"{A}/sources", json=source_body(upstream, **changes), headers=admin)
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def sync(client: TestClient, source_id: str = "vendor") -> SyncRun:
    return await service(client).sync(source_id)


async def aids_of(client: TestClient, admin: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every aid as the admin API serves it, by id."""
    out: dict[str, dict[str, Any]] = {}
    cursor = ""
    while True:
        url = f"{A}/aids?limit=200" + (f"&cursor={cursor}" if cursor else "")
        resp = await client.get(url, headers=admin)
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        for aid in page["aids"]:
            one = await client.get(f"{A}/aids/{aid['id']}", headers=admin)
            out[aid["id"]] = await one.json()
        cursor = page.get("next_cursor") or ""
        if not cursor:
            return out


async def items_of(client: TestClient, source_id: str = "vendor") -> dict[str, SourceItem]:
    return {i.external_id: i for i in await service(client).items(source_id)}


BULK = "vendor-approve-invoices-in-bulk"
CREDIT = "vendor-credit-notes-show-their-original-invoice"
TAX = "vendor-new-tax-codes-for-2024"
HOLIDAYS = "vendor-recurring-invoices-pause-on-holidays"


async def test_first_sync_adds_an_aid_per_entry_for_review(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    serve(upstream, "vendor-notes.rss")
    await add_source(books, admin, upstream)
    run = await sync(books)
    assert (run.status, run.added, run.changed, run.unchanged, run.removed, run.failed) == (
        "ok",
        3,
        0,
        0,
        0,
        0,
    )
    aids = await aids_of(books, admin)
    assert {BULK, CREDIT, TAX} <= set(aids)
    bulk = aids[BULK]
    assert bulk["title"] == "Approve invoices in bulk"
    assert bulk["status"] == "review"  # publish: review (the default)
    assert bulk["origin"] == "vendor"
    assert bulk["source"] == "https://ledgerly.example/releases/bulk-approval"
    assert bulk["type"] == "faq"  # the source's aid type
    assert bulk["apps"] == ["ledgerly"] and bulk["audience"] == ["finance"]
    assert bulk["tags"] == ["release-notes", "invoices"]  # the source's, then the entry's
    assert bulk["owner"] == "finance-ops@ledgerly.example"
    assert bulk["verified_at"]
    assert "**50 invoices**" in bulk["body"]
    # the source says how it went
    source = await (await books.get(f"{A}/sources/vendor", headers=admin)).json()
    assert source["last_status"] == "ok"
    assert source["last_summary"] == "3 added, 0 changed, 0 unchanged, 0 removed, 0 failed"
    assert source["running"] is False and source["progress"] is None
    # provenance of each aid
    items = await items_of(books)
    assert items["ledgerly-2024-031"].aid_id == BULK
    assert items["ledgerly-2024-031"].url == "https://ledgerly.example/releases/bulk-approval"
    assert len(items["ledgerly-2024-031"].content_hash) == 64
    assert {i.state for i in items.values()} == {"active"}
    # each new aid has a first version saved by the source, and an audit entry
    versions = await (await books.get(f"{A}/aids/{BULK}/versions", headers=admin)).json()
    assert [v["saved_by"] for v in versions["versions"]] == ["source:vendor"]
    audit = await (
        await books.get(f"{A}/audit?target_type=aid&target_id={BULK}", headers=admin)
    ).json()
    assert [e["action"] for e in audit["entries"]] == ["aid.create"]


async def test_changes_upstream_show_up_at_the_next_sync(
    books: TestClient, admin: dict[str, str], manager: dict[str, str], upstream: Upstream
) -> None:
    serve(upstream, "vendor-notes.rss")
    await add_source(books, admin, upstream, publish="auto")
    await sync(books)
    before = await aids_of(books, admin)
    assert before[BULK]["status"] == "published"
    # upstream: one entry added, one changed, one gone
    serve(upstream, "vendor-notes-next.rss")
    run = await sync(books)
    assert (run.added, run.changed, run.unchanged, run.removed, run.failed) == (1, 1, 1, 1, 0)
    after = await aids_of(books, admin)
    assert after[HOLIDAYS]["status"] == "published"
    assert "**100 invoices**" in after[BULK]["body"]
    assert after[BULK]["version"] == before[BULK]["version"] + 1
    assert after[CREDIT] == before[CREDIT]  # unchanged: not even a new version
    assert after[TAX]["status"] == "archived"  # gone upstream: archived, never deleted
    assert (await items_of(books))["ledgerly-2024-019"].state == "removed"
    # the index has the new text: a learner of the source's audience (finance) finds it
    resp = await books.get("/api/v1/search?q=holiday+recurring", headers=manager)
    found = [r["id"] for r in (await resp.json())["results"]]
    assert HOLIDAYS in found
    resp = await books.get("/api/v1/search?q=tax+codes+R7", headers=manager)
    assert TAX not in [r["id"] for r in (await resp.json())["results"]]


async def test_review_mode_puts_a_changed_published_aid_back_to_review(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    serve(upstream, "vendor-notes.rss")
    await add_source(books, admin, upstream)  # publish: review
    await sync(books)
    resp = await books.get(f"{A}/aids/{BULK}", headers=admin)
    etag = resp.headers["ETag"]
    published = await books.post(
        f"{A}/aids/{BULK}/transitions",
        json={"to": "published"},
        headers={**admin, "If-Match": etag},
    )
    assert published.status == 200, await published.text()
    serve(upstream, "vendor-notes-next.rss")
    await sync(books)
    aids = await aids_of(books, admin)
    assert aids[BULK]["status"] == "review"  # changed upstream: a reviewer looks again
    assert aids[HOLIDAYS]["status"] == "review"
    assert aids[CREDIT]["status"] == "review"  # unchanged: stays as it was


async def test_a_304_changes_nothing(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    serve(upstream, "vendor-notes.rss")
    await add_source(books, admin, upstream)
    await sync(books)
    before, items_before = await aids_of(books, admin), await items_of(books)
    run = await sync(books)
    assert (run.status, run.added, run.changed, run.unchanged, run.removed) == ("ok", 0, 0, 3, 0)
    assert upstream.requests[-1].headers.get("If-None-Match")  # asked conditionally: 304
    assert await aids_of(books, admin) == before
    assert await items_of(books) == items_before


@pytest.mark.parametrize("broken", ["not-a-feed", "missing", "refused"])
async def test_a_failed_sync_changes_nothing(
    broken: str,
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    admin: dict[str, str],
    upstream: Upstream,
) -> None:
    """A sign-in page where the feed was, a 404, or a fetch the safe fetcher refuses: the run
    fails with the reason, and every aid and item is exactly as it was (nothing archived)."""
    settings = make_settings(
        content_dir=write_library(tmp_path / "ledgerly"), fetch_allow_private=True, jobs=False
    )
    books = await aiohttp_client(create_app(settings))
    serve(upstream, "vendor-notes.rss")
    await add_source(books, admin, upstream)
    await sync(books)
    before, items_before = await aids_of(books, admin), await items_of(books)
    if broken == "not-a-feed":
        upstream.set(FEED_PATH, feed("not-a-feed.html"), content_type="text/html")
    elif broken == "missing":
        upstream.remove(FEED_PATH)
    else:  # the host is no longer allowed
        current = await (await books.get(f"{A}/sources/vendor", headers=admin)).json()
        current["allowed_hosts"] = ["feeds.ledgerly.example"]
        resp = await books.put(f"{A}/sources/vendor", json=current, headers=admin)
        assert resp.status == 200, await resp.text()
    run = await sync(books)
    assert run.status == "failed"
    reason = {"not-a-feed": "not a feed", "missing": "HTTP 404", "refused": "refused"}[broken]
    assert reason in run.error
    assert await aids_of(books, admin) == before
    assert await items_of(books) == items_before
    source = await (await books.get(f"{A}/sources/vendor", headers=admin)).json()
    assert source["last_status"] == "failed"
    assert source["last_summary"].startswith("failed: ")


async def test_a_private_address_is_refused_unless_allowed(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    admin: dict[str, str],
    upstream: Upstream,
) -> None:
    settings = make_settings(content_dir=write_library(tmp_path / "ledgerly"), jobs=False)
    books = await aiohttp_client(create_app(settings))
    serve(upstream, "vendor-notes.rss")
    await add_source(books, admin, upstream)
    run = await sync(books)
    assert run.status == "failed" and "refused" in run.error
    assert upstream.hits[FEED_PATH] == 0
    assert not [a for a in (await aids_of(books, admin)).values() if a["origin"]]


async def test_keep_leaves_a_removed_item_s_aid_as_it_is(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    serve(upstream, "vendor-notes.rss")
    await add_source(books, admin, upstream, publish="auto", on_remove="keep")
    await sync(books)
    serve(upstream, "vendor-notes-next.rss")
    run = await sync(books)
    assert run.removed == 1
    aids = await aids_of(books, admin)
    assert aids[TAX]["status"] == "published"
    assert (await items_of(books))["ledgerly-2024-019"].state == "removed"


async def test_an_item_that_reappears_comes_back(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    serve(upstream, "vendor-notes.rss")
    await add_source(books, admin, upstream, publish="auto")
    await sync(books)
    serve(upstream, "vendor-notes-next.rss")
    await sync(books)
    assert (await aids_of(books, admin))[TAX]["status"] == "archived"
    serve(upstream, "vendor-notes.rss")
    run = await sync(books)
    assert run.added == 1 and run.removed == 1  # the tax codes back, the holidays entry gone
    aids = await aids_of(books, admin)
    assert aids[TAX]["status"] == "published"
    assert aids[HOLIDAYS]["status"] == "archived"
    assert "**50 invoices**" in aids[BULK]["body"]
    items = await items_of(books)
    assert items["ledgerly-2024-019"].state == "active"
    assert items["ledgerly-2024-019"].aid_id == TAX  # the same aid, not a new one


async def test_a_truncated_feed_archives_nothing(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    serve(upstream, "vendor-notes.rss")
    await add_source(books, admin, upstream, publish="auto")
    await sync(books)
    serve(upstream, "truncated.rss")
    run = await sync(books)
    assert run.status == "ok" and run.added == 1 and run.removed == 0
    aids = await aids_of(books, admin)
    assert {aids[a]["status"] for a in (BULK, CREDIT, TAX, HOLIDAYS)} == {"published"}


async def test_titles_that_make_the_same_id_get_a_suffix(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    """Two entries with one title (a vendor re-posting "Maintenance window") must not
    overwrite each other's aid: the second id gets a short hash of its entry id."""
    rss = feed("vendor-notes.rss").replace(
        b"<title>New tax codes for 2024</title>", b"<title>Approve invoices in bulk</title>"
    )
    upstream.set(FEED_PATH, rss, content_type=RSS)
    await add_source(books, admin, upstream)
    run = await sync(books)
    assert run.added == 3
    items = await items_of(books)
    first, second = items["ledgerly-2024-031"].aid_id, items["ledgerly-2024-019"].aid_id
    assert first == BULK
    assert second.startswith(BULK + "-") and len(second) <= 64
    # and they keep their ids at the next sync
    upstream.set(FEED_PATH, rss.replace(b"R7", b"R8"), content_type=RSS)
    run = await sync(books)
    assert run.changed == 1
    assert (await items_of(books))["ledgerly-2024-019"].aid_id == second


async def test_a_run_a_stopped_server_left_running_is_failed_at_the_next_start(
    aiohttp_client: Any,
    ledgerly_settings: Settings,
    admin: dict[str, str],
    upstream: Upstream,
) -> None:
    """A server stopped during a sync left the run and the source 'running' for good: the
    console showed a sync in progress forever. The next start marks them failed."""
    first = await aiohttp_client(create_app(ledgerly_settings))
    serve(upstream, "vendor-notes.rss")
    created = await add_source(first, admin, upstream)
    svc = service(first)
    await svc._begin("vendor", "manual", None)  # a run begun, then the server goes away
    await first.close()
    again = await aiohttp_client(create_app(ledgerly_settings))
    source = await (await again.get(f"{A}/sources/vendor", headers=admin)).json()
    assert source["last_status"] == "failed" and source["running"] is False
    runs = await service(again).runs("vendor")
    assert [(r.status, r.error) for r in runs] == [("failed", "the node running it stopped")]
    # a sync works again, and only people's edits move the source's updated_at
    run = await service(again).sync("vendor")
    assert run.status == "ok" and run.added == 3
    source = await (await again.get(f"{A}/sources/vendor", headers=admin)).json()
    assert source["updated_at"] == created["updated_at"]
    assert source["last_sync_at"] >= created["updated_at"]


async def test_an_item_that_cannot_be_an_aid_fails_alone(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    """One entry whose link is too long for an aid's `source` (2000 characters): that entry
    fails with the reason, its old aid stays as it was, the others still sync (partial)."""
    serve(upstream, "vendor-notes.rss")
    await add_source(books, admin, upstream, publish="auto")
    await sync(books)
    before = await aids_of(books, admin)
    long_link = "https://ledgerly.example/releases/" + "x" * 2100
    rss = (
        feed("vendor-notes-next.rss")
        .replace(b"https://ledgerly.example/releases/bulk-approval", long_link.encode())
        .replace(b"https://ledgerly.example/releases/recurring-holidays", long_link.encode() + b"y")
    )
    upstream.set(FEED_PATH, rss, content_type=RSS)
    run = await sync(books)
    assert run.status == "partial"
    assert (run.added, run.changed, run.unchanged, run.removed, run.failed) == (0, 0, 1, 1, 2)
    resp = await books.get(f"{A}/sources/vendor/runs/{run.id}", headers=admin)
    failures = (await resp.json())["failures"]
    assert {f["item"] for f in failures} == {"ledgerly-2024-031", "ledgerly-2024-040"}
    assert all("source" in f["reason"] for f in failures)
    after = await aids_of(books, admin)
    assert after[BULK] == before[BULK]  # the old text stays until the source is fixed
    assert HOLIDAYS not in after
    items = await items_of(books)
    assert items["ledgerly-2024-031"].state == "failed" and items["ledgerly-2024-031"].error
    source = await (await books.get(f"{A}/sources/vendor", headers=admin)).json()
    assert source["last_status"] == "partial"
    assert source["last_summary"] == "0 added, 0 changed, 1 unchanged, 1 removed, 2 failed"
