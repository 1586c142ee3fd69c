"""Sources on many nodes (server/sources/service.py; docs/scale-out.md "Work that runs once"): two
in-process Inflow apps on one PostgreSQL, each with its own data folder, node name and cluster
connection, syncing another company's feed (Ledgerly's release notes) from a real HTTP server.

- "Sync now" on node two while node one syncs the same source is a 409 naming node one (the API
  and the console's button), not a second run writing the same entries;
- a node that starts while another node syncs leaves that run alone;
- a run that a stopped node left "running" is failed by a live node, saying why.

The waits poll for the outcome with a generous deadline; nothing is timed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.jobs import Jobs
from server.settings import Settings
from server.sources.service import SourceService
from tests.test_admin_console import sign_in
from tests.test_sources_console import words
from tests.test_sources_sync import FEED_PATH, A, add_source, serve, write_library
from tests.tokens import TokenMaker
from tests.upstream import Upstream

PROBLEM = "application/problem+json"
DEADLINE = 30.0  # seconds before a wait for an outcome calls it a failure
CHECK = 0.2  # cluster_check_seconds of the test nodes: the sweep runs every second
SLOW = "/slow?seconds=60"  # a source that is still being read while the test looks
MakeNode = Callable[[str], Awaitable[TestClient]]


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.25)  # an admin reloading the page, within the rate limit


@pytest.fixture
def make_node(
    make_settings: Callable[..., Settings], aiohttp_client: Any, tmp_path: Path
) -> MakeNode:
    """A node on the shared database: node-1 imports Ledgerly's library, the others find it.
    Schedulers off (nothing syncs by itself); "Sync now" still runs the source's job."""
    library = write_library(tmp_path / "ledgerly")

    async def make(name: str) -> TestClient:
        settings = make_settings(
            data_dir=tmp_path / name,
            node_name=name,
            content_dir=library if name == "node-1" else None,
            cluster_check_seconds=CHECK,
            link_check_hours=0,
            fetch_allow_private=True,
            jobs=False,
        )
        client: TestClient = await aiohttp_client(create_app(settings))
        return client

    return make


def service(client: TestClient) -> SourceService:
    return client.app[keys.SOURCES]


def jobs_of(client: TestClient) -> Jobs:
    return client.app[keys.JOBS]


async def runs_of(client: TestClient, admin: dict[str, str]) -> list[dict[str, Any]]:
    resp = await client.get(f"{A}/sources/vendor/runs", headers=admin)
    assert resp.status == 200, await resp.text()
    runs: list[dict[str, Any]] = (await resp.json())["runs"]
    return runs


async def sync_after_node_one(
    two: TestClient, admin: dict[str, str], upstream: Upstream, stopped: str
) -> None:
    """Once node one has stopped during its run `stopped`, node two syncs the source (from the
    real feed): its run adds the feed's 3 entries, and the stopped run is failed with nothing
    added (it stopped with node one, so it wrote nothing)."""
    serve(upstream, "vendor-notes.rss")
    source = await (await two.get(f"{A}/sources/vendor", headers=admin)).json()
    source["url"] = upstream.url(FEED_PATH)
    assert (await two.put(f"{A}/sources/vendor", json=source, headers=admin)).status == 200
    again = await two.post(f"{A}/sources/vendor/sync", headers=admin)
    assert again.status == 202, await again.text()
    await service(two).wait("vendor")
    runs = await runs_of(two, admin)
    assert {r["id"]: (r["status"], r["added"]) for r in runs} == {
        stopped: ("failed", 0),
        (await again.json())["run"]["id"]: ("ok", 3),
    }


async def test_sync_now_on_a_second_node_is_refused_while_the_first_syncs(
    make_node: MakeNode, admin: dict[str, str], upstream: Upstream, tokens: TokenMaker
) -> None:
    """Incident: "Sync now" was refused only while the same node synced the source. An admin
    clicked it on node two during node one's sync: two runs read the source at once and wrote
    the same entries twice. Now it is a 409 saying the sync runs on node one, from the API and
    from the console's button, and there is one run; once it is over, node two syncs."""
    one = await make_node("node-1")
    two = await make_node("node-2")
    await add_source(one, admin, upstream, url=upstream.url(SLOW))
    first = await one.post(f"{A}/sources/vendor/sync", headers=admin)
    assert first.status == 202, await first.text()
    run = (await first.json())["run"]

    second = await two.post(f"{A}/sources/vendor/sync", headers=admin)
    assert second.status == 409 and second.content_type == PROBLEM
    problem = await second.json()
    assert "running already (on node node-1)" in problem["detail"]
    assert problem["node"] == "node-1"
    # the console's button on node two says the same on the page
    csrf = await sign_in(two, tokens.token(sub="admin-1", roles=("learner", "admin")))
    page = await two.post("/admin/sources/vendor/sync", data={"csrf_token": csrf})
    assert page.status == 409
    assert "running already (on node node-1)" in words(await page.text())
    # deleting it on node two meanwhile is refused too (its sync would write into nothing)
    gone = await two.delete(f"{A}/sources/vendor?archive=1", headers=admin)
    assert gone.status == 409 and "node-1" in (await gone.json())["detail"]
    runs = await runs_of(two, admin)
    assert [(r["id"], r["status"]) for r in runs] == [(run["id"], "running")]

    # node one shuts down (its run is stopped, its lock goes): node two may sync now
    await one.close()
    await sync_after_node_one(two, admin, upstream, run["id"])


