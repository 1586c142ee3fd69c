"""`inflow backup` and `inflow restore` on SQLite: a backup taken while the server writes restores
into a new data folder, and the server started there serves the same aids, versions, events,
feedback and tips; a damaged backup and a running server are refused with one line, exit 2."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.cli import main as inflow
from server.settings import Settings
from tests.backups import A, ok, view, write_some
from tests.tokens import TokenMaker

PAGE = "http://127.0.0.1:8080/demo/crm/opportunities/new"


@pytest.fixture
def author(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="author-1", roles=("learner", "author"), groups=("sales",))


def _aid(aid_id: str, title: str) -> dict[str, Any]:
    return {"id": aid_id, "title": title, "summary": "s", "body": "b", "apps": ["crm"]}


async def _all_aids(client: TestClient, who: dict[str, str]) -> dict[str, tuple[int, str]]:
    aids: dict[str, tuple[int, str]] = {}
    cursor = ""
    while True:
        body = await ok(await client.get(f"{A}/aids?limit=50&cursor={cursor}", headers=who))
        aids.update({a["id"]: (a["version"], a["title"]) for a in body["aids"]})
        if not body["next_cursor"]:
            return aids
        cursor = body["next_cursor"]


def _data_dir_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setenv("INFLOW_DATA_DIR", str(data_dir))


async def test_a_backup_taken_while_the_server_writes_restores_the_same_content(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    author: dict[str, str],
    admin: dict[str, str],
    learner: dict[str, str],
) -> None:
    """The operator backs up a live server (the online backup API: no stop), loses the machine,
    restores the backup into a new data folder and starts Inflow there: every aid with its
    versions, the analytics events, the feedback and the learner's tips are as they were at the
    backup's moment, and the aids created while it ran are all there up to that moment, none
    missing in between (one consistent copy, not tables read at different times)."""
    settings = make_settings()
    one = await aiohttp_client(create_app(settings))
    await write_some(one, author, learner, PAGE)
    before = await view(one, author, admin, learner)
    aids_before = await _all_aids(one, author)

    stop = asyncio.Event()
    created: list[str] = []

    async def keep_writing() -> None:
        while not stop.is_set():
            aid_id = f"bk-live-{len(created):03d}"
            await ok(await one.post(f"{A}/aids", json=_aid(aid_id, "Live"), headers=author), 201)
            created.append(aid_id)

    writer = asyncio.create_task(keep_writing())
    while len(created) < 3:
        await asyncio.sleep(0.01)
    _data_dir_env(monkeypatch, settings.data_dir)
    assert await asyncio.to_thread(inflow, ["backup", str(tmp_path / "backups")]) == 0
    while len(created) < 3 + 3:  # and the server goes on writing after it
        await asyncio.sleep(0.01)
    stop.set()
    await writer
    out = capsys.readouterr().out
    assert "Backup written:" in out
    (backup,) = (tmp_path / "backups").iterdir()
    manifest = json.loads((backup / "manifest.json").read_text())
    assert set(manifest["files"]) == {"inflow.sqlite3", "events.sqlite3", "analytics.key"}
    kept = manifest["stores"]["content"]["content_version"]

    _data_dir_env(monkeypatch, tmp_path / "restored")
    assert inflow(["restore", str(backup)]) == 0
    assert "index is rebuilt" in capsys.readouterr().out
    two = await aiohttp_client(
        create_app(make_settings(data_dir=tmp_path / "restored", content_dir=None))
    )
    aids = await _all_aids(two, author)
    live = sorted(a for a in aids if a.startswith("bk-live-"))
    assert live == created[: len(live)] and len(live) >= 3  # a prefix: nothing missing between
    assert {a: v for a, v in aids.items() if a not in live} == aids_before
    assert aids["bk-edited"] == (2, "Second")
    assert await view(two, author, admin, learner) == before
    resp = await two.get(f"{A}/aids/{created[len(live)]}", headers=author)
    assert resp.status == 404  # written after the backup's moment
    # the restored server is at the backup's content version, its index rebuilt to agree
    assert await two.app[keys.LIBRARY].storage.content_version() == kept
    ready = await two.get("/readyz")
    assert ready.status == 200, await ready.text()
    assert (await ready.json())["checks"]["index"]["ok"]


async def test_a_damaged_backup_is_refused_and_nothing_is_restored(
    client: TestClient,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A backup file changed after it was written (a bad disk, a truncated copy): restore checks
    every file against the manifest's sha256 first and refuses, naming the file, with one line
    and exit status 2; nothing is written into the data folder."""
    _data_dir_env(monkeypatch, settings.data_dir)
    assert inflow(["backup", str(tmp_path / "backups")]) == 0
    (backup,) = (tmp_path / "backups").iterdir()
    db = backup / "inflow.sqlite3"
    data = bytearray(db.read_bytes())
    data[len(data) // 2] ^= 0xFF
    db.write_bytes(bytes(data))
    capsys.readouterr()
    _data_dir_env(monkeypatch, tmp_path / "restored")
    assert inflow(["restore", str(backup)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{db} does not match its sha256" in err and "nothing restored" in err
    assert not (tmp_path / "restored" / "inflow.sqlite3").exists()


async def test_restore_refuses_while_a_server_uses_the_data_folder(
    client: TestClient,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    learner: dict[str, str],
) -> None:
    """Restoring under a running server would swap the database file beneath its open
    connection (and its index): refused, saying which process holds the folder; the server
    goes on serving."""
    _data_dir_env(monkeypatch, settings.data_dir)
    assert inflow(["backup", str(tmp_path / "backups")]) == 0
    (backup,) = (tmp_path / "backups").iterdir()
    capsys.readouterr()
    assert inflow(["restore", str(backup)]) == 2
    err = capsys.readouterr().err
    assert "uses the data folder" in err and "stop it first" in err and err.count("\n") == 1
    resp = await client.post("/api/v1/suggest", json={"url": PAGE}, headers=learner)
    assert resp.status == 200 and (await resp.json())["aids"]


def test_keep_removes_older_backups_and_a_failed_backup_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The backup timer runs `inflow backup DIR --keep N`: only the newest N complete backups
    stay. A backup that fails (here: no database yet) leaves neither a folder under the final
    name nor its unfinished one."""
    _data_dir_env(monkeypatch, tmp_path / "data")
    dest = tmp_path / "backups"
    assert inflow(["backup", str(dest)]) == 2
    assert "nothing to back up" in capsys.readouterr().err
    assert list(dest.iterdir()) == []
    assert inflow(["migrate"]) == 0
    for _ in range(3):
        assert inflow(["backup", str(dest), "--keep", "2"]) == 0
    names = sorted(p.name for p in dest.iterdir())
    assert len(names) == 2 and all(n.startswith("inflow-") for n in names)


async def test_a_restore_over_a_crashed_servers_folder_serves_the_backup_not_its_leftovers(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    author: dict[str, str],
) -> None:
    """The usual restore: the server died (its database's -wal file left behind, its index ahead
    of the backup), the operator restores last night's backup into the same data folder. SQLite
    would apply the dead server's write-ahead log to the restored file (pages of another database:
    corruption or the lost writes back) and the index would list aids the database no longer
    has; the restore removes the log and empties the index, so the server serves the backup."""
    settings = make_settings()
    one = await aiohttp_client(create_app(settings))
    await ok(await one.post(f"{A}/aids", json=_aid("bk-kept", "Kept"), headers=author), 201)
    _data_dir_env(monkeypatch, settings.data_dir)
    assert inflow(["backup", str(tmp_path / "backups")]) == 0
    (backup,) = (tmp_path / "backups").iterdir()
    await ok(await one.post(f"{A}/aids", json=_aid("bk-after", "After"), headers=author), 201)
    # a crash: a write still in the -wal file when the process dies (kept aside, put back after
    # the clean close removed it)
    db = sqlite3.connect(settings.db_path)
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("UPDATE aids SET title = 'From the dead server' WHERE id = 'bk-kept'")
    db.commit()
    wal = settings.db_path.with_name(settings.db_path.name + "-wal")
    leftover = wal.read_bytes()
    db.close()
    await one.close()
    wal.write_bytes(leftover)
    capsys.readouterr()

    assert inflow(["restore", str(backup)]) == 0
    assert not wal.exists()
    two = await aiohttp_client(create_app(make_settings(content_dir=None)))
    kept = await ok(await two.get(f"{A}/aids/bk-kept", headers=author))
    assert kept["title"] == "Kept"
    assert (await two.get(f"{A}/aids/bk-after", headers=author)).status == 404
    ready = await two.get("/readyz")
    assert ready.status == 200 and (await ready.json())["checks"]["index"]["ok"]
    ids = set(await _all_aids(two, author))
    assert "bk-kept" in ids and "bk-after" not in ids
