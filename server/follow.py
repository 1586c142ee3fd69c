"""Every node in step: this node's index and catalog follow the content changes other nodes make.

Each content transaction writes a row of the change log (`content_changes`, server/storage.py)
and, on PostgreSQL, `NOTIFY inflow_content, '<version>'`, both delivered at COMMIT. The
`Follower` (one per node, PostgreSQL only) listens on a connection of its own (psycopg async, in
autocommit mode) and on a notification calls `Library.catch_up()`, which re-reads the changed
aids and applies them to the index in one commit, then refreshes the catalog (docs/scale-out.md).
A burst of notifications costs one catch-up: the first applies every row committed so far, and
the ones it covered are skipped. A notification can be missed (the connection dropped, the node
was busy reconnecting), so the follower also catches up every `settings.follow_poll_seconds`
whatever it heard, and right after (re)connecting. A lost connection is made again with a
growing pause (0.5 s to 5 s); nothing here blocks the event loop.

The job `content-changes-prune` (daily) deletes change rows older than `settings.change_log_days`,
never rows newer than the newest complete index snapshot (a new node installs that snapshot and
applies the rows after it: server/snapshots.py). It runs on SQLite too: the rows are written
there as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import sqlalchemy as sa
from aiohttp import web

from server import keys
from server.db.cluster_tables import index_snapshots
from server.jobs import JobRun
from server.library import Library
from server.storage import CHANGES_CHANNEL, Storage

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5  # seconds before the first reconnection attempt; doubles up to BACKOFF_MAX
BACKOFF_MAX = 5.0  # short: /readyz says not ready until the listener is back
CONNECT_TIMEOUT = 5  # seconds (libpq's connect_timeout)
PRUNE_JOB = "content-changes-prune"
PRUNE_EVERY = 24 * 3600.0


def is_postgresql(url: str) -> bool:
    return bool(url) and sa.make_url(url).get_backend_name() == "postgresql"


def conninfo(url: str) -> str:
    """libpq's form of a SQLAlchemy URL (postgresql+psycopg://... -> postgresql://...)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Follower:
    """LISTEN for other nodes' content changes and catch this node's index and catalog up."""

    def __init__(self, library: Library, url: str, *, poll_seconds: float = 5.0) -> None:
        self.library = library
        self._conninfo = conninfo(url)
        self.poll_seconds = max(0.05, float(poll_seconds))
        self.connected = False
        self.latest = library.index.state.content_version  # the newest version heard of
        self.applied = 0  # change rows applied since start-up
        self.reconnects = 0  # connections made again after one was lost
        self.last_error = ""
        self.backend_pid: int | None = None  # the LISTEN session's PostgreSQL process
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="content-follower")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.connected = False

    # -- state (/metrics, /readyz) ---------------------------------------------------------------
    @property
    def lag(self) -> int:
        """Content versions this node's index is behind the newest one it heard of."""
        return max(0, self.latest - self.library.index.state.content_version)

    def status(self) -> tuple[bool, str]:
        """(ok, what /readyz says): listening, or reconnecting and why."""
        version = self.library.index.state.content_version
        if self.connected:
            behind = f", {self.lag} behind" if self.lag else ""
            return True, f"listening for content changes: index at version {version}{behind}"
        if not self.last_error:
            return False, "connecting to listen for content changes"
        return False, f"not listening for content changes (reconnecting): {self.last_error}"

    # -- the loop --------------------------------------------------------------------------------
    async def _run(self) -> None:
        delay = BACKOFF_FIRST
        ever = False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT
                )
            except (psycopg.Error, OSError) as exc:
                self._lost(exc)
                await self._catch_up()  # the store's own connection may still reach it: poll
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            try:
                self._conn = conn
                await conn.execute(f"LISTEN {CHANGES_CHANNEL}")
                self.connected, self.last_error = True, ""
                self.backend_pid = conn.info.backend_pid
                if ever:
                    self.reconnects += 1
                    log.info("listening for content changes again")
                ever, delay = True, BACKOFF_FIRST
                await self._catch_up()  # what was committed while nobody listened
                await self._listen(conn)
            except (psycopg.Error, OSError) as exc:
                self._lost(exc)
            finally:
                self.connected, self._conn = False, None
                with contextlib.suppress(Exception):
                    await conn.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            heard: int | None = None
            async for note in conn.notifies(timeout=self.poll_seconds, stop_after=1):
                with contextlib.suppress(ValueError):
                    heard = max(heard or 0, int(note.payload))
            if heard is not None:
                self.latest = max(self.latest, heard)
                if heard <= self.library.index.state.content_version:
                    continue  # a catch-up already applied it (a burst's later notifications)
            await self._catch_up()  # a notification, or the poll's time came

    async def _catch_up(self) -> None:
        try:
            applied = await self.library.catch_up()
        except Exception as exc:  # the database away: the next poll or notification tries again
            log.warning("catching up with the content changes failed: %s", exc)
            self.last_error = f"catching up failed: {exc}"[:500]
            return
        self.applied += applied
        self.latest = max(self.latest, self.library.index.state.content_version)

    def _lost(self, exc: BaseException) -> None:
        if self.connected or not self.last_error:
            log.warning("the content-change listener lost its connection: %s", exc)
        self.last_error = f"{type(exc).__name__}: {exc}".strip()[:500]
        self.connected = False


# -- pruning the change log -------------------------------------------------------------------


def _prune_sync(storage: Storage, days: int) -> int:
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    before = cutoff.isoformat(timespec="seconds").replace("+00:00", "Z")
    t = index_snapshots.c
    newest = storage.conn.execute(
        sa.select(sa.func.max(t.content_version)).where(t.complete == 1)
    ).scalar_one_or_none()
    return storage.prune_changes_sync(before, None if newest is None else int(newest))


async def prune_changes(app: web.Application) -> int:
    """Delete change rows older than `settings.change_log_days`, keeping every row after the
    newest complete index snapshot (a node starting from it applies them)."""
    storage = app[keys.LIBRARY].storage
    return await storage.call(_prune_sync, storage, app[keys.SETTINGS].change_log_days)


async def follow_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after library_ctx and jobs_ctx): the follower on PostgreSQL, and the prune
    job everywhere."""
    settings = app[keys.SETTINGS]

    async def prune(job: JobRun) -> None:
        pruned = await prune_changes(app)
        job.progress(pruned, pruned, f"{pruned} change rows pruned")

    app[keys.JOBS].register(PRUNE_JOB, PRUNE_EVERY, prune, once=True)  # one node a day
    follower: Follower | None = None
    if is_postgresql(settings.database_url):
        follower = Follower(
            app[keys.LIBRARY], settings.database_url, poll_seconds=settings.follow_poll_seconds
        )
        app[keys.FOLLOWER] = follower
        follower.start()
    try:
        yield
    finally:
        if follower is not None:
            await follower.stop()


__all__ = ["Follower", "follow_ctx", "prune_changes"]
