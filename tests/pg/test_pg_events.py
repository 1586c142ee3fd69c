"""The events store on PostgreSQL: ingestion and every rollup table end up exactly as on SQLite
for the same batches, a retried batch counts nothing twice, and the purge removes the same rows."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.analytics.store import EventStore, cutoff_day
from server.db import events_tables as t
from tests.pg.conftest import Databases
from tests.test_analytics_rollups import FIRST, LAST, random_event

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
