"""Schema migrations: a database made by the code before migrations upgrades without losing
anything, the revisions match the table declarations, and `inflow migrate` says what it did."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from server.analytics.pseudonym import Pseudonymizer, load_key
from server.app import create_app
from server.cli import main as inflow
from server.db import migrate
from server.db.content_tables import metadata
from server.db.engine import sqlite_engine
from server.models import Aid
from server.storage import Changes, Storage
from tests.fixtures.content_db import (
    CONTENT_V0,
    V0_ISSUER,
    load_dump,
    table_columns,
    table_rows,
)

# Every content revision, oldest first (a new revision must not need these tests edited).
REVISIONS = [s.revision for s in reversed(list(migrate._script("content").walk_revisions()))]
AFTER_BASELINE = REVISIONS[1:]

UNCHANGED_TABLES = (
    "meta",
    "aids",
    "aid_versions",
    "apps",
    "context_aids",
    "mentors",
    "audit_log",
    "admin_sessions",
)


def _schema(db_path: Path) -> dict[str, Any]:
    """Tables as SQLite itself describes them (PRAGMA table_info, foreign_key_list, index_list):
    column names, types, defaults, NOT NULL (implied for primary keys), primary keys, foreign keys
    with their ON DELETE, indexes; and AUTOINCREMENT."""
    conn = sqlite3.connect(db_path)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                "AND name != 'alembic_version' ORDER BY name"
            )
        ]
        out: dict[str, Any] = {}
        for t in names:
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE name=?", (t,)).fetchone()[0]
            out[t] = {
                "columns": [
                    (name, ctype, dflt, bool(notnull or pk), pk)
                    for _, name, ctype, notnull, dflt, pk in conn.execute(f"PRAGMA table_info({t})")
                ],
                "fks": sorted(
                    (r[2], r[3], r[4], r[5], r[6])
                    for r in conn.execute(f"PRAGMA foreign_key_list({t})")
                ),
                "indexes": sorted(
                    (
                        r[1],
                        r[2],
                        [c[2] for c in conn.execute(f"PRAGMA index_info('{r[1]}')")],
                    )
                    for r in conn.execute(f"PRAGMA index_list({t})")
                    if r[3] == "c"  # made by CREATE INDEX (automatic ones differ in name only)
                ),
                "autoincrement": "AUTOINCREMENT" in sql.upper(),
            }
        return out
    finally:
        conn.close()


def test_revision_0001_is_the_schema_the_old_code_made(tmp_path: Path) -> None:
    """Databases made before migrations are stamped at 0001, never run through it: if 0001 did not
    create exactly the old schema, every later revision would act on tables that differ."""
    old = load_dump(CONTENT_V0, tmp_path / "old.sqlite3")
    new = tmp_path / "new.sqlite3"
    engine = sqlite_engine(new)
    try:
        assert migrate.upgrade(engine, "content", to="0001") == ["0001"]
    finally:
        engine.dispose()
    assert _schema(new) == _schema(old)


def test_head_matches_the_table_declarations(tmp_path: Path) -> None:
    """The tables declared in server/db/content_tables.py are what the revisions build: a column
    added to one and not the other would pass every other test on a fresh database only."""
    engine = sqlite_engine(tmp_path / "db.sqlite3")
    try:
        assert migrate.upgrade(engine, "content") == REVISIONS
        assert REVISIONS[0] == "0001" and len(REVISIONS) >= 2
        assert migrate.current(engine, "content") == migrate.head("content") == REVISIONS[-1]
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


async def test_upgrading_a_database_made_by_the_old_code_loses_nothing(tmp_path: Path) -> None:
    db = load_dump(CONTENT_V0, tmp_path / "data" / "inflow.sqlite3")
    old_columns = {t: table_columns(db, t) for t in UNCHANGED_TABLES}
    before = {t: table_rows(db, t) for t in UNCHANGED_TABLES}
    assert len(before["aids"]) == 59 and len(before["aid_versions"]) == 60
    # revision 0003: a context's one rule (two columns) became its list of rules
    old_contexts = table_rows(
        db, "contexts", ("id", "app_id", "name", "rule_pattern", "rule_priority", "position")
    )

    storage = Storage(db, key_dir=tmp_path / "data")
    await storage.open()  # the start-up path: upgrades automatically
    try:
        assert storage.applied_revisions == AFTER_BASELINE  # stamped at 0001, then upgraded
        for table in UNCHANGED_TABLES:  # columns a later revision adds are not compared
            assert table_rows(db, table, old_columns[table]) == before[table], table
        aids = await storage.all_aids()
        assert len(aids) == 59
        edited = await storage.get_aid("crm-create-opportunity")
        assert edited.version == 2 and edited.summary.endswith("(edited)")
        versions = await storage.call(storage.aid_versions_sync, "crm-create-opportunity")
        assert [v["version"] for v in versions] == [2, 1]
        apps = {a.id: a for a in await storage.all_apps()}
        assert sorted(apps) == ["crm", "expenses", "hr"]
        assert sum(len(a.contexts) for a in apps.values()) == 18
        every = {c.id: (c, a.contexts.index(c)) for a in apps.values() for c in a.contexts}
        assert old_contexts == [
            (c.id, c.app_id, c.name, c.rules[0].pattern, c.rules[0].priority, pos)
            for c, pos in (every[row[0]] for row in old_contexts)
        ]
        assert all(len(c.rules) == 1 and not (c.fallback or c.exclusive) for c, _ in every.values())
        assert every["hr-profile-bank"][0].rules[0].priority == 10
        assert all(not a.wrapped_targets for a in apps.values())
        new_opp = next(c for c in apps["crm"].contexts if c.id == "crm-opportunity-new")
        assert new_opp.aids == (
            "crm-create-opportunity",
            "crm-stage-definitions",
            "crm-lead-conversion",
        )
        assert len(await storage.all_mentors()) == 6
        audit = await storage.call(storage.audit_page_sync, {}, None, 10)
        assert [(a["action"], a["target_id"], a["who"]["username"]) for a in audit] == [
            ("aid.update", "crm-create-opportunity", "admin")
        ]
        assert await storage.content_version() == 2
        assert await storage.call(storage.kv_get_sync, "a" * 64, "session", 0.0) == (
            '{"username": "admin"}'
        )
        assert await storage.feedback_counts("crm-create-opportunity") == (1, 1)
    finally:
        await storage.close()

    key = load_key("", tmp_path / "data")
    pseudonym = Pseudonymizer(key)
    rows = sqlite3.connect(db).execute("SELECT id, user_key FROM feedback ORDER BY id").fetchall()
    assert rows == [
        (1, pseudonym(V0_ISSUER, "sub-learner-1")),
        (2, pseudonym(V0_ISSUER, "sub-learner-2")),
        (3, pseudonym(V0_ISSUER, "sub-learner-1")),
    ]

    # A second start-up finds nothing to do and changes nothing.
    again = Storage(db, key_dir=tmp_path / "data")
    await again.open()
    try:
        assert again.applied_revisions == []
        assert await again.content_version() == 2
    finally:
        await again.close()


async def test_the_server_starts_on_an_old_database_and_suggests_from_it(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path, learner: dict[str, str]
) -> None:
    settings = make_settings()
    load_dump(CONTENT_V0, settings.db_path)
    client = await aiohttp_client(create_app(settings))
    resp = await client.post(
        "/api/v1/suggest",
        json={
            "url": "http://127.0.0.1:8080/demo/crm/opportunities/new",
            "title": "New Opportunity",
        },
        headers=learner,
    )
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert [c["id"] for c in data["contexts"]] == ["crm-opportunity-new"]
    first = data["aids"][0]
    assert (first["id"], first["reason_code"]) == ("crm-create-opportunity", "pinned")
    assert first["summary"].endswith("(edited)")  # the edit made by the old code survived


def test_a_database_from_a_newer_inflow_is_refused(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    """Old code on a newer schema would write rows the newer code cannot read back: refuse, and say
    why, instead of starting."""
    data = tmp_path / "data"
    engine = sqlite_engine(data / "inflow.sqlite3")
    try:
        migrate.upgrade(engine, "content")
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num='0999'"))
    finally:
        engine.dispose()
    storage = Storage(data / "inflow.sqlite3")
    with pytest.raises(migrate.DatabaseTooNew, match="newer Inflow"):
        storage.open_sync()
    monkeypatch.setenv("INFLOW_DATA_DIR", str(data))
    assert inflow(["migrate"]) == 4
    err = capsys.readouterr().err
    assert "revision '0999'" in err and "newer Inflow" in err


def test_inflow_migrate_prints_what_it_applied(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    data = tmp_path / "data"
    load_dump(CONTENT_V0, data / "inflow.sqlite3")
    monkeypatch.setenv("INFLOW_DATA_DIR", str(data))
    assert inflow(["migrate"]) == 0
    out = capsys.readouterr().out
    head, applied = REVISIONS[-1], " ".join(AFTER_BASELINE)
    assert "content (" in out and f"no revision -> {head}: applied {applied}" in out
    assert inflow(["migrate"]) == 0
    assert "content (" in (out := capsys.readouterr().out) and f"at {head}, nothing to apply" in out


async def test_a_failing_write_leaves_nothing_behind(tmp_path: Path) -> None:
    """The move to SQLAlchemy kept write transactions whole: an admin write that fails half-way
    (here after saving an aid and an audit row) stores neither, and the content version stays."""
    storage = Storage(tmp_path / "db.sqlite3")
    await storage.open()
    try:
        aid = Aid(
            id="half-written",
            title="Half written",
            type="howto",
            status="draft",
            created_at="",
            updated_at="",
        )

        def fail_half_way(changes: Changes) -> None:
            storage.save_aid_tx(aid, "tester", changes)
            storage.audit_add_tx(("iss", "sub", "tester"), "aid.create", "aid", aid.id)
            raise RuntimeError("disk on fire")

        with pytest.raises(RuntimeError, match="disk on fire"):
            await storage.write(fail_half_way)
        assert await storage.all_aids() == []
        assert await storage.call(storage.audit_page_sync, {}, None, 10) == []
        assert await storage.content_version() == 0
        # and the connection is usable afterwards
        _, changes, version = await storage.write(lambda ch: storage.save_aid_tx(aid, "t", ch))
        assert version == 1 and [a.id for a in changes.upserts] == ["half-written"]
    finally:
        await storage.close()


async def test_revision_0003_keeps_each_context_rule_and_its_pins(tmp_path: Path) -> None:
    """Contexts went from one rule (two columns) to a list of rules. A database at 0002 with
    contexts and pins upgrades with every rule kept, as the context's only rule, and every pin
    kept (rebuilding the table would have deleted the pins through ON DELETE CASCADE)."""
    db = tmp_path / "data" / "inflow.sqlite3"
    engine = sqlite_engine(db)
    try:
        migrate.upgrade(engine, "content", to="0002")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO apps (id, name, rules) VALUES ('sn', 'SN', '[]')"))
            conn.execute(
                sa.text(
                    "INSERT INTO contexts (id, app_id, name, rule_pattern, rule_priority, "
                    "title_pattern, selector, position) VALUES "
                    "('sn-incident', 'sn', 'Incident', 'https://x.example.com/incident.do', 5, "
                    "'', '#form', 0), "
                    "('sn-home', 'sn', 'Home', 'https://x.example.com/**', 0, '', '', 1)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO context_aids (context_id, aid_id, position) VALUES "
                    "('sn-incident', 'a1', 0), ('sn-incident', 'a2', 1), ('sn-home', 'a3', 0)"
                )
            )
    finally:
        engine.dispose()
    storage = Storage(db, key_dir=tmp_path / "data")
    await storage.open()
    try:
        assert storage.applied_revisions == REVISIONS[REVISIONS.index("0002") + 1 :]
        [app] = await storage.all_apps()
        incident, home = app.contexts
        assert (incident.id, [(r.pattern, r.priority) for r in incident.rules]) == (
            "sn-incident",
            [("https://x.example.com/incident.do", 5)],
        )
        assert (incident.selector, incident.aids, incident.fallback) == (
            "#form",
            ("a1", "a2"),
            False,
        )
        assert [r.pattern for r in home.rules] == ["https://x.example.com/**"]
        assert home.aids == ("a3",)
    finally:
        await storage.close()
