"""The events database under Alembic: a database made by the code before migrations (events-v0)
opens with today's code and nothing is lost, revision 0001 is exactly the schema that code made,
and the table declarations (server/db/events_tables.py) are what the revisions build."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from server.analytics.events import Event
from server.analytics.store import EventStore
from server.app import create_app
from server.cli import main as inflow
from server.db import migrate
from server.db.engine import sqlite_engine
from server.db.events_tables import metadata
from server.settings import Settings
from tests.fixtures.content_db import FIXTURES, load_dump, table_rows

EVENTS_V0 = FIXTURES / "events-v0.sql"
TABLES = (
    "events",
    "counts",
    "users",
    "comments",
    "outbox",
    "outbox_dead",
    "period_counts",
    "people",
    "person_ids",
    "meta",
)


def _maker() -> ModuleType:
    """tests/fixtures/events-v0-make.py: the ranges, catalog and report runner it used."""
    spec = importlib.util.spec_from_file_location("events_v0_make", FIXTURES / "events-v0-make.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _schema(db_path: Path) -> dict[str, Any]:
    """Tables as SQLite describes them: columns (name, type, default, NOT NULL, implied for the
    primary key, position in the key), indexes, unique constraints, WITHOUT ROWID, AUTOINCREMENT."""
    conn = sqlite3.connect(db_path)
    try:
        out: dict[str, Any] = {}
        for name, sql in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name != 'alembic_version' ORDER BY name"
        ).fetchall():
            out[name] = {
                "columns": [
                    (col, ctype, dflt, bool(notnull or pk), pk)
                    for _, col, ctype, notnull, dflt, pk in conn.execute(
                        f"PRAGMA table_info({name})"
                    )
                ],
                "indexes": sorted(
                    (
                        r[1] if r[3] == "c" else r[3],  # automatic ones differ in name only
                        r[2],
                        [c[2] for c in conn.execute(f"PRAGMA index_info('{r[1]}')")],
                    )
                    for r in conn.execute(f"PRAGMA index_list({name})")
                ),
                "without_rowid": "WITHOUT ROWID" in sql.upper(),
                "autoincrement": "AUTOINCREMENT" in sql.upper(),
            }
        return out
    finally:
        conn.close()


def _open(path: Path) -> EventStore:
    store = EventStore(path)
    store.open_sync()
    return store


def _close(store: EventStore) -> None:
    store.close_sync()
    store._writer.shutdown()
    store._reader.shutdown()


def test_revision_0001_is_the_schema_the_old_code_made(tmp_path: Path) -> None:
    """A database made before migrations is stamped at 0001, never run through it: if 0001 did not
    create exactly the old schema (down to WITHOUT ROWID and AUTOINCREMENT), every later revision
    would act on tables that differ between old and new installations."""
    old = load_dump(EVENTS_V0, tmp_path / "old.sqlite3")
    new = tmp_path / "new.sqlite3"
    engine = sqlite_engine(new)
    try:
        assert migrate.upgrade(engine, "events", to="0001") == ["0001"]
    finally:
        engine.dispose()
    assert sorted(_schema(old)) == sorted(TABLES)
    assert _schema(new) == _schema(old)


def test_head_matches_the_table_declarations(tmp_path: Path) -> None:
    """The tables declared in server/db/events_tables.py are what the revisions build: a column
    added to one and not the other would pass every other test on a fresh database only."""
    path = tmp_path / "events.sqlite3"
    store = _open(path)  # a new database: start-up runs every revision
    _close(store)
    engine = sqlite_engine(path)
    try:
        assert migrate.current(engine, "events") == migrate.head("events")
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_opening_a_database_made_by_the_old_code_loses_nothing(tmp_path: Path) -> None:
    """The store migrates at start-up (stamped at the baseline, then upgraded): every row of every
    table is still there, the dashboards show the figures the old code computed, the undelivered
    statements are still queued in order with their attempts, and ingestion goes on from there."""
    maker = _maker()
    path = load_dump(EVENTS_V0, tmp_path / "events.sqlite3")
    before = {t: table_rows(path, t) for t in TABLES}
    assert len(before["events"]) == 2100
    assert {r[1] for r in before["events"]} == set(maker.TYPES)
    assert len(before["outbox"]) == 2100 - 40 - 3 and len(before["outbox_dead"]) == 3
    with sqlite3.connect(path) as conn:  # the figures, read the same way before migrating
        figures_before = maker.reports_of(conn)
    conn.close()
    expected = json.loads(
        (FIXTURES / "events-v0-reports.json").read_text(encoding="utf-8")
    )  # ... and as the old code computed them when it made the database
    assert figures_before == expected

    store = _open(path)
    try:
        for t in TABLES:
            assert table_rows(path, t) == before[t], t
        assert maker.reports_of(store.rconn) == expected
        items = store.outbox_batch_sync(10_000)
        assert [(i.seq, i.event_id, i.statement, i.attempts) for i in items] == [
            (r[0], r[1], r[3], r[4]) for r in sorted(before["outbox"])
        ]
        assert sum(i.attempts for i in items) == 20  # 15 retried once, 5 of them twice
        assert store.outbox_size_sync() == (2057, 3)

        # ingestion after the upgrade: duplicates are still recognized, new rows append
        old_event = before["events"][0]
        again = Event(old_event[0], old_event[1], dt.datetime.fromisoformat(old_event[2]))
        new = Event(str(uuid.uuid4()), "signed_in", dt.datetime(2026, 3, 18, 9, 0, tzinfo=dt.UTC))
        result = store.ingest_sync([again, new], "a" * 32, lambda e: "{}")
        assert (result.accepted, result.duplicates) == (1, 1)
        last = store.outbox_batch_sync(10_000)[-1]
        assert last.event_id == new.id and last.seq > max(r[0] for r in before["outbox"])
    finally:
        _close(store)

    # a second start-up has nothing to apply and changes nothing
    engine = sqlite_engine(path)
    try:
        assert migrate.upgrade(engine, "events") == []
        assert migrate.current(engine, "events") == migrate.head("events")
    finally:
        engine.dispose()


async def test_the_server_starts_on_a_database_made_by_the_old_code(
    aiohttp_client: Any, make_settings: Callable[..., Settings], admin: dict[str, str]
) -> None:
    """Start-up migrates the events database on its own (no `inflow migrate` first), and the
    dashboard API then shows the totals the old code computed."""
    settings = make_settings(analytics_purge_interval_seconds=0)  # the fixture's days stay
    load_dump(EVENTS_V0, settings.events_db_path)
    client = await aiohttp_client(create_app(settings))
    expected = json.loads((FIXTURES / "events-v0-reports.json").read_text(encoding="utf-8"))
    for want in expected:
        if want["report"] != "adoption" or want["app"] is not None:
            continue
        resp = await client.get(
            f"/api/v1/admin/analytics/adoption?from={want['from']}&to={want['to']}", headers=admin
        )
        assert resp.status == 200, await resp.text()
        tables = (await resp.json())["tables"]
        assert tables["totals"]["rows"] == want["tables"]["totals"]["rows"]
        assert tables["daily"]["rows"] == want["tables"]["daily"]["rows"]
    engine = sqlite_engine(settings.events_db_path)
    try:
        assert migrate.current(engine, "events") == migrate.head("events")
    finally:
        engine.dispose()


def test_inflow_migrate_completes_a_database_from_before_the_period_rollups(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    """`inflow migrate` (not only the store's start-up) on a database from before the period
    rollups: stamping it at 0001 as it was would claim four tables it lacks, and the store would
    then fail on its first batch. The tables are created first; the store fills them at start-up
    and the dashboards show the old figures."""
    data = tmp_path / "data"
    path = load_dump(EVENTS_V0, data / "events.sqlite3")
    with sqlite3.connect(path) as db:
        db.executescript(
            "DROP TABLE people; DROP TABLE period_counts; DROP TABLE person_ids; DROP TABLE meta;"
        )
    db.close()
    monkeypatch.setenv("INFLOW_DATA_DIR", str(data))
    assert inflow(["migrate"]) == 0
    assert "events (" in capsys.readouterr().out
    fresh = tmp_path / "fresh.sqlite3"
    _close(_open(fresh))
    assert _schema(path) == _schema(fresh)
    store = _open(path)
    try:
        expected = json.loads((FIXTURES / "events-v0-reports.json").read_text(encoding="utf-8"))
        assert _maker().reports_of(store.rconn) == expected
    finally:
        _close(store)
