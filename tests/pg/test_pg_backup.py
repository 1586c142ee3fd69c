"""Backups on PostgreSQL and the copy from SQLite (`inflow backup`, `inflow restore`,
`inflow copy-to-postgres`) on the real cluster of `make postgres`: a pg_dump restored into new
databases serves the same content; a SQLite data folder copied to PostgreSQL serves the same
suggestions, and new writes there get fresh ids."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.cli import main as inflow
from server.db.engine import database_engine, sqlite_engine
from server.settings import Settings
from tests.backups import RATED, A, ok, view, write_some
from tests.pg.conftest import Databases
from tests.tokens import TokenMaker

PAGES = [
    "http://127.0.0.1:8080/demo/crm/opportunities/new",
    "http://127.0.0.1:8080/demo/expenses/reports/new",
    "http://127.0.0.1:8080/demo/hr/timeoff",
]


@pytest.fixture
def author(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="author-1", roles=("learner", "author"), groups=("sales",))


def _env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, content: str, events: str) -> None:
    monkeypatch.setenv("INFLOW_DATA_DIR", str(data_dir))
    monkeypatch.setenv("INFLOW_DATABASE_URL", content)
    monkeypatch.setenv("INFLOW_EVENTS_DATABASE_URL", events)


async def _view(
    client: TestClient, author: dict[str, str], admin: dict[str, str], learner: dict[str, str]
) -> dict[str, Any]:
    """What people see: suggestions on three pages, the edited aid's title, and `view`."""
    suggest = {}
    for page in PAGES:
        body = await ok(await client.post("/api/v1/suggest", json={"url": page}, headers=learner))
        suggest[page] = [a["id"] for a in body["aids"]]
    return {
        "suggest": suggest,
        "aid": (await ok(await client.get(f"{A}/aids/bk-edited", headers=author)))["title"],
        **await view(client, author, admin, learner),
    }


async def test_pg_dump_restored_into_new_databases_serves_the_same_content(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    pg: Databases,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    author: dict[str, str],
    admin: dict[str, str],
    learner: dict[str, str],
) -> None:
    """The operator of nodes on PostgreSQL backs up while they serve (pg_dump of both
    databases), then restores into new databases: a node started on them serves the same
    suggestions, history, usage, reports and tips. A restore into databases a node still uses
    is refused (one line, exit 2), and nothing changes for that node."""
    settings = make_settings(events_database_url=pg.new("events"))
    one = await aiohttp_client(create_app(settings))
    await write_some(one, author, learner, PAGES[0])
    before = await _view(one, author, admin, learner)
    _env(monkeypatch, settings.data_dir, settings.database_url, settings.events_database_url)
    assert inflow(["backup", str(tmp_path / "backups")]) == 0
    (backup,) = (tmp_path / "backups").iterdir()
    manifest = json.loads((backup / "manifest.json").read_text())
    assert set(manifest["files"]) == {"content.dump", "events.dump", "analytics.key"}
    out = capsys.readouterr().out
    assert (
        "Backup written" in out
        and "inflow_test:***@" in out
        and "inflow_test:inflow_test" not in out
    )

    content, events = pg.new(), pg.new()
    _env(monkeypatch, tmp_path / "restored", content, events)
    assert inflow(["restore", str(backup)]) == 0, capsys.readouterr().err
    two = await aiohttp_client(
        create_app(
            make_settings(
                data_dir=tmp_path / "restored",
                content_dir=None,
                database_url=content,
                events_database_url=events,
            )
        )
    )
    assert await _view(two, author, admin, learner) == before

    # node two uses the restored databases now: a second restore into them is refused
    _env(monkeypatch, tmp_path / "elsewhere", content, events)
    capsys.readouterr()
    assert inflow(["restore", str(backup)]) == 2
    err = capsys.readouterr().err
    assert "other session(s) use" in err and err.count("\n") == 1
    assert await _view(two, author, admin, learner) == before


def test_a_missing_pg_dump_is_one_line_and_leaves_no_backup(
    pg: Databases,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On a machine without postgresql-client the backup says what to install (exit 2, no
    traceback), and leaves no folder behind, finished or not."""
    _env(monkeypatch, tmp_path / "data", pg.new("content"), pg.new("events"))
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs"))
    assert inflow(["backup", str(tmp_path / "backups")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("inflow backup: pg_dump not found") and err.count("\n") == 1
    assert "postgresql-client" in err
    assert list((tmp_path / "backups").iterdir()) == []


def _counts(engine: sa.Engine) -> dict[str, int]:
    md = sa.MetaData()
    md.reflect(engine)
    with engine.connect() as conn:
        return {
            name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for name, table in md.tables.items()
            if name != "alembic_version"
        }


async def test_copy_to_postgres_serves_the_same_answers_and_new_ids_follow_the_copied_ones(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    pg: Databases,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    author: dict[str, str],
    admin: dict[str, str],
    learner: dict[str, str],
) -> None:
    """A single node on SQLite (the demo content, an edit, events, feedback, a tip) moves to
    PostgreSQL: every table holds as many rows as in SQLite, a node on PostgreSQL suggests the
    same aids on the same pages and shows the same history, usage, reports and tips, and new
    feedback gets the next id (the sequences moved past the copied ids: no duplicate-key 500)."""
    lite = make_settings(database_url="", data_dir=tmp_path / "lite")
    one = await aiohttp_client(create_app(lite))
    last_feedback = await write_some(one, author, learner, PAGES[0])
    before = await _view(one, author, admin, learner)
    await one.close()  # the copy refuses while a server uses the data folder

    content, events = pg.new(), pg.new("events")  # empty; and empty at head: both accepted
    monkeypatch.setenv("INFLOW_DATA_DIR", str(lite.data_dir))
    argv = ["copy-to-postgres", "--database-url", content, "--events-database-url", events]
    assert inflow(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "aids: " in out and "events: " in out and "Copied" in out
    copied = {}
    for url, path in ((content, lite.db_path), (events, lite.events_db_path)):
        post, sqlite = database_engine(url), sqlite_engine(path)
        try:
            want = _counts(sqlite)
            assert _counts(post) == want
            copied.update(want)
        finally:
            post.dispose()
            sqlite.dispose()
    assert copied["aids"] > 50 and copied["events"] == 3 and copied["peer_tips"] >= 1

    node = tmp_path / "node"
    node.mkdir()
    shutil.copyfile(lite.data_dir / "analytics.key", node / "analytics.key")  # one pseudonym
    settings = make_settings(
        data_dir=node, content_dir=None, database_url=content, events_database_url=events
    )
    two = await aiohttp_client(create_app(settings))
    assert await _view(two, author, admin, learner) == before
    feedback = {"aid_id": RATED, "helpful": False, "url": PAGES[0]}
    body = await ok(await two.post("/api/v1/feedback", json=feedback, headers=learner), 201)
    assert body["id"] == last_feedback + 1
    tip = {"url": PAGES[1], "title": "", "body": "Attach the receipt first."}
    await ok(await two.post("/api/v1/peer/tips", json=tip, headers=learner), 201)

    # a database that holds rows is never written into; a wrong URL is one line
    for bad, says in (
        (content, "is not empty"),
        ("sqlite:///x.db", "is not a PostgreSQL URL"),
        ("postgresql+psycopg://nobody:pw@127.0.0.1:1/none", "cannot connect to"),
    ):
        assert inflow(["copy-to-postgres", "--database-url", bad]) == 2
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1 and "pw@" not in err, err
