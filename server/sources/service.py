"""Sources as a service: create, change and delete them, sync them (now or on their schedule),
and say what a run did. One per app (`keys.SOURCES`), opened in `sources_ctx`.

- Sources, their items and runs are stored through `PeerStore` (server/peer/store.py) in the
  content database's storage thread; every change of a source is audited.
- At most one run per source at a time across the nodes (a second `POST .../sync` is a 409,
  saying on which node it runs). Every run, scheduled or "Sync now", is a run of the source's job
  of server/jobs.py (`source:<id>`, every `interval_minutes` while the source is `active`; an
  inactive source's job is registered only for its manual run), so it holds the cluster lock
  `job:source:<id>` (server/cluster.py) and its state is shared in `job_runs`. "Sync now" starts
  the job with `run_now` and answers as soon as the run is stored.
- While a run goes, its progress (done, total, message) is kept here and served with the source.
- The names of the sources (for the learner's "From <source>") are kept in memory
  (server/sources/provenance.py), refreshed whenever a source changes.
- A run left "running" by a node that stopped is marked failed ("the node running it
  stopped") by a node that can take the source's lock (nobody runs it): at start-up, and on
  PostgreSQL every `sweep_seconds` (another node may die at any time). A run that a live node
  holds the lock of is left alone.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from aiohttp import web

from server import keys
from server.admin.common import field_errors, strip_read_only, who
from server.db.content_tables import aids
from server.errors import Conflict, NotFound
from server.fetch import FetchPolicy, SafeFetcher
from server.models import FieldErrors, dump, read_only_fields, validate
from server.peer.store import PeerTx
from server.sources.models import Source, SourceItem, SyncRun
from server.sources.provenance import SourceNames
from server.sources.sync import SyncEngine, set_source_status, summary_text
from server.storage import now_iso

if TYPE_CHECKING:
    from auth.identity import Identity
    from server.cluster import Cluster, Hold
    from server.jobs import JobRun, Jobs
    from server.library import Library
    from server.settings import Settings
    from server.storage import Changes, Storage

log = logging.getLogger(__name__)
R = TypeVar("R")

# What GET adds to a source (computed, read-only): whether a run goes, and how far it got.
SOURCE_COMPUTED = frozenset({"running", "progress"})
SOURCE_READ_ONLY = read_only_fields(Source) | SOURCE_COMPUTED
RUNS_LIMIT = 50
# A source that is due (never synced, or its last sync an interval old) runs this soon after
# start-up, its creation or its reactivation; several due sources start this far apart.
DUE_DELAY_SECONDS = 2.0
DUE_SPREAD_SECONDS = 1.0
# On PostgreSQL, runs left "running" by a node that stopped are looked for this many cluster
# check intervals apart (at least SWEEP_MIN_SECONDS): 10 s with the default 2 s checks.
SWEEP_CHECKS = 5
SWEEP_MIN_SECONDS = 1.0
STOPPED = "the node running it stopped"


class SourceNotFound(NotFound):
    """No source with that id."""


class SyncRunning(Conflict):
    """A sync of this source is running already (on this node or another)."""


@dataclass
class ManualRequest:
    """A "Sync now" waiting for the source's job to begin its run (`started`: the run, or what
    kept it from starting)."""

    identity: Identity | None
    started: asyncio.Future[RunState]


@dataclass
class RunState:
    """A run in progress (kept in memory while it goes)."""

    run: SyncRun
    done: int = 0
    total: int = 0
    message: str = "starting"
    job: JobRun | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def progress(self, done: int, total: int, message: str) -> None:
        self.done, self.total, self.message = done, total, message[:200]
        if self.job is not None:
            self.job.progress(done, total, message)

    def json(self) -> dict[str, Any]:
        return {
            "run_id": self.run.id,
            "done": self.done,
            "total": self.total,
            "message": self.message,
        }


def job_name(source_id: str) -> str:
    return f"source:{source_id}"


class SourceService:
    def __init__(
        self,
        settings: Settings,
        library: Library,
        engine: SyncEngine,
        jobs: Jobs | None,
        cluster: Cluster | None = None,
    ) -> None:
        self.settings = settings
        self.library = library
        self.engine = engine
        self.jobs = jobs
        self.cluster = cluster
        self.names = SourceNames()
        self._running: dict[str, RunState] = {}
        self._manual: dict[str, ManualRequest] = {}  # "Sync now" handed to the source's job
        self._sweep: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_slot = float("-inf")  # monotonic time of the last due source's first run

    @property
    def storage(self) -> Storage:
        return self.library.storage

    # -- life -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Runs that stopped nodes left "running" are failed (not those a live node runs);
        names loaded; jobs registered; on PostgreSQL the sweep for such runs started."""
        await self.fail_orphans()
        sources = await self._read(lambda tx: tx.list(Source))
        self.names.refresh(sources)
        for source in sorted(sources, key=lambda s: (s.last_sync_at, s.id)):
            self._schedule(source)  # the longest waiting first
        if self.cluster is not None and self.cluster.shared:
            self._sweep = asyncio.create_task(self._sweep_loop(), name="sources-sweep")

    @property
    def sweep_seconds(self) -> float:
        """How often (PostgreSQL) a node looks for runs that a stopped node left "running"."""
        check = self.cluster.check_seconds if self.cluster is not None else 2.0
        return max(SWEEP_MIN_SECONDS, SWEEP_CHECKS * check)

    async def fail_orphans(self) -> int:
        """Mark failed the runs left "running" that nobody runs: a run's source lock
        (`job:source:<id>`) is held by the node running it for the whole run, so a lock this
        node can take means the node that began the run has stopped (its session, and lock,
        ended with it). Runs of sources whose lock is held elsewhere are left alone. The
        number of runs failed."""
        running = await self._read(lambda tx: tx.list(SyncRun, status="running"))
        failed = 0
        for source_id in sorted({r.source_id for r in running} - set(self._running)):
            async with self._exclusive(source_id) as hold:
                if not hold or source_id in self._running:  # a live node runs it
                    continue
                error = STOPPED
                row = await self._job_row(source_id)
                if row is not None and row["status"] != "ok" and row["node"]:
                    error = f"the node running it ({row['node']}) stopped"
                failed += await self.library.write(partial(self._fail_left, source_id, error))
        return failed

    def _fail_left(self, source_id: str, error: str, changes: Changes) -> int:
        """In the storage thread, holding the source's lock: its runs still "running" failed."""
        tx = PeerTx(self.storage.conn)
        left = tx.list(SyncRun, source_id=source_id, status="running")
        for run in left:
            tx.update(dataclasses.replace(run, status="failed", finished_at=now_iso(), error=error))
            log.warning("sync run %s of source %s failed: %s", run.id, source_id, error)
        source = tx.find(Source, source_id)
        if source is not None and source.last_status == "running":
            set_source_status(tx, source_id, last_status="failed")
        return len(left)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_seconds)
            try:
                await self.fail_orphans()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away a moment: the next sweep tries again
                log.warning("sources: runs left running could not be checked (%s)", exc)

    async def _job_row(self, source_id: str) -> dict[str, Any] | None:
        table = self.jobs.table if self.jobs is not None else None
        if table is None:
            return None
        with contextlib.suppress(Exception):
            return await table.get(job_name(source_id))
        return None

    def _exclusive(self, source_id: str) -> AbstractAsyncContextManager[Hold | bool]:
        """The source's lock, the one its job's runs hold (`job:source:<id>`)."""
        if self.cluster is not None:
            return self.cluster.exclusive("job:" + job_name(source_id))
        return contextlib.nullcontext(True)

    async def stop(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweep
            self._sweep = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- reading ----------------------------------------------------------------------------
    async def list(self) -> builtins.list[Source]:
        return await self._read(lambda tx: tx.list(Source, order_by="name"))

    async def get(self, source_id: str) -> Source:
        found = await self._read(lambda tx: tx.find(Source, source_id))
        if found is None:
            raise SourceNotFound(f"No source with id {source_id!r}.")
        return found

    def source_json(self, source: Source) -> dict[str, Any]:
        data = dump(source)
        state = self._running.get(source.id)
        data["running"] = state is not None
        data["progress"] = state.json() if state is not None else None
        return data

    async def runs(self, source_id: str, limit: int = RUNS_LIMIT) -> builtins.list[SyncRun]:
        await self.get(source_id)
        return await self._read(
            lambda tx: tx.list(SyncRun, source_id=source_id, order_by="-started_at", limit=limit)
        )

    async def run(self, source_id: str, run_id: str) -> SyncRun:
        found = await self._read(lambda tx: tx.find(SyncRun, run_id))
        if found is None or found.source_id != source_id:
            raise NotFound(f"No run {run_id!r} of source {source_id!r}.")
        return found

    async def items(self, source_id: str) -> builtins.list[SourceItem]:
        await self.get(source_id)
        return await self._read(
            lambda tx: tx.list(SourceItem, source_id=source_id, order_by="external_id")
        )

    def progress(self, source_id: str) -> dict[str, Any] | None:
        state = self._running.get(source_id)
        return state.json() if state is not None else None

    # -- writing ----------------------------------------------------------------------------
    def parse(self, data: Mapping[str, Any], current: Source | None) -> Source:
        """A source from a request body: read-only fields only as GET answered them; 422s name
        the fields."""
        sent = dict(data)
        if current is not None:
            if sent.get("id", current.id) != current.id:
                raise field_errors(FieldErrors([("id", "differs from the one in the URL")]))
            sent["id"] = current.id
        if current is not None:  # computed (a run's progress moves): ignored when sent back
            sent = {k: v for k, v in sent.items() if k not in SOURCE_COMPUTED}
        sent = strip_read_only(
            sent, dump(current) if current is not None else None, SOURCE_READ_ONLY
        )
        try:
            source = validate(Source, sent)
        except FieldErrors as exc:
            raise field_errors(exc) from exc
        unknown = [a for a in source.apps if a not in self.library.catalog.apps]
        if unknown:
            raise field_errors(FieldErrors([("apps", f"unknown app(s): {', '.join(unknown)}")]))
        return source

    async def create(self, identity: Identity, data: Mapping[str, Any]) -> Source:
        source = self.parse(data, None)

        def op(changes: Changes) -> Source:
            tx = PeerTx(self.storage.conn)
            if tx.find(Source, source.id) is not None:
                raise Conflict(f"A source with id {source.id!r} exists already.")
            stored = tx.add(source)
            self._audit(identity, "source.create", stored)
            return stored

        stored = await self.library.write(op)
        await self._changed(stored)
        return stored

    async def replace(self, identity: Identity, source_id: str, data: Mapping[str, Any]) -> Source:
        current = await self.get(source_id)
        source = self.parse(data, current)

        def op(changes: Changes) -> Source:
            tx = PeerTx(self.storage.conn)
            now = tx.find(Source, source_id)
            if now is None:
                raise SourceNotFound(f"No source with id {source_id!r}.")
            keep = {n: getattr(now, n) for n in read_only_fields(Source) if n != "updated_at"}
            stored = tx.update(dataclasses.replace(source, **keep))
            self._audit(identity, "source.update", stored)
            return stored

        stored = await self.library.write(op)
        await self._changed(stored)
        return stored

    async def delete(self, identity: Identity, source_id: str, *, archive: bool) -> None:
        """Delete a source. While aids it made are not archived it is a 409, unless `archive`:
        then they are archived first. Its aids stay (archived) and become Inflow's own (no
        origin); its items and runs go with it."""
        if source_id in self._running:
            raise await self._refused(source_id, "; wait for it to finish")

        def op(changes: Changes) -> int:
            tx = PeerTx(self.storage.conn)
            source = tx.find(Source, source_id)
            if source is None:
                raise SourceNotFound(f"No source with id {source_id!r}.")
            made = [
                (str(r.id), str(r.status))
                for r in tx.execute(
                    sa.select(aids.c.id, aids.c.status).where(aids.c.origin == source_id)
                )
            ]
            live = [aid_id for aid_id, status in made if status != "archived"]
            if live and not archive:
                raise Conflict(
                    f"The source {source.name!r} has {len(live)} aid(s) that are not archived. "
                    "Delete it with ?archive=1 to archive them first.",
                    aids=live[:50],
                )
            actor = who(identity)
            saved_by = identity.username or identity.subject
            for aid_id, _ in made:
                aid = self.storage.get_aid_sync(aid_id)
                self.storage.save_aid_tx(
                    dataclasses.replace(aid, status="archived", origin=""), saved_by, changes
                )
                self.storage.audit_add_tx(
                    actor,
                    "aid.archive",
                    "aid",
                    aid.id,
                    {"from": aid.status, "reason": f"source {source_id} deleted"},
                )
            tx.delete(Source, source_id)  # items and runs go with it
            self._audit(identity, "source.delete", source, {"archived": len(made)})
            return len(made)

        async with self._exclusive(source_id) as hold:  # no sync of it runs on any node
            if not hold:
                raise await self._refused(source_id, "; wait for it to finish")
            await self.library.write(op)
        self.names.forget(source_id)
        self._unschedule(source_id)

    # -- syncing ----------------------------------------------------------------------------
    async def start_sync(self, source_id: str, identity: Identity | None) -> SyncRun:
        """Sync now: the source's job runs now (holding its cluster lock), in the background;
        the run as it starts (status running). 409 while a sync of the source runs, on this
        node or another (the problem says which)."""
        if self.jobs is None:  # no jobs (a bare service): a task of its own, as a job would
            state = await self._begin(source_id, "manual", identity)
            task = asyncio.create_task(self._go_logged(source_id, state), name=f"sync-{source_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return state.run
        if source_id in self._running or source_id in self._manual:
            raise await self._refused(source_id)
        source = await self.get(source_id)
        name = job_name(source_id)
        if name not in self.jobs.names():  # inactive: its job exists for this run only
            self._register(source, every=0, first_in=None)
        request = ManualRequest(identity, asyncio.get_running_loop().create_future())
        self._manual[source_id] = request
        try:
            if not await self.jobs.run_now(name):
                self._manual.pop(source_id, None)
                raise await self._refused(source_id)
            ended = asyncio.ensure_future(self.jobs.wait(name))
            either: set[asyncio.Future[Any]] = {request.started, ended}
            try:
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ended.cancel()
            if not request.started.done():  # the run ended before its function began
                raise SyncRunning(
                    "The sync could not start (this node lost the source's lock); try again.",
                    source_id=source_id,
                )
            return request.started.result().run
        finally:
            if self._manual.get(source_id) is request:
                del self._manual[source_id]
            if not request.started.done():
                request.started.cancel()
            if not source.active and not self.jobs.running(name):
                with contextlib.suppress(SourceNotFound):
                    self._schedule(await self.get(source_id))  # still inactive: no job

    async def _refused(self, source_id: str, then: str = "") -> SyncRunning:
        """The 409 of a sync (or a delete) asked for while one runs: here, or on the node the
        shared `job_runs` row names."""
        node = ""
        if source_id not in self._running and source_id not in self._manual:
            row = await self._job_row(source_id)
            if row is not None and row["status"] == "running":
                node = str(row["node"]) if row["node"] != self.settings.node_name else ""
        where = f" (on node {node})" if node else ""
        extra = {"node": node} if node else {}
        return SyncRunning(
            f"A sync of this source is running already{where}{then}.",
            source_id=source_id,
            **extra,
        )

    async def sync(
        self, source_id: str, *, trigger: str = "manual", job: JobRun | None = None
    ) -> SyncRun:
        """Run a sync and wait for it (the scheduled job; tests). 409 while one runs."""
        state = await self._begin(source_id, trigger, None)
        state.job = job
        return await self._go(source_id, state)

    async def _begin(self, source_id: str, trigger: str, identity: Identity | None) -> RunState:
        if source_id in self._running:
            raise await self._refused(source_id)
        placeholder = RunState(SyncRun(source_id=source_id))
        self._running[source_id] = placeholder  # taken before any await: no second run slips in
        try:
            started_by = ""
            if identity is not None:
                started_by = identity.username or identity.subject

            def op(changes: Changes) -> SyncRun:
                tx = PeerTx(self.storage.conn)
                source = tx.find(Source, source_id)
                if source is None:
                    raise SourceNotFound(f"No source with id {source_id!r}.")
                run = tx.add(
                    SyncRun(
                        source_id=source_id,
                        trigger=trigger,
                        started_by=started_by,
                        started_at=now_iso(),
                    )
                )
                set_source_status(tx, source_id, last_status="running")
                return run

            placeholder.run = await self.library.write(op)
        except BaseException:
            self._running.pop(source_id, None)
            raise
        return placeholder

    async def _go(self, source_id: str, state: RunState) -> SyncRun:
        try:
            source = await self.get(source_id)
            run = await self.engine.run(source, state.run, state.progress)
            log.info("source %s synced: %s", source_id, summary_text(run))
            with contextlib.suppress(SourceNotFound):  # the next run: an interval after this one
                self._schedule(await self.get(source_id))
            return run
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.engine.fail(source_id, state.run, "cancelled"))
            raise
        finally:
            self._running.pop(source_id, None)
            state.finished.set()

    async def _go_logged(self, source_id: str, state: RunState) -> None:
        """A manual run in its own task: nobody awaits it, so what goes wrong is logged."""
        try:
            await self._go(source_id, state)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sync of source %s failed", source_id)

    async def wait(self, source_id: str) -> None:
        """Until the running sync of a source (if any) has finished."""
        state = self._running.get(source_id)
        if state is not None:
            await state.finished.wait()

    # -- scheduling ---------------------------------------------------------------------------
    def _schedule(self, source: Source) -> None:
        """The source's job (`source:<id>`): every `interval_minutes` while it is active, the
        next run an interval after its last sync. A source that is due (it never synced, or its
        last sync is an interval old: at start-up, when it is added or made active again, when
        its interval shrinks) runs soon, not a whole interval later; such runs are spread
        `DUE_SPREAD_SECONDS` apart so that fifty sources do not all start in the same second."""
        if self.jobs is None:
            return
        if not source.active:  # (a manual run in progress finishes on its own)
            self.jobs.unregister(job_name(source.id))
            return
        every = source.interval_minutes * 60
        first_in = self._due_in(source.last_sync_at, every)
        if first_in is None:
            first_in = self._due_slot()
        self._register(source, every, first_in)

    def _register(self, source: Source, every: float, first_in: float | None) -> None:
        """The source's job: a "Sync now" waiting for it (`_manual`) makes it a manual run,
        else it is the scheduled one (skipped while the source is inactive)."""
        assert self.jobs is not None
        source_id = source.id

        async def job(run: JobRun) -> None:
            request = self._manual.pop(source_id, None)
            if request is not None:
                await self._manual_run(source_id, request, run)
                return
            try:
                current = await self.get(source_id)
            except SourceNotFound:
                return
            if not current.active or source_id in self._running:
                return
            await self.sync(source_id, trigger="schedule", job=run)

        self.jobs.register(job_name(source_id), every, job, first_in=first_in)

    async def _manual_run(self, source_id: str, request: ManualRequest, run: JobRun) -> None:
        """A "Sync now" inside the source's job: the run is stored and handed to the waiting
        request, then it goes."""
        try:
            state = await self._begin(source_id, "manual", request.identity)
        except BaseException as exc:
            if not request.started.done():
                request.started.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return  # the request answers it (a 404, a 409): nothing ran
        state.job = run
        if not request.started.done():
            request.started.set_result(state)
        await self._go(source_id, state)

    @staticmethod
    def _due_in(last_sync_at: str, every: float) -> float | None:
        """Seconds until a source synced at `last_sync_at` is due again; None: due now (never
        synced, an unreadable time, or an interval old already)."""
        if not last_sync_at:
            return None
        try:
            last = dt.datetime.fromisoformat(last_sync_at.replace("Z", "+00:00"))
        except ValueError:
            return None
        if last.tzinfo is None:
            last = last.replace(tzinfo=dt.UTC)
        left = every - (dt.datetime.now(dt.UTC) - last).total_seconds()
        return left if left > 0 else None

    def _due_slot(self) -> float:
        """When a due source runs: `DUE_DELAY_SECONDS` from now, or `DUE_SPREAD_SECONDS` after
        the last due source given a slot, whichever is later."""
        now = time.monotonic()
        at = max(now + DUE_DELAY_SECONDS, self._last_slot + DUE_SPREAD_SECONDS)
        self._last_slot = at
        return at - now

    def _unschedule(self, source_id: str) -> None:
        if self.jobs is not None:
            self.jobs.unregister(job_name(source_id))

    async def _changed(self, source: Source) -> None:
        self.names.set(source)
        self._schedule(source)

    # -- helpers ----------------------------------------------------------------------------
    async def _read(self, fn: Callable[[PeerTx], R]) -> R:
        storage = self.storage
        return await storage.call(lambda: fn(PeerTx(storage.conn)))

    def _audit(
        self,
        identity: Identity,
        action: str,
        source: Source,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self.storage.audit_add_tx(
            who(identity),
            action,
            "source",
            source.id,
            {"name": source.name, "kind": source.kind, "url": source.url, **(detail or {})},
        )


def policy_for(fetcher: SafeFetcher) -> Callable[[Source], FetchPolicy]:
    """The fetch policy of a source: its hosts, the settings' limits (the fetcher's defaults),
    robots.txt for websites."""

    def policy(source: Source) -> FetchPolicy:
        return fetcher.policy(allowed_hosts=source.hosts(), robots=source.kind == "website")

    return policy


async def sources_ctx(app: web.Application) -> AsyncIterator[None]:
    """The service, after the library, the fetcher and the jobs are open (server/app.py)."""
    fetcher = app[keys.FETCHER]
    service = SourceService(
        app[keys.SETTINGS],
        app[keys.LIBRARY],
        SyncEngine(app[keys.LIBRARY], fetcher, policy_for(fetcher)),
        app.get(keys.JOBS),
        app.get(keys.CLUSTER),
    )
    await service.start()
    app[keys.SOURCES] = service
    try:
        yield
    finally:
        await service.stop()


__all__ = [
    "SOURCE_COMPUTED",
    "SOURCE_READ_ONLY",
    "SourceNotFound",
    "SourceService",
    "SyncRunning",
    "policy_for",
    "sources_ctx",
]
