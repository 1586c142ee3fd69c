"""The change log (`content_changes`, docs/scale-out.md): every content transaction writes the row
of its new version, naming what changed, and `Library.catch_up` applies rows another writer made
to this node's index and catalog. On SQLite here (one file, a second `Storage` on it plays the
other node); tests/pg/test_pg_follow.py runs two nodes on PostgreSQL. The library is not the
demo's: a made-up brewery's ordering app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.db.cluster_tables import content_changes, index_snapshots
from server.db.engine import begin_immediate, commit
from server.library import Library
from server.models import Aid
from server.storage import Changes, Storage

A = "/api/v1/admin"
ORDERS = "https://orders.hopfield-brewing.test"
APP: dict[str, Any] = {
    "id": "orders",
    "name": "Hopfield orders",
    "rules": [f"{ORDERS}/**"],
    "contexts": [{"id": "orders-kegs", "name": "Keg returns", "rules": [f"{ORDERS}/kegs/**"]}],
}


def _aid(aid_id: str, title: str, body: str = "Scan the keg's collar.") -> dict[str, Any]:
    return {
        "id": aid_id,
        "title": title,
        "summary": title,
        "body": body,
        "apps": ["orders"],
        "status": "published",
    }


@pytest.fixture
async def brewery(aiohttp_client: Any, make_settings: Any) -> TestClient:
    client: TestClient = await aiohttp_client(create_app(make_settings(content_dir=None)))
    return client


@pytest.fixture
async def other_node(brewery: TestClient) -> AsyncIterator[Storage]:
    """Another writer on the same database file (what a second node is on PostgreSQL)."""
    storage = Storage(brewery.app[keys.LIBRARY].storage.path)
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


async def _rows(storage: Storage) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        rows = storage.conn.execute(sa.select(content_changes).order_by(content_changes.c.version))
        return [
            {**r, "upserts": json.loads(r["upserts"]), "deletes": json.loads(r["deletes"])}
            for r in rows.mappings()
        ]

    return await storage.call(read)


async def _search(client: TestClient, who: dict[str, str], q: str) -> list[str]:
    resp = await client.get("/api/v1/search", params={"q": q}, headers=who)
    assert resp.status == 200, await resp.text()
    return [a["id"] for a in (await resp.json())["results"]]


async def test_every_content_write_logs_its_version_and_what_changed(
    brewery: TestClient, admin: dict[str, str]
) -> None:
    """Another node applies exactly the aids a row names: a row with the wrong ids (or none for
    a version) would leave that node's search serving the old aid or missing the new one."""
    storage = brewery.app[keys.LIBRARY].storage
    assert await _rows(storage) == []
    resp = await brewery.post(f"{A}/apps", json=APP, headers=admin)
    assert resp.status == 201, await resp.text()
    resp = await brewery.post(f"{A}/aids", json=_aid("keg-return", "Return a keg"), headers=admin)
    assert resp.status == 201, await resp.text()
    etag = resp.headers["ETag"]
    resp = await brewery.patch(
        f"{A}/aids/keg-return",
        json={"summary": "Collars first"},
        headers={**admin, "If-Match": etag},
    )
    assert resp.status == 200, await resp.text()
    resp = await brewery.get(f"{A}/aids/keg-return", headers=admin)
    resp = await brewery.delete(
        f"{A}/aids/keg-return", headers={**admin, "If-Match": resp.headers["ETag"]}
    )
    assert resp.status in (200, 204), await resp.text()
    mentor = {"id": "brewer-ann", "name": "Ann", "contact": "ann@hopfield.test", "apps": ["orders"]}
    resp = await brewery.post(f"{A}/mentors", json=mentor, headers=admin)
    assert resp.status == 201, await resp.text()

    rows = await _rows(storage)
    version = await storage.content_version()
    assert [r["version"] for r in rows] == list(range(version - 4, version + 1))
    app_row, created, edited, deleted, mentor_row = rows
    assert (app_row["catalog"], app_row["upserts"], app_row["deletes"]) == (1, [], [])
    assert (created["upserts"], created["deletes"], created["catalog"]) == (["keg-return"], [], 0)
    assert (edited["upserts"], edited["deletes"]) == (["keg-return"], [])
    assert (deleted["upserts"], deleted["deletes"]) == ([], ["keg-return"])
    assert (mentor_row["mentors"], mentor_row["upserts"], mentor_row["catalog"]) == (1, [], 0)
    assert all(r["at"].endswith("Z") for r in rows)


async def test_an_import_logs_the_changed_aids_and_nothing_when_nothing_changed(
    brewery: TestClient,
) -> None:
    storage = brewery.app[keys.LIBRARY].storage
    aids = [Aid(id=f"tap-{i}", title=f"Tap {i}", summary="s", body="b") for i in range(3)]
    report = await storage.import_content([], aids, "import")
    [row] = await _rows(storage)
    assert row["version"] == report["content_version"]
    assert row["upserts"] == ["tap-0", "tap-1", "tap-2"] and row["catalog"] == 0
    again = await storage.import_content([], aids, "import")  # unchanged: no version, no row
    assert again["content_version"] == report["content_version"]
    assert len(await _rows(storage)) == 1


