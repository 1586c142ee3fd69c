"""Background jobs (server/jobs.py): one run of a job at a time, progress while it runs, a failing
run recorded without stopping the scheduler, nothing by itself when INFLOW_JOBS is off, and
runs in progress stopped when the server shuts down.

The waits below are hang guards (`asyncio.wait_for` of an event the job sets), not timings.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server import keys
from server.app import create_app
from server.cluster import Cluster
from server.jobs import JobRun, JobRunsTable, Jobs
from server.storage import Storage

GUARD = 10.0  # seconds before a test that waits for an event calls it a hang


async def test_a_failing_run_is_recorded_and_the_scheduler_keeps_going() -> None:
    """A source whose feed is down must not stop every other sync (and its own next ones)."""
    jobs = Jobs(enabled=True)
    calls: list[str] = []
    second = asyncio.Event()
    other_ran = asyncio.Event()

    async def flaky(run: JobRun) -> None:
        calls.append(run.trigger)
        if len(calls) == 1:
            raise RuntimeError("the feed answered 503")
        second.set()

    async def other(run: JobRun) -> None:
        other_ran.set()

    jobs.register("source:news", 0.05, flaky, first_in=0)
    jobs.register("link-check", 0.05, other, first_in=0)
    jobs.start()
    try:
        await asyncio.wait_for(second.wait(), GUARD)
        await asyncio.wait_for(other_ran.wait(), GUARD)
        await jobs.wait("source:news")
        state = jobs.state("source:news")
        assert state["runs"] >= 2 and calls[:2] == ["schedule", "schedule"]
        assert state["last_error"] == ""  # the last run went well
    finally:
        await jobs.close()


async def test_the_error_of_a_failed_run_is_in_its_state() -> None:
    jobs = Jobs(enabled=False)

    async def broken(run: JobRun) -> None:
        run.progress(1, 4, "reading the sitemap")
        raise ValueError("no <urlset> in the sitemap")

    jobs.register("source:intranet", 3600, broken)
    try:
        assert await jobs.run_now("source:intranet")
        await jobs.wait("source:intranet")
        state = jobs.state("source:intranet")
        assert state["running"] is False and state["runs"] == 1
        assert state["last_error"] == "ValueError: no <urlset> in the sitemap"
        assert state["finished_at"] >= state["started_at"] != ""
        assert state["progress"] == {"done": 1, "total": 4, "message": "reading the sitemap"}
        # and it can run again
        assert await jobs.run_now("source:intranet")
        await jobs.wait("source:intranet")
        assert jobs.state("source:intranet")["runs"] == 2
    finally:
        await jobs.close()


async def test_run_now_while_running_is_false_and_progress_shows() -> None:
    """Two clicks on "Sync now" must not start two syncs of one source."""
    jobs = Jobs(enabled=False)
    reached = asyncio.Event()
    gate = asyncio.Event()

    async def slow(run: JobRun) -> None:
        run.progress(3, 10, "page 3 of 10")
        reached.set()
        await gate.wait()
        run.progress(10, 10, "done")

    jobs.register("source:docs", 0, slow)
    try:
        assert await jobs.run_now("source:docs") is True
        await asyncio.wait_for(reached.wait(), GUARD)
        assert await jobs.run_now("source:docs") is False
        state = jobs.state("source:docs")
        assert state["running"] is True and state["finished_at"] == ""
        assert state["progress"] == {"done": 3, "total": 10, "message": "page 3 of 10"}
        assert state["next_at"] is None  # every 0: only when asked
        gate.set()
        await jobs.wait("source:docs")
        state = jobs.state("source:docs")
        assert state["running"] is False and state["runs"] == 1
        assert state["progress"]["message"] == "done"
        assert await jobs.run_now("source:docs") is True
        await jobs.wait("source:docs")
    finally:
        await jobs.close()


async def test_with_jobs_off_nothing_runs_by_itself_but_run_now_does() -> None:
    jobs = Jobs(enabled=False)
    ran: list[str] = []

    async def fn(run: JobRun) -> None:
        ran.append(run.trigger)

    jobs.register("queue-refresh", 0.01, fn, first_in=0)
    jobs.start()  # does nothing: the scheduler is off
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        assert ran == [] and jobs.state("queue-refresh")["next_at"] is None
        assert await jobs.run_now("queue-refresh")
        await jobs.wait("queue-refresh")
        assert ran == ["manual"]
    finally:
        await jobs.close()


async def test_unknown_and_unregistered_jobs() -> None:
    jobs = Jobs(enabled=False)

    async def fn(run: JobRun) -> None:
        return None

    with pytest.raises(KeyError):
        await jobs.run_now("source:gone")
    assert jobs.state("source:gone")["registered"] is False
    jobs.register("source:gone", 60, fn)
    assert jobs.names() == ["source:gone"]
    jobs.unregister("source:gone")
    assert jobs.names() == []
    await jobs.close()


async def test_shutdown_stops_a_run_in_progress(aiohttp_client: Any, make_settings: Any) -> None:
    """The app's jobs close with the app: a run still going is cancelled, not left behind to
    write to a closed database."""
    client = await aiohttp_client(create_app(make_settings(jobs=False)))
    jobs = client.app[keys.JOBS]
    assert jobs.enabled is False
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def endless(run: JobRun) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    jobs.register("endless", 0, endless)
    assert await jobs.run_now("endless")
    await asyncio.wait_for(started.wait(), GUARD)
    await client.close()
    assert cancelled.is_set()
    state = jobs.state("endless")
    assert state["running"] is False
    assert state["last_error"].startswith("stopped")
    assert await jobs.run_now("endless") is False  # closed


# -- Many nodes: once-jobs (issue 15). Two `Jobs` on one database and one cluster stand for two
# nodes; on SQLite the cluster's lock is in-process (tests/pg/test_pg_cluster.py: PostgreSQL).


@pytest.fixture
async def shared(tmp_path: Path) -> AsyncIterator[tuple[Cluster, Storage, Storage]]:
    """One cluster and one database, opened twice (each node has its own connection)."""
    cluster = Cluster("cluster")
    one = Storage(tmp_path / "inflow.sqlite3")
    two = Storage(tmp_path / "inflow.sqlite3")
    await one.open()
    await two.open()
    try:
        yield cluster, one, two
    finally:
        await one.close()
        await two.close()
        await cluster.close()


def _nodes(shared: tuple[Cluster, Storage, Storage], enabled: bool) -> tuple[Jobs, Jobs]:
    cluster, one, two = shared
    return (
        Jobs(enabled=enabled, cluster=cluster, storage=one, node="node-1"),
        Jobs(enabled=enabled, cluster=cluster, storage=two, node="node-2"),
    )


async def _row(storage: Storage, name: str) -> dict[str, Any] | None:
    return await JobRunsTable(storage).get(name)


async def test_a_once_job_due_on_two_nodes_runs_once(
    shared: tuple[Cluster, Storage, Storage],
) -> None:
    """Two nodes both due to run the hourly link check: it runs once, and the other node's
    console says where it ran instead of running it again."""
    one, two = _nodes(shared, enabled=True)
    ran: list[str] = []

    def fn(node: str) -> Any:
        async def run(job: JobRun) -> None:
            ran.append(node)

        return run

    one.register("link-check", 3600, fn("node-1"), first_in=0)
    two.register("link-check", 3600, fn("node-2"), first_in=0)
    one.start()
    two.start()
    try:
        for _ in range(500):  # both schedulers have decided: run, or skip to the next hour
            states = [one.state("link-check"), two.state("link-check")]
            decided = all(s["next_at"] and s["node"] and not s["running"] for s in states)
            if decided and ran and not (one.running("link-check") or two.running("link-check")):
                break
            await asyncio.sleep(0.02)
        assert len(ran) == 1
        runner = ran[0]
        row = await _row(shared[1], "link-check")
        assert row is not None and row["node"] == runner and row["status"] == "ok"
        assert row["runs"] == 1
        for jobs in (one, two):
            state = jobs.state("link-check")
            assert state["node"] == runner and state["runs"] == 1 and state["last_error"] == ""
            # the next run is about an hour away on both nodes, not now
            wall = dt.datetime.fromisoformat(state["next_at"].replace("Z", "+00:00"))
            assert (wall - dt.datetime.now(dt.UTC)).total_seconds() > 3000
        idle = two if runner == "node-1" else one
        assert idle.state("link-check")["elsewhere"] is True
    finally:
        await one.close()
        await two.close()


async def test_run_now_is_false_while_another_node_runs_the_job(
    shared: tuple[Cluster, Storage, Storage],
) -> None:
    """ "Check now" on node two while node one checks: no second check; the page shows the run
    on node one. Once it ended, "Check now" on node two runs (asked for: no interval wait)."""
    one, two = _nodes(shared, enabled=False)
    reached, gate = asyncio.Event(), asyncio.Event()
    ran: list[str] = []

    async def slow(job: JobRun) -> None:
        ran.append("node-1")
        reached.set()
        await gate.wait()

    async def quick(job: JobRun) -> None:
        ran.append("node-2")

    one.register("link-check", 3600, slow)
    two.register("link-check", 3600, quick)
    try:
        assert await one.run_now("link-check") is True
        await asyncio.wait_for(reached.wait(), GUARD)
        assert await two.run_now("link-check") is False
        state = two.state("link-check")
        assert state["running"] is True and state["node"] == "node-1" and state["elsewhere"]
        assert state["progress"]["message"] == "running on node-1"
        row = await _row(shared[2], "link-check")
        assert row is not None and (row["status"], row["node"]) == ("running", "node-1")
        gate.set()
        await one.wait("link-check")
        assert await two.run_now("link-check") is True
        await two.wait("link-check")
        assert ran == ["node-1", "node-2"]
        row = await _row(shared[1], "link-check")
        assert row is not None and (row["status"], row["node"], row["runs"]) == ("ok", "node-2", 2)
    finally:
        gate.set()
        await one.close()
        await two.close()


async def test_per_node_jobs_run_on_every_node(shared: tuple[Cluster, Storage, Storage]) -> None:
    """once=False (a node's own cache, say): each node runs its own, at the same time."""
    one, two = _nodes(shared, enabled=False)
    both, gate = asyncio.Event(), asyncio.Event()
    ran: list[str] = []

    def fn(node: str) -> Any:
        async def run(job: JobRun) -> None:
            ran.append(node)
            if len(ran) == 2:
                both.set()
            await gate.wait()

        return run

    one.register("cache-warm", 60, fn("node-1"), once=False)
    two.register("cache-warm", 60, fn("node-2"), once=False)
    try:
        assert await one.run_now("cache-warm") and await two.run_now("cache-warm")
        await asyncio.wait_for(both.wait(), GUARD)
        gate.set()
        await one.wait("cache-warm")
        await two.wait("cache-warm")
        assert sorted(ran) == ["node-1", "node-2"]
        assert await _row(shared[1], "cache-warm") is None  # per node: no shared row
    finally:
        gate.set()
        await one.close()
        await two.close()


async def test_a_run_left_running_by_a_dead_node_is_failed_and_taken_over(
    shared: tuple[Cluster, Storage, Storage],
) -> None:
    """A node killed during the link check left its row `running`: the console must not say
    "checking now" forever, and the check must not wait an hour to run again."""
    _, storage, _ = shared
    await JobRunsTable(storage).started("link-check", "gone-node", "2020-01-01T00:00:00.000Z")
    await storage.call(
        lambda: storage.conn.exec_driver_sql(
            "UPDATE job_runs SET started_at = ? WHERE name = 'link-check'",
            (dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),),
        )
    )
    one, _two = _nodes(shared, enabled=True)
    ran = asyncio.Event()

    async def check(job: JobRun) -> None:
        ran.set()

    one.register("link-check", 3600, check, first_in=0)
    one.start()
    try:
        await asyncio.wait_for(ran.wait(), GUARD)  # not skipped: nobody ran it, it was lost
        await one.wait("link-check")
        row = await _row(storage, "link-check")
        assert row is not None and (row["node"], row["status"]) == ("node-1", "ok")
    finally:
        await one.close()


