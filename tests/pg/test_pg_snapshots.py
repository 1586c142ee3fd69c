"""Index snapshots on PostgreSQL (server/snapshots.py, docs/scale-out.md "A new node joins"): one
node stores a copy of its index in the database; a new node with an empty data folder installs it
and catches up from the change log instead of rebuilding the index from every aid. A snapshot that
is damaged, of another index schema or unsafe to unpack is refused, and the node rebuilds as before
and still serves. The library is not the demo's: a made-up veterinary practice's booking app."""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from index.schema import SCHEMA_VERSION
from server import keys
from server.app import create_app
from server.cli import main
from server.db.cluster_tables import index_snapshot_chunks, index_snapshots
from server.library import Library
from server.settings import Settings
from server.snapshots import (
    Snapshot,
    SnapshotRefused,
    list_snapshots_sync,
    publish_snapshot,
    unpack,
)
from server.storage import Storage

A = "/api/v1/admin"
BOOKINGS = "https://bookings.fernhill-vets.test"
APP: dict[str, Any] = {
    "id": "bookings",
    "name": "Fernhill bookings",
    "rules": [f"{BOOKINGS}/**"],
    "contexts": [
        {"id": "bookings-surgery", "name": "Surgery slots", "rules": [f"{BOOKINGS}/op/**"]}
    ],
}
AIDS = {
    "book-vaccination": ("Book a vaccination", "Pick the vaccine batch, then the nurse's slot."),
    "cancel-surgery": ("Cancel a surgery slot", "Release the theatre and call the owner."),
    "weigh-patient": ("Record a patient's weight", "Weigh the animal before any anaesthetic."),
}


def _aid(aid_id: str, title: str, body: str) -> dict[str, Any]:
    return {
        "id": aid_id,
        "title": title,
        "summary": title,
        "body": body,
        "apps": ["bookings"],
        "status": "published",
    }


@pytest.fixture
def settings_for(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> Callable[[str], Settings]:
    """A node's settings: its own data folder, the shared database, no scheduled jobs (the
    tests publish when they mean to)."""

    def make(name: str) -> Settings:
        return make_settings(data_dir=tmp_path / name, content_dir=None, jobs=False)

    return make


@pytest.fixture
async def one(
    settings_for: Callable[[str], Settings], aiohttp_client: Any, admin: dict[str, str]
) -> TestClient:
    """Node one, with the practice's app and aids written through the admin API. (The database
    fixture first: the apps close before their database is dropped.)"""
    client: TestClient = await aiohttp_client(create_app(settings_for("node-1")))
    resp = await client.post(f"{A}/apps", json=APP, headers=admin)
    assert resp.status == 201, await resp.text()
    for aid_id, (title, body) in AIDS.items():
        resp = await client.post(f"{A}/aids", json=_aid(aid_id, title, body), headers=admin)
        assert resp.status == 201, await resp.text()
    return client


def _library(client: TestClient) -> Library:
    return client.app[keys.LIBRARY]


async def _publish(client: TestClient) -> Snapshot | None:
    return await publish_snapshot(_library(client), "node-1")


async def _search(client: TestClient, who: dict[str, str], q: str) -> list[str]:
    resp = await client.get("/api/v1/search", params={"q": q}, headers=who)
    assert resp.status == 200, await resp.text()
    return [a["id"] for a in (await resp.json())["results"]]


def _engine(settings: Settings) -> sa.Engine:
    return sa.create_engine(settings.database_url, poolclass=sa.NullPool)


def _start_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "index ready at start-up" in r.getMessage()]