async def test_catch_up_applies_another_writers_changes_to_search_and_suggest(
    brewery: TestClient, other_node: Storage, admin: dict[str, str], learner: dict[str, str]
) -> None:
    """The incident this guards against: a change written by another node reached this node's
    search only after a restart (each node updated its index after its own writes only)."""
    library: Library = brewery.app[keys.LIBRARY]
    assert (await brewery.post(f"{A}/apps", json=APP, headers=admin)).status == 201
    rebuilds, generation = library.rebuilds, library.index.generation

    def write(fn: Any) -> Any:
        return other_node.call(other_node.write_sync, fn)

    aid = Aid(
        id="keg-deposit", title="Keg deposit refunds", summary="s", body="Kegs.", apps=("orders",)
    )
    await write(lambda ch: other_node.save_aid_tx(replace(aid, status="published"), "ann", ch))
    assert await _search(brewery, learner, "deposit") == []  # not yet applied here
    assert await library.catch_up() == 1
    assert await _search(brewery, learner, "deposit") == ["keg-deposit"]
    assert library.index.generation > generation and library.rebuilds == rebuilds

    # an app rule changed elsewhere: this node's resolution follows
    app = await other_node.call(other_node.get_app_sync, "orders")
    rule = replace(app.contexts[0].rules[0], pattern=f"{ORDERS}/casks/**")
    ctx = replace(app.contexts[0], rules=(rule,))
    await write(lambda ch: other_node.save_app_tx(replace(app, contexts=(ctx,)), ch))
    await write(lambda ch: other_node.delete_aid_tx("keg-deposit", ch))
    assert await library.catch_up() == 2
    assert await _search(brewery, learner, "deposit") == []
    resp = await brewery.post("/api/v1/suggest", json={"url": f"{ORDERS}/casks/7"}, headers=learner)
    assert [c["id"] for c in (await resp.json())["contexts"]] == ["orders-kegs"]
    assert library.rebuilds == rebuilds
    assert await library.catch_up() == 0  # in step: nothing to do


async def test_a_write_here_after_another_writers_change_skips_nothing(
    brewery: TestClient, other_node: Storage, admin: dict[str, str], learner: dict[str, str]
) -> None:
    """Another node's change not yet applied, then a write on this node: applying only this
    node's own change would mark the index at the newer version and skip the other for good."""
    library: Library = brewery.app[keys.LIBRARY]
    assert (await brewery.post(f"{A}/apps", json=APP, headers=admin)).status == 201
    aid = Aid(id="cask-ale", title="Cask ale venting", summary="s", body="Spile.", apps=("orders",))

    def save(ch: Changes) -> Any:
        return other_node.save_aid_tx(replace(aid, status="published"), "ann", ch)

    await other_node.call(other_node.write_sync, save)
    resp = await brewery.post(f"{A}/aids", json=_aid("keg-wash", "Keg washing"), headers=admin)
    assert resp.status == 201
    assert await _search(brewery, learner, "venting") == ["cask-ale"]
    assert await _search(brewery, learner, "washing") == ["keg-wash"]
    assert (await library.agreement())["ok"]


async def test_a_pruned_gap_in_the_log_rebuilds_and_agrees(
    brewery: TestClient, other_node: Storage, admin: dict[str, str], learner: dict[str, str]
) -> None:
    """Rows pruned before this node applied them: it cannot know what changed, so it rebuilds
    from the database rather than serving a stale index forever."""
    library: Library = brewery.app[keys.LIBRARY]
    assert (await brewery.post(f"{A}/apps", json=APP, headers=admin)).status == 201
    for i in range(3):
        aid = Aid(
            id=f"hop-{i}", title=f"Hop variety {i}", summary="s", body="Hops.", apps=("orders",)
        )
        await other_node.call(
            other_node.write_sync,
            lambda ch, a=aid: other_node.save_aid_tx(replace(a, status="published"), "ann", ch),
        )
    pruned = await other_node.call(other_node.prune_changes_sync, "9999", None)
    assert pruned == 4  # the app's row and the three aids'
    rebuilds = library.rebuilds
    await library.catch_up()
    assert library.rebuilds == rebuilds + 1
    assert sorted(await _search(brewery, learner, "variety")) == ["hop-0", "hop-1", "hop-2"]
    assert (await library.agreement())["ok"]


async def test_the_prune_job_drops_old_rows_but_keeps_those_a_snapshot_still_needs(
    brewery: TestClient, admin: dict[str, str]
) -> None:
    """A new node installs the newest snapshot and then applies the rows after its version: had
    the daily prune removed them by age alone, that node would rebuild from scratch instead."""
    storage = brewery.app[keys.LIBRARY].storage
    assert (await brewery.post(f"{A}/apps", json=APP, headers=admin)).status == 201
    for i in range(3):
        resp = await brewery.post(f"{A}/aids", json=_aid(f"cask-{i}", f"Cask {i}"), headers=admin)
        assert resp.status == 201
    versions = [r["version"] for r in await _rows(storage)]
    assert len(versions) == 4

    def age_and_snapshot() -> None:
        conn = storage.conn
        begin_immediate(conn)
        conn.execute(sa.update(content_changes).values(at="2020-01-01T00:00:00Z"))
        conn.execute(
            sa.insert(index_snapshots).values(
                content_version=versions[1],
                schema=1,
                doc_count=1,
                created_at="2020-01-01T00:00:00Z",
                complete=1,
            )
        )
        commit(conn)

    await storage.call(age_and_snapshot)
    jobs = brewery.app[keys.JOBS]
    assert await jobs.run_now("content-changes-prune")
    await jobs.wait("content-changes-prune")
    assert jobs.state("content-changes-prune")["last_error"] == ""
    assert [r["version"] for r in await _rows(storage)] == versions[2:]
