"""When sources sync by themselves (server/sources/service.py, the jobs of server/jobs.py).

A source that is due (it never synced, or its last sync is an interval old) must sync soon after
the server starts, after it is added and after it is made active again, not a whole interval
later; several due sources start a little apart. Real app with its scheduler on, a real feed on a
real HTTP server (tests/upstream.py), a real database; another company's library (Ledgerly).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.peer.store import PeerTx
from server.settings import Settings
from server.sources.sync import set_source_status
from server.storage import Changes
from tests.test_sources_sync import A, add_source, serve, service, write_library
from tests.upstream import Upstream

HOUR = 3600.0


@pytest.fixture
def ledgerly(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    """Ledgerly's library, fetching from 127.0.0.1 allowed, the scheduler off (tests turn it on)."""
    return make_settings(
        content_dir=write_library(tmp_path / "ledgerly"), fetch_allow_private=True, jobs=False
    )


def seconds_until(client: TestClient, source_id: str) -> float:
    """How long until the scheduler runs the source's job (as Jobs.state says)."""
    state = client.server.app[keys.JOBS].state(f"source:{source_id}")
    assert state["registered"], f"source {source_id} has no job"
    next_at = dt.datetime.fromisoformat(state["next_at"].replace("Z", "+00:00"))
    return (next_at - dt.datetime.now(dt.UTC)).total_seconds()


async def runs_of(client: TestClient, admin: dict[str, str], source_id: str) -> list[Any]:
    resp = await client.get(f"{A}/sources/{source_id}/runs", headers=admin)
    assert resp.status == 200
    runs: list[Any] = (await resp.json())["runs"]
    return runs


async def until_synced(client: TestClient, admin: dict[str, str], source_id: str) -> list[Any]:
    """Waits (within the test's timeout) for a finished run of the source; its runs."""
    while True:
        runs = await runs_of(client, admin, source_id)
        if runs and runs[0]["status"] != "running":
            return runs
        await asyncio.sleep(0.1)


async def test_a_new_source_syncs_by_itself_soon_after_it_is_added(
    aiohttp_client: Any,
    ledgerly: Settings,
    admin: dict[str, str],
    learner: dict[str, str],
    upstream: Upstream,
) -> None:
    """Incident: an admin added a feed source and nothing came for six hours (its interval): the
    first scheduled run was a whole interval after it was added, and `make run`'s demo sources
    had no aids at all after start-up."""
    client = await aiohttp_client(create_app(ledgerly.with_(jobs=True)))
    serve(upstream, "vendor-notes.rss")
    await add_source(client, admin, upstream, publish="auto")
    assert seconds_until(client, "vendor") < 60
    runs = await until_synced(client, admin, "vendor")
    assert [(r["trigger"], r["status"], r["added"]) for r in runs] == [("schedule", "ok", 3)]
    # the next run an interval after this one
    assert seconds_until(client, "vendor") > 5 * HOUR
    found = await client.get("/api/v1/search?q=release&app=ledgerly", headers=learner)
    assert found.status == 200


async def test_a_source_made_active_again_syncs_soon_when_it_is_due(
    aiohttp_client: Any, ledgerly: Settings, admin: dict[str, str], upstream: Upstream
) -> None:
    """Incident: a source switched off for a week and switched on again waited another whole
    interval before its first read."""
    client = await aiohttp_client(create_app(ledgerly.with_(jobs=True)))
    serve(upstream, "vendor-notes.rss")
    await add_source(client, admin, upstream, active=False)
    assert "source:vendor" not in client.server.app[keys.JOBS].names()
    current = await (await client.get(f"{A}/sources/vendor", headers=admin)).json()
    current["active"] = True
    assert (await client.put(f"{A}/sources/vendor", json=current, headers=admin)).status == 200
    assert seconds_until(client, "vendor") < 60
    runs = await until_synced(client, admin, "vendor")
    assert [(r["trigger"], r["status"]) for r in runs] == [("schedule", "ok")]


async def test_a_manual_sync_pushes_the_scheduled_one_an_interval_away(
    aiohttp_client: Any, ledgerly: Settings, admin: dict[str, str], upstream: Upstream
) -> None:
    """An admin who adds a source and clicks "Sync now" at once gets one run, not a second
    scheduled one a few seconds later."""
    client = await aiohttp_client(create_app(ledgerly.with_(jobs=True)))
    serve(upstream, "vendor-notes.rss")
    await add_source(client, admin, upstream)
    await service(client).sync("vendor")
    assert seconds_until(client, "vendor") > 5 * HOUR
    await asyncio.sleep(3.5)  # past the due source's delay: still only the manual run
    assert [r["trigger"] for r in await runs_of(client, admin, "vendor")] == ["manual"]


async def test_at_start_up_due_sources_sync_soon_a_little_apart_and_fresh_ones_wait(
    aiohttp_client: Any,
    ledgerly: Settings,
    admin: dict[str, str],
    upstream: Upstream,
) -> None:
    """Incident: after a restart every source waited a whole interval (or, fixed naively, all
    fifty started in the same second). Due ones (never synced, or synced two days ago with a
    six-hour interval) run within a minute, one after another; one synced an hour ago keeps its
    place, five hours on."""
    first = await aiohttp_client(create_app(ledgerly))  # scheduler off
    serve(upstream, "vendor-notes.rss")
    for n in range(5):
        await add_source(first, admin, upstream, id=f"never-{n}", name=f"Never {n}")
    await add_source(first, admin, upstream, id="overdue", name="Overdue")
    await add_source(first, admin, upstream, id="fresh", name="Fresh")
    await service(first).sync("overdue")
    await service(first).sync("fresh")
    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).isoformat()
    an_hour_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()

    def backdate(changes: Changes) -> None:
        tx = PeerTx(first.server.app[keys.LIBRARY].storage.conn)
        set_source_status(tx, "overdue", last_sync_at=long_ago.replace("+00:00", "Z"))
        set_source_status(tx, "fresh", last_sync_at=an_hour_ago.replace("+00:00", "Z"))

    await first.server.app[keys.LIBRARY].write(backdate)
    await first.close()

    again = await aiohttp_client(create_app(ledgerly.with_(jobs=True)))
    due = {s: seconds_until(again, s) for s in [*(f"never-{n}" for n in range(5)), "overdue"]}
    assert all(0 <= left < 60 for left in due.values()), due
    starts = sorted(round(left) for left in due.values())
    assert len(set(starts)) == len(starts), f"due sources start in the same second: {due}"
    assert 4 * HOUR < seconds_until(again, "fresh") <= 5 * HOUR
    runs = await until_synced(again, admin, "never-0")
    assert runs[0]["trigger"] == "schedule"
