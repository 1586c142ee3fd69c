"""The events store on PostgreSQL: ingestion and every rollup table end up exactly as on SQLite
for the same batches, a retried batch counts nothing twice, and the purge removes the same rows."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.analytics.events import Event
from server.analytics.reports import Filters, adoption, content, gaps
from server.analytics.store import EventStore, cutoff_day
from server.analytics.usage_signal import UsageSignal
from server.db import events_tables as t
from server.queue.signals import read_usage
from tests.pg.conftest import Databases
from tests.test_analytics_rollups import CAT, FIRST, LAST, RANGES, random_event

TABLES = list(t.metadata.sorted_tables)


def _open(path: Path, url: str = "") -> EventStore:
    store = EventStore(path, url=url)
    store.open_sync()
    return store


def _close(store: EventStore) -> None:
    store.close_sync()
    store._writer.shutdown()
    store._reader.shutdown()


@pytest.fixture
def stores(tmp_path: Path, pg: Databases) -> Iterator[tuple[EventStore, EventStore]]:
    lite = _open(tmp_path / "events.sqlite3")
    post = _open(tmp_path / "unused.sqlite3", pg.new("events"))
    try:
        yield lite, post
    finally:
        _close(lite)
        _close(post)


def _contents(store: EventStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every events table, sorted (bytes for the bitmaps, on both databases)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in TABLES:
        cols = [c for c in table.columns if c.name not in {"seq"}]
        rows = store.writer.execute(sa.select(*cols)).all()
        out[table.name] = sorted(
            (tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows),
            key=repr,
        )
    return out


def _ingest(store: EventStore, seed: int, batches: int) -> int:
    rng = random.Random(seed)
    users = [f"{rng.getrandbits(128):032x}" for _ in range(12)]
    days = (LAST - FIRST).days + 1
    accepted = 0
    for _ in range(batches):
        day = FIRST + dt.timedelta(days=rng.randrange(days))
        batch = [random_event(rng, day) for _ in range(rng.randint(1, 8))]
        result = store.ingest_sync(batch, rng.choice(users), statement_for=lambda e: e.id)
        accepted += result.accepted
    return accepted


def test_the_same_batches_give_the_same_rollups_on_both_databases(
    stores: tuple[EventStore, EventStore],
) -> None:
    """A dashboard on PostgreSQL must show what it shows on SQLite: every table (events, daily
    and period rollups, people bitmaps, comments, outbox, meta) holds the same rows."""
    lite, post = stores
    assert _ingest(lite, 5, 150) == _ingest(post, 5, 150) > 300
    want = _contents(lite)
    assert _contents(post) == want
    assert want["period_counts"] and want["people"] and want["outbox"]


def test_a_retried_batch_counts_nothing_twice(stores: tuple[EventStore, EventStore]) -> None:
    """A client retrying a batch after a lost answer: the second delivery is all duplicates and
    no rollup moves (the event ids are the primary key on PostgreSQL too)."""
    _, post = stores
    _ingest(post, 9, 20)
    rng = random.Random(4)
    batch = [random_event(rng, LAST) for _ in range(6)]
    assert post.ingest_sync(batch, "p1").accepted == 6
    before = _contents(post)
    again = post.ingest_sync(batch, "p1")
    assert (again.accepted, again.duplicates) == (0, 6)
    assert _contents(post) == before


def test_the_purge_removes_the_same_rows(stores: tuple[EventStore, EventStore]) -> None:
    """Retention on PostgreSQL deletes what it deletes on SQLite, rollups and bitmaps included."""
    lite, post = stores
    _ingest(lite, 3, 120)
    _ingest(post, 3, 120)
    cutoff = cutoff_day(200, LAST)
    assert lite.purge_sync(cutoff) == post.purge_sync(cutoff)
    assert _contents(post) == _contents(lite)


def test_the_dashboard_reports_are_the_same_on_both_databases(
    stores: tuple[EventStore, EventStore],
) -> None:
    """The adoption, content and gaps reports and the queue's usage read through `rconn`: on
    PostgreSQL they must give every figure SQLite gives, for single days, whole weeks and months
    and ranges across them, with and without an app filter and with small groups withheld."""
    lite, post = stores
    _ingest(lite, 21, 400)
    _ingest(post, 21, 400)
    for start, end in RANGES:
        for app in (None, "hr"):
            f = Filters(start, end, app)
            for min_group in (1, 5):
                assert adoption(post.rconn, f, min_group, CAT) == adoption(
                    lite.rconn, f, min_group, CAT
                ), f
                assert content(post.rconn, f, min_group, CAT) == content(
                    lite.rconn, f, min_group, CAT
                ), f
                assert gaps(post.rconn, f, min_group, CAT) == gaps(lite.rconn, f, min_group, CAT)
            # the authoring queue's page and query figures (server/queue/signals.py)
            assert read_usage(post.rconn, f) == read_usage(lite.rconn, f)


async def test_the_usage_signal_reads_postgresql(pg: Databases, tmp_path: Path) -> None:
    """Suggest's usage signal (what colleagues opened and rated per page context) reads the
    events database in a thread of its own: on PostgreSQL it must see the same rows (the person
    column is "user", a word PostgreSQL reads as the current role when unquoted), and notice new
    batches written by another node."""
    lite = _open(tmp_path / "events.sqlite3")
    post = _open(tmp_path / "unused.sqlite3", pg.new("events"))
    signals = [UsageSignal(store, 1) for store in (lite, post)]
    try:
        now = dt.datetime.now(dt.UTC)
        for store in (lite, post):
            for i in range(6):
                batch = [
                    Event(str(uuid.UUID(int=100 * i + k, version=4)), kind, now, **fields)
                    for k, (kind, fields) in enumerate(
                        [
                            ("panel_opened", {"app": "crm", "context": "c1"}),
                            ("aid_opened", {"app": "crm", "context": "c1", "aid": "a1"}),
                            (
                                "aid_rated",
                                {"app": "crm", "context": "c1", "aid": "a1", "helpful": i % 3 != 0},
                            ),
                        ]
                    )
                ]
                store.ingest_sync(batch, f"person-{i}")
        for signal in signals:
            await signal.refresh()
        assert signals[1].by_context == signals[0].by_context
        usage = signals[1].by_context["c1"]["a1"]
        assert usage.people == 6
        # another node's batch: the signal's own connection sees the database change
        other = _open(tmp_path / "unused-2.sqlite3", post.url)
        try:
            version = await signals[1]._run(signals[1]._data_version_sync)
            extra = Event(str(uuid.uuid4()), "aid_opened", now, app="crm", context="c1", aid="a2")
            other.ingest_sync([extra], "person-9")
            for _ in range(50):
                if await signals[1]._changed():
                    break
                await asyncio.sleep(0.1)
            assert await signals[1]._run(signals[1]._data_version_sync) != version
            await signals[1].refresh()
            assert "a2" in signals[1].by_context["c1"]
        finally:
            _close(other)
    finally:
        for signal in signals:
            await signal.close()
        _close(lite)
        _close(post)