async def test_the_dead_node_s_row_is_marked_failed_when_a_node_starts(
    shared: tuple[Cluster, Storage, Storage],
) -> None:
    _, storage, _ = shared
    await JobRunsTable(storage).started("queue-refresh", "gone-node", "2026-01-01T00:00:00.000Z")
    one, _two = _nodes(shared, enabled=False)

    async def fn(job: JobRun) -> None:
        return None

    one.register("queue-refresh", 3600, fn)
    one.start()
    try:
        for _ in range(500):
            row = await _row(storage, "queue-refresh")
            if row is not None and row["status"] != "running":
                break
            await asyncio.sleep(0.02)
        assert row is not None and row["status"] == "failed"
        assert row["last_error"] == "stopped: node gone-node ended during the run"
        state = one.state("queue-refresh")
        assert state["running"] is False and state["node"] == "gone-node"
        assert state["last_error"] == "stopped: node gone-node ended during the run"
    finally:
        await one.close()


async def test_a_restarted_node_does_not_rerun_a_job_that_ran_within_its_interval(
    shared: tuple[Cluster, Storage, Storage],
) -> None:
    """A node restarted (same name) a minute after its hourly job ran: the job waits for the
    rest of its hour instead of running again at start-up; a manual run still goes. And closing
    right after a run ended returns (the scheduler's wait_for lost that cancellation on Python
    3.11, and the app's shutdown hung)."""
    _, storage, _ = shared
    ran: list[str] = []

    async def fn(job: JobRun) -> None:
        ran.append(job.trigger)

    before = Jobs(enabled=False, cluster=shared[0], storage=storage, node="node-1")
    before.register("queue-refresh", 3600, fn)
    assert await before.run_now("queue-refresh")
    await before.wait("queue-refresh")
    await before.close()

    after = Jobs(enabled=True, cluster=shared[0], storage=storage, node="node-1")
    after.register("queue-refresh", 3600, fn, first_in=0)
    after.start()
    try:
        for _ in range(500):
            state = after.state("queue-refresh")
            if state["next_at"] and not after.running("queue-refresh"):
                wall = dt.datetime.fromisoformat(state["next_at"].replace("Z", "+00:00"))
                if (wall - dt.datetime.now(dt.UTC)).total_seconds() > 3000:
                    break
            await asyncio.sleep(0.02)
        assert ran == ["manual"]  # not run again at start-up
        assert after.state("queue-refresh")["runs"] == 1
        assert await after.run_now("queue-refresh")
        await after.wait("queue-refresh")
        assert ran == ["manual", "manual"]
    finally:
        await after.close()