async def test_a_node_that_starts_leaves_the_sync_another_node_runs(
    make_node: MakeNode, admin: dict[str, str], upstream: Upstream
) -> None:
    """Incident: every node starting marked all "running" sync runs failed ("the server
    stopped"), as if they were its own left by a crash: a second node started during node one's
    sync, and the console said that sync had failed while node one was still writing it. A
    run whose node is alive (it holds the source's lock) is left alone."""
    one = await make_node("node-1")
    await add_source(one, admin, upstream, url=upstream.url(SLOW))
    first = await one.post(f"{A}/sources/vendor/sync", headers=admin)
    assert first.status == 202, await first.text()
    run = (await first.json())["run"]

    two = await make_node("node-2")
    got = await two.get(f"{A}/sources/vendor/runs/{run['id']}", headers=admin)
    assert got.status == 200
    assert ((await got.json())["status"], (await got.json())["error"]) == ("running", "")
    source = await (await two.get(f"{A}/sources/vendor", headers=admin)).json()
    assert source["last_status"] == "running"
    assert await service(two).fail_orphans() == 0  # the sweep leaves it alone too
    assert [r["status"] for r in await runs_of(two, admin)] == ["running"]
    assert service(one).progress("vendor") is not None  # node one is still at it


async def test_a_run_a_stopped_node_left_running_is_failed_by_a_live_node(
    make_node: MakeNode, admin: dict[str, str], upstream: Upstream
) -> None:
    """A node that stopped during a sync (its process killed: its lock went with its session)
    left the run "running": the console showed a sync in progress for good, until some node
    restarted. A live node that can take the source's lock fails it within seconds, saying
    which node stopped, and the source can be synced again."""
    one = await make_node("node-1")
    two = await make_node("node-2")
    serve(upstream, "vendor-notes.rss")
    await add_source(one, admin, upstream)
    # what a node killed during a sync leaves: its run and job row "running", no lock held
    table = jobs_of(one).table
    assert table is not None
    await table.started("source:vendor", "node-9", "2026-01-01T00:00:00.000Z")
    await service(one)._begin("vendor", "schedule", None)
    service(one)._running.clear()  # node one did not begin it: it only wrote what node-9 left

    async def failed() -> bool:
        return (await runs_of(two, admin))[0]["status"] == "failed"

    await until(failed, "a live node fails the run nobody runs")
    runs = await runs_of(two, admin)
    assert [(r["status"], r["error"]) for r in runs] == [
        ("failed", "the node running it (node-9) stopped")
    ]
    source = await (await two.get(f"{A}/sources/vendor", headers=admin)).json()
    assert source["last_status"] == "failed" and source["running"] is False
    again = await two.post(f"{A}/sources/vendor/sync", headers=admin)
    assert again.status == 202, await again.text()
    await service(two).wait("vendor")
    ran = {r["id"]: r["status"] for r in await runs_of(two, admin)}
    assert ran[(await again.json())["run"]["id"]] == "ok"


async def test_sync_now_of_an_inactive_source_runs_once_and_leaves_no_schedule(
    make_node: MakeNode, admin: dict[str, str], upstream: Upstream
) -> None:
    """An inactive source has no scheduled job, yet "Sync now" goes through one (the lock): it
    syncs, a second click on the other node meanwhile is refused, and afterwards the source
    still syncs only when asked."""
    one = await make_node("node-1")
    two = await make_node("node-2")
    await add_source(one, admin, upstream, url=upstream.url(SLOW), active=False)
    assert "source:vendor" not in jobs_of(one).names()
    first = await one.post(f"{A}/sources/vendor/sync", headers=admin)
    assert first.status == 202, await first.text()
    run = (await first.json())["run"]
    second = await two.post(f"{A}/sources/vendor/sync", headers=admin)
    assert second.status == 409 and (await second.json())["node"] == "node-1"
    await one.close()  # node one stops during its run: the run ends, failed, and so does the job

    await sync_after_node_one(two, admin, upstream, run["id"])
    assert "source:vendor" not in jobs_of(two).names()
