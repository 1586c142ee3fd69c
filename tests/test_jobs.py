"""Background jobs (server/jobs.py): one run of a job at a time, progress while it runs, a failing
run recorded without stopping the scheduler, nothing by itself when INFLOW_JOBS is off, and
runs in progress stopped when the server shuts down.

The waits below are hang guards (`asyncio.wait_for` of an event the job sets), not timings.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server import keys
from server.app import create_app
from server.jobs import JobRun, Jobs

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
