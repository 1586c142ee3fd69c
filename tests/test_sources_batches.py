"""A big sync writes in batches (server/sources/sync.py, WRITE_BATCH entries per transaction), so
other writes (a learner's feedback, an author's save) are not held up for the whole sync, and a
batch that fails keeps what the batches before it wrote, which the next run completes.

A real feed on a real HTTP server (tests/upstream.py), the real app, database and index;
another company's library (Ledgerly). The batch size is lowered for the test (a setting of the
module, not a mock) so that a feed of 100 entries makes several batches.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.settings import Settings
from server.sources import sync as sync_module
from server.sources.connectors.base import Item
from tests.test_sources_sync import FEED_PATH, RSS, A, add_source, items_of, service, write_library
from tests.upstream import Upstream

ENTRIES = 100
BATCH = 20


def big_feed(entries: int) -> bytes:
    items = "".join(
        f"<item><title>Ledgerly release {n}</title>"
        f"<link>https://ledgerly.example/releases/{n}</link>"
        f'<guid isPermaLink="false">ledgerly-r{n:03d}</guid>'
        f"<description>Release {n}: invoices can be approved in bulk.</description></item>"
        for n in range(entries)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        "<title>Ledgerly release notes</title><link>https://ledgerly.example/releases</link>"
        f"<description>What changed</description>{items}</channel></rss>"
    ).encode()


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync_module, "WRITE_BATCH", BATCH)


@pytest.fixture
async def books(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Path
) -> TestClient:
    settings = make_settings(
        content_dir=write_library(tmp_path / "ledgerly"), fetch_allow_private=True, jobs=False
    )
    return await aiohttp_client(create_app(settings))


def aids_of_source_committed(db: Path, source_id: str) -> int:
    """Aids of the source as another connection sees them: what is committed."""
    with sqlite3.connect(db) as conn:
        row = conn.execute("select count(*) from aids where origin = ?", (source_id,)).fetchone()
    return int(row[0])


async def test_other_writes_get_in_while_a_big_sync_writes(
    books: TestClient,
    admin: dict[str, str],
    learner: dict[str, str],
    upstream: Upstream,
    small_batches: None,
) -> None:
    """Incident: a first sync of a 2,000-entry feed held the storage thread for its whole write
    (about 5 s on a laptop, 10 s on a busy server): every feedback vote, search log and author's
    save in the meantime waited until it ended."""
    upstream.set(FEED_PATH, big_feed(ENTRIES), content_type=RSS)
    await add_source(books, admin, upstream, publish="auto")
    svc = service(books)
    task = asyncio.create_task(svc.sync("vendor"))
    while True:  # until the sync has started writing
        progress = svc.progress("vendor")
        if progress is not None and progress["message"].startswith("writing"):
            break
        assert not task.done(), "the sync ended before it wrote"
        await asyncio.sleep(0.005)
    resp = await books.post(
        "/api/v1/feedback", json={"aid_id": "ledgerly-month-end", "helpful": True}, headers=learner
    )
    assert resp.status == 201, await resp.text()
    db = books.server.app[keys.SETTINGS].db_path
    when_feedback_landed = await asyncio.to_thread(aids_of_source_committed, db, "vendor")
    assert when_feedback_landed < ENTRIES  # it did not wait for the whole sync
    run = await task
    assert (run.status, run.added, run.failed) == ("ok", ENTRIES, 0)
    assert await asyncio.to_thread(aids_of_source_committed, db, "vendor") == ENTRIES
    source = await (await books.get(f"{A}/sources/vendor", headers=admin)).json()
    assert source["last_summary"] == f"{ENTRIES} added, 0 changed, 0 unchanged, 0 removed, 0 failed"


async def test_a_batch_that_fails_keeps_the_batches_before_it_and_the_next_run_completes(
    books: TestClient,
    admin: dict[str, str],
    upstream: Upstream,
    small_batches: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a failure while writing does (docs/sources.md, "Batches"): the batch rolls back
    alone; the run is failed and says how far it got, with the counts of the batches written;
    nothing is archived (that is the last step); the next run writes the rest."""
    upstream.set(FEED_PATH, big_feed(ENTRIES), content_type=RSS)
    await add_source(books, admin, upstream, publish="auto")
    real_item = sync_module._Writer.item

    def item(self: Any, entry: Item) -> None:
        if entry.external_id == "ledgerly-r050":  # in the third batch
            raise RuntimeError("disk I/O error")
        real_item(self, entry)

    monkeypatch.setattr(sync_module._Writer, "item", item)
    run = await service(books).sync("vendor")
    assert run.status == "failed"
    assert "40 of 100 written" in run.error and "disk I/O error" in run.error
    assert (run.added, run.removed) == (40, 0)
    db = books.server.app[keys.SETTINGS].db_path
    assert await asyncio.to_thread(aids_of_source_committed, db, "vendor") == 40
    assert len(await items_of(books)) == 40
    source = await (await books.get(f"{A}/sources/vendor", headers=admin)).json()
    assert source["last_status"] == "failed"

    monkeypatch.setattr(sync_module._Writer, "item", real_item)
    again = await service(books).sync("vendor")
    assert (again.status, again.added, again.unchanged, again.removed) == ("ok", 60, 40, 0)
    assert await asyncio.to_thread(aids_of_source_committed, db, "vendor") == ENTRIES
