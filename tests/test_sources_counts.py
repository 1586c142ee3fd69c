"""What a sync's summary counts (server/sources/sync.py): each counter says what happened to
aids, so an admin reading "1 removed" or "1 changed" can trust that an aid was archived or
rewritten. A real feed on a real HTTP server (tests/upstream.py), a real database and index;
another company's library (Ledgerly, tests/test_sources_sync.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.settings import Settings
from server.sources.models import SyncRun
from tests.test_sources_sync import (
    BULK,
    FEED_PATH,
    RSS,
    A,
    add_source,
    aids_of,
    feed,
    items_of,
    serve,
    sync,
    write_library,
)
from tests.upstream import Upstream

HOLIDAYS_LINK = b"https://ledgerly.example/releases/recurring-holidays"


@pytest.fixture
async def books(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Path
) -> TestClient:
    """Ledgerly's library; fetches to 127.0.0.1 allowed; the scheduler off."""
    settings = make_settings(
        content_dir=write_library(tmp_path / "ledgerly"), fetch_allow_private=True, jobs=False
    )
    return await aiohttp_client(create_app(settings))


def counts(run: SyncRun) -> tuple[int, int, int, int, int]:
    """added, changed, unchanged, removed, failed"""
    return (run.added, run.changed, run.unchanged, run.removed, run.failed)


async def test_an_entry_that_only_ever_failed_is_not_removed_when_it_goes(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    """Incident (helper W): a crawl listed a 404 link as failed; when the link went from the
    site the next run said "1 removed", though no aid had ever been made or archived."""
    await add_source(books, admin, upstream, publish="auto")
    too_long = b"https://ledgerly.example/releases/" + b"x" * 2100
    upstream.set(
        FEED_PATH, feed("vendor-notes-next.rss").replace(HOLIDAYS_LINK, too_long), content_type=RSS
    )
    first = await sync(books)
    assert (first.status, counts(first)) == ("partial", (2, 0, 0, 0, 1))
    # the broken entry leaves the feed (and the tax codes entry comes back)
    serve(upstream, "vendor-notes.rss")
    second = await sync(books)
    assert (second.status, counts(second)) == ("ok", (1, 1, 1, 0, 0))
    source = await (await books.get(f"{A}/sources/vendor", headers=admin)).json()
    assert source["last_summary"] == "1 added, 1 changed, 1 unchanged, 0 removed, 0 failed"
    items = await items_of(books)
    assert "ledgerly-2024-040" not in items  # it made nothing: no trace left to list
    assert {i.state for i in items.values()} == {"active"}


async def test_an_upstream_change_the_aid_does_not_show_is_not_a_change(
    books: TestClient, admin: dict[str, str], upstream: Upstream
) -> None:
    """Incident: a vendor re-tagged an entry of its feed (a new <category>); the sync counted it
    "changed", saved a new version differing only in its verification date and, the source
    being `publish: review`, took the published aid out of learners' sight for a review of the
    very same text. Categories only tag an aid when it is made."""
    await add_source(books, admin, upstream)  # publish: review
    serve(upstream, "vendor-notes.rss")
    await sync(books)
    resp = await books.get(f"{A}/aids/{BULK}", headers=admin)
    published = await books.post(
        f"{A}/aids/{BULK}/transitions",
        json={"to": "published"},
        headers={**admin, "If-Match": resp.headers["ETag"]},
    )
    assert published.status == 200, await published.text()
    before = (await aids_of(books, admin))[BULK]
    retagged = feed("vendor-notes.rss").replace(
        b"<category>invoices</category>", b"<category>invoices</category><category>ap</category>"
    )
    upstream.set(FEED_PATH, retagged, content_type=RSS)
    run = await sync(books)
    assert counts(run) == (0, 0, 3, 0, 0)
    after = (await aids_of(books, admin))[BULK]
    assert after == before  # still published, no new version
    # the next run compares with what it read now: still unchanged
    assert counts(await sync(books)) == (0, 0, 3, 0, 0)
