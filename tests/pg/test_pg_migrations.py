"""Alembic on PostgreSQL: both stores' revisions run from an empty database to head and build
exactly the declared tables, and a database with real content at an earlier revision (the first
one, and the previous head) upgrades on PostgreSQL to the same rows the upgrade gives on SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from server.analytics.store import EventStore
from server.cli import main as inflow
from server.db import content_tables, events_tables, migrate
from server.db.engine import database_engine, sqlite_engine
from server.db.migrate import WrongDatabase
from server.models import Aid
from server.storage import Changes, Storage
from tests.fixtures.content_db import CONTENT_V0, load_dump
from tests.pg.conftest import Databases

REVISIONS = [s.revision for s in reversed(list(migrate._script("content").walk_revisions()))]
METADATA = {"content": content_tables.metadata, "events": events_tables.metadata}


def pseudonym(issuer: str, subject: str) -> str:
    return f"p:{issuer}|{subject}"


@pytest.mark.parametrize("store", ["content", "events"])
def test_empty_to_head_builds_the_declared_tables(pg: Databases, store: str) -> None:
    """A new PostgreSQL database gets every revision, and the result is what the declarations in
    server/db/*_tables.py say (a type or index that only SQLite accepts would show here)."""
    engine = database_engine(pg.new())
    try:
        revisions = [s.revision for s in reversed(list(migrate._script(store).walk_revisions()))]
        assert migrate.upgrade(engine, store, pseudonymize=pseudonym) == revisions
        assert migrate.current(engine, store) == migrate.head(store)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), METADATA[store]) == []
        assert migrate.upgrade(engine, store) == []  # a second start-up: nothing to do
    finally:
        engine.dispose()


def _rows(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows as sorted (column, value) pairs: column order may differ by dialect."""
    md = sa.MetaData()
    md.reflect(engine)
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for name, table in md.tables.items():
            if name == "alembic_version":
                continue
            rows = conn.execute(sa.select(table)).mappings()
            out[name] = sorted((tuple(sorted(r.items())) for r in rows), key=repr)
    return out


def _copy(source: sa.Engine, target: sa.Engine) -> None:
    """Copy every row of `source` (SQLite) into the same tables of `target` (PostgreSQL at the
    same revision), then move each id sequence past the copied ids."""
    src, dst = sa.MetaData(), sa.MetaData()
    src.reflect(source)
    dst.reflect(target)
    with source.connect() as read, target.begin() as write:
        for table in dst.sorted_tables:
            if table.name == "alembic_version":
                continue
            rows = [dict(r) for r in read.execute(sa.select(src.tables[table.name])).mappings()]
            if rows:
                write.execute(sa.insert(table), rows)
            pk = list(table.primary_key.columns)
            if len(pk) == 1 and isinstance(pk[0].type, sa.Integer) and rows:
                write.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk[0].name}'), "
                    f"(SELECT max({pk[0].name}) FROM {table.name}))"
                )


@pytest.mark.parametrize("start", [REVISIONS[0], REVISIONS[-2]], ids=["first", "previous-head"])
async def test_an_upgrade_with_content_gives_the_same_rows_as_on_sqlite(
    pg: Databases, tmp_path: Path, start: str
) -> None:
    """The demo content as the old code stored it (tests/fixtures/content_v0.sql: 59 aids, an
    edited aid with its versions and audit row, feedback, a session), at revision `start`, on
    both databases; after the upgrade to head every table holds the same rows, and the store then
    reads it back and writes to it (the copied ids did not leave the id sequences behind)."""
    lite_path = load_dump(CONTENT_V0, tmp_path / "lite.sqlite3")
    lite = sqlite_engine(lite_path)
    post = database_engine(pg.new())
    try:
        migrate.upgrade(lite, "content", pseudonymize=pseudonym, to=start)
        migrate.upgrade(post, "content", pseudonymize=pseudonym, to=start)
        _copy(lite, post)
        assert _rows(post) == _rows(lite)
        migrate.upgrade(lite, "content", pseudonymize=pseudonym)
        applied = migrate.upgrade(post, "content", pseudonymize=pseudonym)
        assert applied == REVISIONS[REVISIONS.index(start) + 1 :]
        want = _rows(lite)
        assert len(want["aids"]) == 59 and len(want["feedback"]) == 3
        assert _rows(post) == want
        url = post.url.render_as_string(hide_password=False)
    finally:
        lite.dispose()
        post.dispose()

    storage = Storage(tmp_path / "unused.sqlite3", url=url, key_dir=tmp_path)
    await storage.open()
    try:
        assert storage.applied_revisions == []
        aid = await storage.get_aid("crm-create-opportunity")
        assert aid.version == 2
        before = await storage.content_version()

        def edit(changes: Changes) -> int:
            new = Aid(id="pg-new", title="New on PostgreSQL", summary="s", body="b")
            storage.save_aid_tx(new, "tester", changes)
            return storage.audit_add_tx(("iss", "sub", "tester"), "aid.create", "aid", "pg-new")

        audit_id, _, version = await storage.write(edit)
        assert version == before + 1 and audit_id > 1
        assert (await storage.get_aid("pg-new")).title == "New on PostgreSQL"
    finally:
        await storage.close()


def test_inflow_migrate_upgrades_both_databases_named_by_their_urls(
    pg: Databases,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`inflow migrate` with INFLOW_DATABASE_URL and INFLOW_EVENTS_DATABASE_URL migrates those
    databases (not SQLite files in the data folder) and names them without their password."""
    content, events = pg.new(), pg.new()
    monkeypatch.setenv("INFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("INFLOW_DATABASE_URL", content)
    monkeypatch.setenv("INFLOW_EVENTS_DATABASE_URL", events)
    assert inflow(["migrate"]) == 0
    out = capsys.readouterr().out
    assert "content (postgresql+psycopg://inflow_test:***@" in out
    assert "password" not in out and "inflow_test:inflow_test" not in out
    assert f"-> {migrate.head('content')}" in out and f"-> {migrate.head('events')}" in out
    assert not (tmp_path / "data" / "inflow.sqlite3").exists()
    assert inflow(["migrate"]) == 0
    assert capsys.readouterr().out.count("nothing to apply") == 2


async def test_one_url_for_both_stores_is_refused_saying_why(pg: Databases, tmp_path: Path) -> None:
    """The same URL in INFLOW_DATABASE_URL and INFLOW_EVENTS_DATABASE_URL: the events migration
    found the content's revision and said the database was "upgraded by a newer Inflow"; now it
    says the two stores need two databases, and changes nothing."""
    url = pg.new()
    storage = Storage(tmp_path / "unused.sqlite3", url=url, key_dir=tmp_path)
    await storage.open()
    await storage.close()
    events = EventStore(tmp_path / "unused-events.sqlite3", url=url)
    with pytest.raises(WrongDatabase, match="two different databases"):
        events.open_sync()
    events.close_sync()
    engine = database_engine(url)
    try:
        assert migrate.current(engine, "content") == migrate.head("content")
        assert not sa.inspect(engine).has_table("events")
    finally:
        engine.dispose()
