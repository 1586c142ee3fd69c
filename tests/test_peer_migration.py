"""Revision 0004 (peer learning): a database at 0003 with real content upgrades with nothing lost
(every row of every table, contexts and their pins included), apps get an empty `owners`, and the
peer tables arrive empty with their keys, constraints and indexes; a fresh database has them all.

The hazard it guards against: adding `apps.owners` through a batch (copy-and-swap) migration
drops the `apps` table, and with foreign keys on SQLite's DROP TABLE deletes every context and
every pin through their ON DELETE CASCADE.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import sqlalchemy as sa

from server.analytics.pseudonym import Pseudonymizer, load_key
from server.db import migrate
from server.db.content_tables import metadata
from server.db.engine import sqlite_engine
from server.db.peer_tables import TABLES
from server.models import App, validate
from server.peer.models import Question, Tip
from server.peer.store import PeerStore
from server.storage import Changes, Storage
from tests.fixtures.content_db import CONTENT_V0, load_dump, table_columns, table_rows

PEER_TABLES = sorted(t.name for t in TABLES.values())


def _tables(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                "AND name != 'alembic_version' ORDER BY name"
            )
        ]
    finally:
        conn.close()


def _at_0003(tmp_path: Path) -> Path:
    """The demo content as the code before migrations stored it, upgraded to 0003."""
    db = load_dump(CONTENT_V0, tmp_path / "data" / "inflow.sqlite3")
    key = load_key("", tmp_path / "data")
    engine = sqlite_engine(db)
    try:
        migrate.upgrade(engine, "content", pseudonymize=Pseudonymizer(key), to="0003")
        assert migrate.current(engine, "content") == "0003"
    finally:
        engine.dispose()
    return db


async def test_upgrade_from_0003_keeps_everything(tmp_path: Path) -> None:
    db = _at_0003(tmp_path)
    old_tables = _tables(db)
    assert not set(PEER_TABLES) & set(old_tables)
    columns = {t: table_columns(db, t) for t in old_tables}
    before = {t: table_rows(db, t) for t in old_tables}
    assert len(before["contexts"]) == 18 and len(before["context_aids"]) > 30

    storage = Storage(db, key_dir=tmp_path / "data")
    await storage.open()  # the start-up path upgrades
    try:
        assert storage.applied_revisions[0] == "0004"
        for table in old_tables:
            assert table_rows(db, table, columns[table]) == before[table], table
        # later revisions add tables of their own (sources: 0005)
        assert set(_tables(db)) - set(old_tables) >= set(PEER_TABLES)
        assert [r[1] for r in table_rows(db, "apps", ("id", "owners"))] == ["[]"] * 3
        apps = {a.id: a for a in await storage.all_apps()}
        assert all(a.owners == () for a in apps.values())
        assert sum(len(c.aids) for a in apps.values() for c in a.contexts) == len(
            before["context_aids"]
        )
        # the peer tables are empty and usable at once; owners save and read back
        for table in PEER_TABLES:
            assert table_rows(db, table) == [], table
        store = PeerStore(storage)
        tip = await store.add(Tip(app_id="crm", context_id="crm-opportunity-new", body="Hi"))
        assert (await store.get(Tip, tip.id)).body == "Hi"
        owners = validate(App, {"id": "x", "name": "x", "owners": ["Sales.Ops@example.com"]})
        owned = dataclasses.replace(apps["crm"], owners=owners.owners)

        def save(changes: Changes) -> str:
            return storage.save_app_tx(owned, changes)

        await storage.write(save)
        again = {a.id: a for a in await storage.all_apps()}
        assert again["crm"].owners == ("Sales.Ops@example.com",)
        assert again["crm"].contexts == apps["crm"].contexts
    finally:
        await storage.close()


def test_a_fresh_database_has_every_peer_table_with_its_keys(tmp_path: Path) -> None:
    db = tmp_path / "fresh.sqlite3"
    engine = sqlite_engine(db)
    try:
        migrate.upgrade(engine, "content")
        inspector = sa.inspect(engine)
        assert set(inspector.get_table_names()) - {"alembic_version"} == set(metadata.tables)
        for table in TABLES.values():
            declared = [c.name for c in table.columns]
            assert [c["name"] for c in inspector.get_columns(table.name)] == declared, table.name
            assert inspector.get_pk_constraint(table.name)["constrained_columns"] == ["id"]
            indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(table.name)}
            assert indexes == {i.name: [c.name for c in i.columns] for i in table.indexes}
        fks = {
            t: [
                (f["constrained_columns"], f["referred_table"], f["options"].get("ondelete"))
                for f in inspector.get_foreign_keys(t)
            ]
            for t in ("peer_answers", "peer_tip_reports")
        }
        assert fks == {
            "peer_answers": [(["question_id"], "peer_questions", "CASCADE")],
            "peer_tip_reports": [(["tip_id"], "peer_tips", "CASCADE")],
        }
        uniques = {
            t: [u["column_names"] for u in inspector.get_unique_constraints(t)]
            for t in ("peer_tip_reports", "peer_recommendations")
        }
        assert uniques == {
            "peer_tip_reports": [["tip_id", "reporter_key"]],
            "peer_recommendations": [["mentor_id", "app_id", "context_id", "aid_id"]],
        }
        with engine.begin() as conn:  # defaults let a row name only what it must
            conn.execute(
                sa.text(
                    "INSERT INTO peer_questions (id, app_id, body, status) "
                    "VALUES ('q', 'crm', 'Why?', 'open')"
                )
            )
            row = conn.execute(sa.text("SELECT * FROM peer_questions")).mappings().one()
        assert (row["audience"], row["unread"], row["context_id"]) == ("[]", 0, "")
        assert Question(app_id="crm", body="Why?").audience == ()
    finally:
        engine.dispose()
