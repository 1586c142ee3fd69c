"""Sources' declarations (server/sources/models.py), an aid's `origin` and `transcript`, and
revision 0005: bad input is reported field by field with paths; a database at 0004 with real
content upgrades with every aid kept; the new tables are usable through the generic store; the
catalog's aid metas do not carry transcripts (memory)."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.analytics.pseudonym import Pseudonymizer, load_key
from server.db import migrate
from server.db.engine import sqlite_engine
from server.db.source_tables import TABLES
from server.models import Aid, FieldErrors, dump, read_only_fields, validate
from server.peer.store import PeerConflict, PeerStore, table_of
from server.sources.models import MAPPING_FIELDS, Source, SourceItem, SyncRun
from server.storage import Changes, Storage
from tests.fixtures.content_db import CONTENT_V0, load_dump, table_columns, table_rows

VTT = "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nOpen the expense form.\n"


def _errors(cls: type, data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(FieldErrors) as caught:
        validate(cls, data)
    return dict(caught.value.errors)


def test_a_bad_source_is_reported_field_by_field_with_paths() -> None:
    errors = _errors(
        Source,
        {
            "id": "Team Wiki",
            "name": "",
            "kind": "feed",
            "url": "ftp://wiki.example.org/feed",
            "allowed_hosts": ["wiki.example.org", "bad host!", "*.example.org"],
            "interval_minutes": 5,
            "page_cap": 0,
            "ref": "release-1",
            "publish": "sometimes",
            "extra": 1,
        },
    )
    assert errors == {
        "id": "'Team Wiki' is not a slug (lowercase letters, digits, '-')",
        "name": "must not be empty",
        "url": "must be an http(s) URL",
        "allowed_hosts[1]": (
            "'bad host!' is not a host name (or '*.example.com' for its subdomains)"
        ),
        "interval_minutes": "must be a whole number from 15 to 10080 (minutes)",
        "page_cap": "must be a whole number from 1 to 5000 (pages)",
        "ref": "only a git source has it (this one is a feed)",
        "publish": "'sometimes' is not one of auto, review",
        "extra": "unknown field(s): extra",
    }


def test_fields_of_another_kind_are_refused_unless_left_at_their_default() -> None:
    assert _errors(
        Source,
        {"id": "w", "name": "W", "kind": "git", "url": "https://git.example.org/r.git",
         "mode": "crawl", "path_prefix": "/docs"},
    ) == {
        "mode": "only a website source has it (this one is a git)",
        "path_prefix": "only a website source has it (this one is a git)",
    }  # fmt: skip
    # what GET serves (every field, defaults included) is accepted back, whatever the kind
    feed = validate(
        Source, {"id": "news", "name": "News", "kind": "feed", "url": "https://n.example.org/rss"}
    )
    served = dump(feed)
    assert served["mode"] == "sitemap" and served["ref"] == "main"
    assert served["last_status"] == "never" and served["publish"] == "review"
    writable = {k: v for k, v in served.items() if k not in read_only_fields(Source)}
    assert validate(Source, writable) == feed


def test_hosts_are_lowercased_and_a_source_reaches_the_host_of_its_url_by_default() -> None:
    site = validate(
        Source,
        {
            "id": "intranet",
            "name": "Intranet",
            "kind": "website",
            "url": "https://Intra.Example.org/sitemap.xml",
            "mode": "crawl",
        },
    )
    assert site.hosts() == ("intra.example.org",)
    wide = dataclasses.replace(
        site,
        allowed_hosts=validate(
            Source, {**dump(site), "allowed_hosts": ["Docs.Example.org", "*.example.org"]}
        ).allowed_hosts,
    )
    assert wide.hosts() == ("docs.example.org", "*.example.org")
    assert "last_status" in read_only_fields(Source) and "validators" in read_only_fields(Source)


def test_an_aid_transcript_belongs_to_a_video_and_must_parse() -> None:
    base = {"id": "expense-video", "title": "Filing an expense"}
    assert _errors(Aid, {**base, "transcript": VTT}) == {
        "transcript": "only a video aid (type: video) has a transcript"
    }
    errors = _errors(Aid, {**base, "type": "video", "transcript": "WEBVTT\n\nnot a cue\n"})
    assert list(errors) == ["transcript"]
    assert errors["transcript"].startswith("not a valid WebVTT or SRT transcript")
    video = validate(Aid, {**base, "type": "video", "transcript": VTT})
    assert video.transcript == VTT and video.origin == ""
    assert "origin" in read_only_fields(Aid) and "transcript" not in read_only_fields(Aid)


def test_mapping_fields_are_fields_of_an_aid() -> None:
    names = {f.name for f in dataclasses.fields(Aid)}
    assert set(MAPPING_FIELDS) <= names
    assert not {"title", "body", "summary", "transcript", "source"} & set(MAPPING_FIELDS)


def _at_0004(tmp_path: Path) -> Path:
    """The demo content as the code before migrations stored it, upgraded to 0004."""
    db = load_dump(CONTENT_V0, tmp_path / "data" / "inflow.sqlite3")
    key = load_key("", tmp_path / "data")
    engine = sqlite_engine(db)
    try:
        migrate.upgrade(engine, "content", pseudonymize=Pseudonymizer(key), to="0004")
        assert migrate.current(engine, "content") == "0004"
    finally:
        engine.dispose()
    return db


def _tables(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


async def test_upgrade_from_0004_keeps_every_aid_and_adds_the_sources_tables(
    tmp_path: Path,
) -> None:
    db = _at_0004(tmp_path)
    old_tables = _tables(db)
    assert not {t.name for t in TABLES.values()} & old_tables
    columns = {t: table_columns(db, t) for t in old_tables if t != "alembic_version"}
    before = {t: table_rows(db, t, columns[t]) for t in columns}
    assert len(before["aids"]) == 59

    storage = Storage(db, key_dir=tmp_path / "data")
    await storage.open()  # the start-up path upgrades
    try:
        assert storage.applied_revisions[0] == "0005"
        for table, rows in before.items():  # every row of every table, as it was
            assert table_rows(db, table, columns[table]) == rows, table
        assert {t.name for t in TABLES.values()} <= _tables(db)
        aids = await storage.all_aids()
        assert len(aids) == 59
        assert all(a.origin == "" and a.transcript == "" for a in aids)
        edited = await storage.get_aid("crm-create-opportunity")
        assert edited.version == 2 and edited.summary.endswith("(edited)")

        # the new tables are empty and usable through the generic store at once
        store = PeerStore(storage)
        source = await store.add(
            validate(
                Source,
                {"id": "crm-news", "name": "CRM news", "kind": "feed",
                 "url": "https://news.example.org/crm.xml", "apps": ["crm"]},
            )
        )  # fmt: skip
        assert source.created_at and (await store.get(Source, "crm-news")).apps == ("crm",)
        item = await store.add(
            SourceItem(source_id="crm-news", external_id="urn:1", aid_id="crm-news-first")
        )
        assert item.id and item.state == "active"
        with pytest.raises(PeerConflict):  # one item per (source, external id)
            await store.add(SourceItem(source_id="crm-news", external_id="urn:1"))
        run = await store.add(SyncRun(source_id="crm-news", started_at="2026-12-01T10:00:00Z"))
        assert run.status == "running" and run.failures == "[]"
        assert await store.count(SourceItem, source_id="crm-news") == 1
        await store.delete(Source, "crm-news")  # its items and runs go with it
        assert await store.count(SourceItem) == 0 and await store.count(SyncRun) == 0
    finally:
        await storage.close()


async def test_the_catalog_metas_leave_the_transcript_out(tmp_path: Path) -> None:
    """The catalog holds every aid in memory: a 500 kB transcript per video must stay on disk,
    like the body."""
    storage = Storage(tmp_path / "inflow.sqlite3")
    await storage.open()
    try:
        video = validate(
            Aid,
            {"id": "onboarding-video", "title": "Onboarding", "type": "video",
             "transcript": VTT, "body": "Watch it."},
        )  # fmt: skip
        sourced = dataclasses.replace(video, id="sourced-video", origin="training-feed")

        def save(changes: Changes) -> None:
            storage.save_aid_tx(video, "test", changes)
            storage.save_aid_tx(sourced, "test", changes)

        await storage.write(save)
        metas = {a.id: a for a in await storage.all_aid_metas()}
        assert metas["onboarding-video"].transcript == "" and metas["onboarding-video"].body == ""
        assert metas["sourced-video"].origin == "training-feed"  # the catalog knows the origin
        full = await storage.get_aid("onboarding-video")
        assert full.transcript == VTT
        # versions keep it (a rollback brings it back)
        version = await storage.call(storage.aid_version_sync, "onboarding-video", 1)
        assert version["transcript"] == VTT
    finally:
        await storage.close()


def test_every_source_table_is_the_stores() -> None:
    for cls, table in TABLES.items():
        assert table_of(cls) is table
    columns = {c.name for c in TABLES[SourceItem].columns}
    assert {"source_id", "external_id", "aid_id", "content_hash"} <= columns
    fks = [
        (fk.parent.name, fk.column.table.name, fk.ondelete) for fk in TABLES[SyncRun].foreign_keys
    ]
    assert fks == [("source_id", "sources", "CASCADE")]
    assert isinstance(TABLES[Source].c.active.type, sa.Integer)