async def test_a_new_node_joins_from_the_snapshot_and_catches_up(
    one: TestClient,
    aiohttp_client: Any,
    settings_for: Callable[[str], Settings],
    admin: dict[str, str],
    learner: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A new node used to rebuild its index from every aid (minutes at 100k): it installs the
    newest snapshot instead, and the aid written after the snapshot is found too (catch-up from
    the change log), so the new node answers like the others."""
    snapshot = await _publish(one)
    assert snapshot is not None and snapshot.doc_count == len(AIDS) and snapshot.size > 0
    body = "Ring the owner when the kennel cough booster is due."
    resp = await one.post(
        f"{A}/aids", json=_aid("booster-reminder", "Booster reminders", body), headers=admin
    )
    assert resp.status == 201, await resp.text()

    caplog.set_level(logging.INFO, logger="server")
    two: TestClient = await aiohttp_client(create_app(settings_for("node-2")))
    library = _library(two)
    assert library.rebuilds == 0
    assert [line for line in _start_lines(caplog) if "snapshot" in line], caplog.text
    assert await _search(two, learner, "kennel cough booster") == ["booster-reminder"]
    assert await _search(two, learner, "vaccination") == ["book-vaccination"]
    assert await _search(two, learner, "theatre") == ["cancel-surgery"]
    assert (await library.agreement())["ok"]

    # Restarted later, behind the database: the change log brings it up to date, no download.
    await two.close()
    etag = (await one.get(f"{A}/aids/cancel-surgery", headers=admin)).headers["ETag"]
    resp = await one.delete(f"{A}/aids/cancel-surgery", headers={**admin, "If-Match": etag})
    assert resp.status == 200, await resp.text()
    caplog.clear()
    again: TestClient = await aiohttp_client(create_app(settings_for("node-2")))
    assert _library(again).rebuilds == 0
    assert [line for line in _start_lines(caplog) if "caught up" in line], caplog.text
    assert await _search(again, learner, "theatre") == []
    assert await _search(again, learner, "weight") == ["weigh-patient"]


async def test_a_damaged_snapshot_is_refused_and_the_node_rebuilds(
    one: TestClient,
    aiohttp_client: Any,
    settings_for: Callable[[str], Settings],
    learner: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A chunk changed in the database (a bad disk, a bad copy) must never become a node's
    index: its sha256 no longer matches, the node rebuilds from the database and serves."""
    snapshot = await _publish(one)
    assert snapshot is not None
    engine = _engine(settings_for("node-1"))
    chunks = index_snapshot_chunks
    with engine.begin() as conn:
        where = (chunks.c.snapshot_id == snapshot.id) & (chunks.c.seq == 0)
        data = conn.execute(sa.select(chunks.c.data).where(where)).scalar_one()
        damaged = bytes([data[0] ^ 0xFF]) + data[1:]
        conn.execute(sa.update(chunks).where(where).values(data=damaged))
    engine.dispose()

    caplog.set_level(logging.INFO, logger="server")
    two: TestClient = await aiohttp_client(create_app(settings_for("node-2")))
    assert "sha256 differs" in caplog.text
    assert _library(two).rebuilds == 1
    assert [line for line in _start_lines(caplog) if "rebuilt" in line], caplog.text
    assert await _search(two, learner, "vaccination") == ["book-vaccination"]


async def test_a_snapshot_of_another_index_schema_is_refused(
    one: TestClient,
    aiohttp_client: Any,
    settings_for: Callable[[str], Settings],
    learner: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """During an upgrade the newest snapshot may come from an Inflow whose index schema differs:
    installing it would search fields this version does not have. The node rebuilds instead."""
    snapshot = await _publish(one)
    assert snapshot is not None
    engine = _engine(settings_for("node-1"))
    with engine.begin() as conn:
        conn.execute(sa.update(index_snapshots).values(schema=index_snapshots.c.schema + 1))
    engine.dispose()

    caplog.set_level(logging.INFO, logger="server")
    two: TestClient = await aiohttp_client(create_app(settings_for("node-2")))
    assert "no complete index snapshot of index schema" in caplog.text
    assert _library(two).rebuilds == 1
    assert await _search(two, learner, "anaesthetic") == ["weigh-patient"]


async def test_only_the_newest_two_snapshots_are_kept(
    one: TestClient, settings_for: Callable[[str], Settings], admin: dict[str, str]
) -> None:
    """Every hour adds a snapshot (the whole index): without pruning the database would grow by
    an index an hour. The newest two stay (one being read while the next is written), with their
    chunks; the others and their chunks are gone. Nothing new to store: nothing stored. During
    an upgrade the other index schema's newest stay too (its nodes still join), not after a day."""
    engine = _engine(settings_for("node-1"))
    older = {}
    with engine.begin() as conn:
        for created in ("2020-01-01T00:00:00Z", "2999-01-01T00:00:00Z"):
            older[created] = conn.execute(
                sa.insert(index_snapshots)
                .values(
                    content_version=1,
                    schema=SCHEMA_VERSION - 1,
                    doc_count=0,
                    created_at=created,
                    complete=1,
                )
                .returning(index_snapshots.c.id)
            ).scalar_one()
    made = []
    for i in range(3):
        made.append(await _publish(one))
        assert await _publish(one) is None  # the same content version: nothing new
        aid = _aid(f"note-{i}", f"Clinical note {i}", "Write the note before the owner leaves.")
        resp = await one.post(f"{A}/aids", json=aid, headers=admin)
        assert resp.status == 201, await resp.text()
    assert all(m is not None for m in made)
    storage = _library(one).storage
    kept = list_snapshots_sync(storage)
    newest = [m.id for m in reversed(made[1:]) if m is not None]
    assert [s.id for s in kept] == [*newest, older["2999-01-01T00:00:00Z"]]
    with engine.connect() as conn:
        owners = conn.execute(sa.select(index_snapshot_chunks.c.snapshot_id).distinct()).scalars()
        assert sorted(owners) == sorted(newest)
        assert conn.execute(sa.select(sa.func.count()).select_from(index_snapshots)).scalar() == 3
    engine.dispose()


def _tar(members: list[tarfile.TarInfo], data: bytes = b"x") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member in members:
            if member.isfile():
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                tar.addfile(member)
    return buf.getvalue()


def _link(name: str, target: str) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = tarfile.SYMTYPE
    member.linkname = target
    return member


@pytest.mark.parametrize(
    "members",
    [
        [tarfile.TarInfo("../../escaped.txt")],
        [tarfile.TarInfo("/tmp/escaped.txt")],
        [tarfile.TarInfo("sub/escaped.txt")],
        [_link("STATE.json", "../../escaped.txt")],
    ],
    ids=["dotdot", "absolute", "subfolder", "symlink"],
)
def test_unpacking_refuses_anything_but_plain_index_files(
    tmp_path: Path, members: list[tarfile.TarInfo]
) -> None:
    """A snapshot archive is data from the database: a path leaving the folder it is unpacked
    into, or a link, could overwrite any file the server may write."""
    archive = tmp_path / "a" / "b" / "snapshot.tar.gz"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(_tar(members))
    with pytest.raises(SnapshotRefused, match="not an index file"):
        unpack(archive, archive.parent / "gen")
    assert not (tmp_path / "escaped.txt").exists()
    assert not (archive.parent / "gen" / "sub").exists()


async def test_a_stored_archive_with_a_path_outside_is_refused_and_the_node_rebuilds(
    one: TestClient,
    aiohttp_client: Any,
    settings_for: Callable[[str], Settings],
    learner: dict[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same, end to end: a snapshot row whose archive (right size, right sha256) holds
    `../` paths is refused at start-up; nothing lands outside, the node rebuilds and serves."""
    version = await _library(one).storage.content_version()
    archive = _tar([tarfile.TarInfo("../../escaped.txt"), tarfile.TarInfo("../../../escaped.txt")])
    engine = _engine(settings_for("node-1"))
    with engine.begin() as conn:
        snapshot_id = conn.execute(
            sa.insert(index_snapshots)
            .values(
                content_version=version,
                schema=SCHEMA_VERSION,
                doc_count=len(AIDS),
                size=len(archive),
                sha256=hashlib.sha256(archive).hexdigest(),
                node="intruder",
                created_at="2026-01-01T00:00:00Z",
                complete=1,
            )
            .returning(index_snapshots.c.id)
        ).scalar_one()
        conn.execute(
            sa.insert(index_snapshot_chunks).values(snapshot_id=snapshot_id, seq=0, data=archive)
        )
    engine.dispose()
    assert await _publish(one) is None  # the forged row is the newest: nothing new to store

    caplog.set_level(logging.INFO, logger="server")
    two: TestClient = await aiohttp_client(create_app(settings_for("node-2")))
    assert "not an index file" in caplog.text
    assert _library(two).rebuilds == 1
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path.parent / "escaped.txt").exists()
    assert await _search(two, learner, "vaccination") == ["book-vaccination"]


def test_inflow_snapshot_stores_one_now(
    settings_for: Callable[[str], Settings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`inflow snapshot` (before the first scheduled run, or before adding nodes): it brings the
    data folder's index up to date, stores it, and says so; run again with nothing new it stores
    nothing. On SQLite it says snapshots are for PostgreSQL instead of storing a useless copy."""
    settings = settings_for("cli")
    monkeypatch.setenv("INFLOW_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("INFLOW_DATABASE_URL", settings.database_url)
    assert main(["snapshot"]) == 0
    assert "Stored index snapshot" in capsys.readouterr().out
    assert main(["snapshot"]) == 0
    assert "nothing stored" in capsys.readouterr().out
    storage = Storage(settings.db_path, url=settings.database_url)
    assert len(list_snapshots_sync(storage)) == 1
    monkeypatch.setenv("INFLOW_DATABASE_URL", "")
    assert main(["snapshot"]) == 2
    assert "PostgreSQL" in capsys.readouterr().err
