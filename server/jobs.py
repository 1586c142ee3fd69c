"""Background jobs: work that runs by itself every so often (source syncs, link checks, the
authoring queue's refresh), or now when someone asks ("Sync now", "Check now").

One `Jobs` per app (`keys.JOBS`), opened and closed in `jobs_ctx`. A feature registers its job
with a name, an interval and an async function taking a `JobRun`:

```python
async def run(job: JobRun) -> None:
    for i, link in enumerate(links):
        job.progress(i, len(links), f"checking {link}")
        ...

app[keys.JOBS].register("link-check", 24 * 3600, run)   # 0 seconds: only when asked
started = await app[keys.JOBS].run_now("link-check")    # False: it is running already
app[keys.JOBS].state("link-check")                      # running, times, node, last error, progress
```

Rules:
- at most one run of a job at a time: a run due while the last one still runs is skipped, and
  `run_now` answers False;
- a job is due `every_seconds` after its last run started (the first time: after one interval
  from its registration, or `first_in` seconds); `every_seconds` 0 means "only when asked";
- an exception in a run is logged and recorded (`last_error`), never kills the scheduler;
- with `settings.jobs` off (INFLOW_JOBS=0) nothing runs by itself; `run_now` still does (tests
  call jobs that way, and "Sync now" works on a server whose scheduler is off);
- `run_now` starts the run and returns once it has started (the route answers 202); `wait(name)`
  waits for the run in progress, if any;
- closing cancels the runs in progress and waits for them to end.

Many nodes (issue 15, docs/scale-out.md "Work that runs once"). A job registered with
`once=True` (the default) runs on one node at a time: its run holds the cluster lock
`job:<name>` (server/cluster.py; a PostgreSQL advisory lock, or an in-process one on SQLite), and
its shared state is the `job_runs` row (written when a run starts: status `running` and the node,
and when it ends: `ok` or `failed`, the error, the counts). Every node registers the same jobs and
runs the same scheduler; a scheduled run is skipped, its next run moved an interval after the
other node's start, when the lock is held elsewhere or `job_runs` says another node started it
less than `every_seconds` ago. So a job due every hour runs once an hour in the cluster. `run_now`
answers False when another node runs the job. A row left `running` by a node that died (its lock
went with its database session) is marked failed when a node sees it, and the job runs at its
next turn anywhere. When a node loses its lock during a run (the database connection dropped)
the run is stopped: another node may have started it. `once=False`: per node, no lock, no row.
`state(name)` merges the shared row (refreshed every `ROWS_REFRESH_SECONDS`): a run on another
node shows as running there (`node`); its progress lives on that node only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.dialects import postgresql, sqlite

from server import keys
from server.cluster import Cluster, Hold
from server.db.cluster_tables import job_runs
from server.db.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from server.storage import Storage

log = logging.getLogger(__name__)

JobFn = Callable[["JobRun"], Awaitable[None]]
ERROR_MAX = 1000
_IDLE_WAKE_SECONDS = 3600.0  # the scheduler wakes at least this often (and on every change)
ROWS_REFRESH_SECONDS = 5.0  # how often a node reads the shared job_runs rows (PostgreSQL)
SKIP_RETRY_MAX_SECONDS = 60.0  # a skipped run is tried again at most this much later
# the lock is held elsewhere: the row of that run is read again until it shows (its node writes
# it just after taking the lock), this many times this far apart
HELD_ROW_READS = 10
HELD_ROW_PAUSE_SECONDS = 0.2


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _stamp(at: float) -> str:
    """A job_runs time: ISO 8601 UTC with milliseconds (nodes compare starts with it)."""
    moment = dt.datetime.fromtimestamp(at, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds(stamp: str) -> str:
    """A job_runs time as `state` shows every time (to the second)."""
    return stamp[:19] + "Z" if len(stamp) > 19 else stamp


def _parse(stamp: str) -> float | None:
    try:
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


class LockLost(Exception):
    """This node lost the job's cluster lock during the run (its database connection dropped)."""


class JobRunsTable:
    """The shared `job_runs` rows, on the content database (through the storage's thread)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @property
    def _conn(self) -> sa.Connection:
        return self.storage.conn

    def _row(self, name: str) -> dict[str, Any] | None:
        found = self._conn.execute(sa.select(job_runs).where(job_runs.c.name == name)).first()
        return dict(found._mapping) if found is not None else None

    async def get(self, name: str) -> dict[str, Any] | None:
        return await self.storage.call(self._row, name)

    async def all(self) -> dict[str, dict[str, Any]]:
        def read() -> dict[str, dict[str, Any]]:
            rows = self._conn.execute(sa.select(job_runs)).all()
            return {r.name: dict(r._mapping) for r in rows}

        return await self.storage.call(read)

    async def started(self, name: str, node: str, at: str) -> dict[str, Any] | None:
        """The run of `name` on `node` that started `at` (one statement: atomic without a
        transaction)."""

        def write() -> dict[str, Any] | None:
            module = postgresql if self._conn.dialect.name == "postgresql" else sqlite
            values = {"node": node, "started_at": at, "finished_at": "", "status": "running"}
            stmt = (
                module.insert(job_runs)
                .values(name=name, **values)
                .on_conflict_do_update(index_elements=[job_runs.c.name], set_=values)
            )
            self._conn.execute(stmt)
            return self._row(name)

        return await self.storage.call(write)

    async def finished(
        self, name: str, node: str, at: str, error: str | None, status: str = ""
    ) -> dict[str, Any] | None:
        """The end of that run: `ok`, or `failed` with `error`. Nothing changes when another
        node has taken the job over since (its start is in the row now)."""
        c = job_runs.c

        def write() -> dict[str, Any] | None:
            self._conn.execute(
                sa.update(job_runs)
                .where(c.name == name, c.node == node, c.started_at == at)
                .values(
                    finished_at=_stamp(time.time()),
                    status=status or ("ok" if error is None else "failed"),
                    last_error=error or "",
                    runs=c.runs + 1,
                    failures=c.failures + (0 if error is None else 1),
                )
            )
            return self._row(name)

        return await self.storage.call(write)


@dataclass
class _Job:
    name: str
    every: float
    fn: JobFn
    next_at: float | None  # monotonic time it is due; None: only when asked
    once: bool = True  # one node at a time (the cluster lock and the job_runs row)
    task: asyncio.Task[None] | None = None
    active: bool = False  # the job's function is running here (the checks before it passed)
    started_at: str = ""
    started_wall: float = 0.0  # epoch seconds of started_at (compared with the shared row)
    finished_at: str = ""
    last_error: str = ""
    runs: int = 0
    failures: int = 0  # runs that raised (metrics: inflow_job_failures_total)
    node: str = ""  # where the last run we know of ran
    row: dict[str, Any] | None = None  # the shared job_runs row, as last read or written
    progress: dict[str, Any] = field(default_factory=lambda: {"done": 0, "total": 0, "message": ""})

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()


class JobRun:
    """What a job's function gets: the run's name and start, and a way to report progress."""

    def __init__(self, job: _Job, trigger: str) -> None:
        self._job = job
        self.name = job.name
        self.trigger = trigger  # "schedule" or "manual"
        self.started_at = job.started_at

    def progress(self, done: int, total: int, message: str = "") -> None:
        """How far the run is (shown by `Jobs.state` while it runs, and after)."""
        self._job.progress = {"done": int(done), "total": int(total), "message": message[:500]}


class Jobs:
    """The scheduler and the state of every registered job (see the module's docstring)."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        cluster: Cluster | None = None,
        storage: Storage | None = None,
        node: str = "",
    ):
        self.enabled = enabled
        self._clock = clock
        self.cluster = cluster
        self.table = JobRunsTable(storage) if storage is not None else None
        self.node = node or (cluster.node if cluster is not None else "")
        self._jobs: dict[str, _Job] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._rows_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the scheduler (when enabled) and the reading of the shared rows; call it on the
        event loop."""
        if self.enabled and self._loop_task is None:
            self._loop_task = asyncio.create_task(self._scheduler(), name="jobs-scheduler")
        if self.table is not None and self._rows_task is None:
            self._rows_task = asyncio.create_task(self._follow_rows(), name="jobs-rows")

    async def close(self) -> None:
        """Stop the scheduler, cancel the runs in progress and wait for them to end."""
        self._closed = True
        loops = (self._loop_task, self._rows_task)
        tasks = [t for t in (*loops, *(j.task for j in self._jobs.values())) if t]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loop_task = self._rows_task = None

    # -- registration ----------------------------------------------------------------------------
    def register(
        self,
        name: str,
        every_seconds: float,
        fn: JobFn,
        *,
        first_in: float | None = None,
        once: bool = True,
    ) -> None:
        """Add a job, or change the interval and function of a registered one (its run in
        progress and its state stay). `every_seconds` 0: only when asked (`run_now`).
        `once`: one node at a time across the cluster (the default); False: every node runs
        its own."""
        every = max(0.0, float(every_seconds))
        now = self._clock()
        job = self._jobs.get(name)
        if every <= 0:
            next_at = None
        elif first_in is not None:
            next_at = now + max(0.0, first_in)
        elif job is not None and job.next_at is not None and job.every == every:
            next_at = job.next_at  # the same interval: the schedule stays
        else:
            next_at = now + every
        if job is None:
            self._jobs[name] = _Job(name, every, fn, next_at, once=once)
        else:
            job.every, job.fn, job.next_at, job.once = every, fn, next_at, once
        self._wake.set()

    def unregister(self, name: str) -> None:
        """Forget a job (a deleted source); a run in progress finishes on its own."""
        self._jobs.pop(name, None)
        self._wake.set()

    async def stop(self, name: str) -> None:
        """Forget a job and stop its run in progress, if any (a feature closing before the jobs
        do: its job must not run on into what it closes)."""
        job = self._jobs.pop(name, None)
        if job is not None and job.task is not None:
            job.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job.task
        self._wake.set()

    def names(self) -> list[str]:
        return sorted(self._jobs)

    # -- running ---------------------------------------------------------------------------------
    async def run_now(self, name: str) -> bool:
        """Start a run of `name` now; False when one is running already, here or on another
        node (a once-job). Unknown name: KeyError."""
        job = self._jobs[name]
        if job.running or self._closed:
            return False
        return await self._start(job, "manual")

    async def wait(self, name: str) -> None:
        """Until the run of `name` in progress (if any) has ended."""
        job = self._jobs.get(name)
        task = job.task if job is not None else None
        if task is not None:
            await asyncio.wait({task})  # never raises: the run records its own errors

    def running(self, name: str) -> bool:
        """A run of `name` is in progress on this node (its cluster checks included)."""
        job = self._jobs.get(name)
        return job is not None and job.running

    def state(self, name: str) -> dict[str, Any]:
        """What a person may want to know about a job (JSON-ready). `node`: where its last (or
        current) run ran; a run on another node shows as running there, without progress."""
        job = self._jobs.get(name)
        if job is None:
            return {
                "name": name,
                "registered": False,
                "running": False,
                "started_at": "",
                "finished_at": "",
                "last_error": "",
                "runs": 0,
                "every_seconds": 0,
                "next_at": None,
                "node": "",
                "elsewhere": False,
                "progress": {"done": 0, "total": 0, "message": ""},
            }
        next_at = None
        if job.next_at is not None and self.enabled:
            wall = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=job.next_at - self._clock())
            next_at = wall.isoformat(timespec="seconds").replace("+00:00", "Z")
        state: dict[str, Any] = {
            "name": name,
            "registered": True,
            "running": job.active,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "last_error": job.last_error,
            "runs": job.runs,
            "every_seconds": job.every,
            "next_at": next_at,
            "node": job.node,
            "elsewhere": False,  # the run shown ran (or runs) on another node
            "progress": dict(job.progress),
        }
        row = job.row if job.once else None
        if row is not None:
            state["runs"] = max(job.runs, int(row["runs"]))
            started = _parse(row["started_at"]) or 0.0
            if not job.active and row["node"] != self.node and started > job.started_wall:
                elsewhere = row["status"] == "running"
                state.update(
                    running=elsewhere,
                    started_at=_seconds(row["started_at"]),
                    finished_at=_seconds(row["finished_at"]),
                    last_error=row["last_error"],
                    node=row["node"],
                    elsewhere=True,
                    progress={
                        "done": 0,
                        "total": 0,
                        "message": f"running on {row['node']}" if elsewhere else "",
                    },
                )
        return state

    def counts(self) -> dict[str, tuple[int, int, bool]]:
        """(runs, failed runs, running now) of every job on this node, for the metrics
        (server/metrics.py)."""
        return {n: (j.runs, j.failures, j.active) for n, j in sorted(self._jobs.items())}

    async def _start(self, job: _Job, trigger: str) -> bool:
        """Start a run's task; True once its function runs, False when it was skipped."""
        decided = self._begin(job, trigger)
        assert job.task is not None
        either: set[asyncio.Future[Any]] = {decided, job.task}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        return decided.done() and decided.result()

    def _exclusive(self, job: _Job) -> AbstractAsyncContextManager[Hold | bool]:
        if job.once and self.cluster is not None:
            return self.cluster.exclusive(f"job:{job.name}")
        return contextlib.nullcontext(True)

    async def _run(self, job: _Job, trigger: str, decided: asyncio.Future[bool]) -> None:
        """One run: the cluster's checks, then the function; its errors are recorded and
        logged, never raised into the scheduler."""
        try:
            async with self._exclusive(job) as hold:
                if not hold:  # another node runs it now
                    await self._skipped(job, trigger, held=True)
                    return
                if job.once and self.table is not None and trigger == "schedule":
                    with contextlib.suppress(Exception):  # no row to read: run it anyway
                        job.row = await self.table.get(job.name)
                    if self._ran_elsewhere_lately(job):
                        await self._skipped(job, trigger)
                        return
                await self._go(job, trigger, hold, decided)
        finally:
            if not decided.done():
                decided.set_result(False)
            self._wake.set()

    async def _go(
        self, job: _Job, trigger: str, hold: Hold | bool, decided: asyncio.Future[bool]
    ) -> None:
        wall = time.time()
        job.active, job.node = True, self.node
        job.started_at, job.started_wall, job.finished_at = _now_iso(), wall, ""
        job.progress = {"done": 0, "total": 0, "message": ""}
        decided.set_result(True)
        stamp = _stamp(wall)
        shared = job.once and self.table is not None
        if shared:
            try:
                job.row = await self.table.started(job.name, self.node, stamp)  # type: ignore[union-attr]
            except Exception:
                log.exception("job %s: its start could not be recorded in job_runs", job.name)
        error: str | None = None
        try:
            await self._call(job, JobRun(job, trigger), hold)
        except asyncio.CancelledError:
            job.last_error = error = "stopped: the server shut down during the run"
            raise
        except DatabaseUnavailable as exc:  # one line, no traceback: the next run tries again
            log.warning("job %s failed: %s", job.name, exc)
            job.last_error = error = str(exc)[:ERROR_MAX]
            job.failures += 1
        except Exception as exc:
            log.exception("job %s failed", job.name)
            job.last_error = error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
            job.failures += 1
        else:
            job.last_error = ""
        finally:
            job.active = False
            job.runs += 1
            job.finished_at = _now_iso()
            if shared:
                try:
                    job.row = await self.table.finished(job.name, self.node, stamp, error)  # type: ignore[union-attr]
                except Exception:
                    log.exception("job %s: its end could not be recorded in job_runs", job.name)

    async def _call(self, job: _Job, run: JobRun, hold: Hold | bool) -> None:
        """The job's function; stopped (LockLost) when this node loses the job's lock."""
        if not isinstance(hold, Hold) or self.cluster is None or not self.cluster.shared:
            await job.fn(run)
            return
        work: asyncio.Future[Any] = asyncio.ensure_future(job.fn(run))
        lost: asyncio.Future[Any] = asyncio.ensure_future(hold.lost.wait())
        try:
            await asyncio.wait({work, lost}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
            raise
        finally:
            lost.cancel()
        if work.done():
            work.result()  # the function's own exception, if any
            return
        work.cancel()
        with contextlib.suppress(BaseException):
            await work
        raise LockLost("this node lost the job's cluster lock (its database connection dropped)")

    def _ran_elsewhere_lately(self, job: _Job) -> bool:
        """The shared row says a run not made by this process (another node, or this node
        before a restart) started the job less than an interval ago and finished: a `running`
        row whose node no longer holds the lock, which we hold now, is taken over."""
        row = job.row
        if row is None or row["status"] == "running":
            return False
        started = _parse(row["started_at"])
        if started is None or started <= job.started_wall:  # this process's own last run
            return False
        return time.time() - started < job.every

    async def _skipped(self, job: _Job, trigger: str, held: bool = False) -> None:
        """A run not started here: its next turn an interval after the other node's start.
        `held`: the lock is held elsewhere, whose row may follow a moment later."""
        if self.table is not None and job.once:
            for attempt in range(HELD_ROW_READS if held else 1):
                if attempt:
                    await asyncio.sleep(HELD_ROW_PAUSE_SECONDS)
                with contextlib.suppress(Exception):
                    job.row = await self.table.get(job.name)
                if job.row is not None and (
                    job.row["status"] == "running" or self._ran_elsewhere_lately(job)
                ):
                    break
        if job.row is not None and job.row["node"] != self.node:
            job.node = job.row["node"]
        if trigger != "schedule" or job.every <= 0:
            return
        delay = job.every
        started = _parse(job.row["started_at"]) if job.row is not None else None
        if started is not None:
            delay = started + job.every - time.time()
        job.next_at = self._clock() + max(delay, min(job.every, SKIP_RETRY_MAX_SECONDS))
        log.debug("job %s runs on %s: skipped here", job.name, job.node or "another node")

    async def _follow_rows(self) -> None:
        """Read the shared rows (at start, then every ROWS_REFRESH_SECONDS on PostgreSQL), and
        mark failed a run left `running` by a node that no longer holds its lock."""
        assert self.table is not None
        while True:
            try:
                rows = await self.table.all()
                for name, row in rows.items():
                    job = self._jobs.get(name)
                    if job is not None and job.once and not job.running:
                        job.row = row
                        if row["status"] == "running":
                            await self._fail_orphan(job, row)
            except Exception:
                log.warning("job_runs could not be read", exc_info=True)
            if self.cluster is None or not self.cluster.shared:
                return
            await asyncio.sleep(ROWS_REFRESH_SECONDS)

    async def _fail_orphan(self, job: _Job, row: dict[str, Any]) -> None:
        """A `running` row nobody runs (its node died: its session, and lock, ended)."""
        if self.cluster is None or self.table is None or job.running:
            return
        async with self.cluster.exclusive(f"job:{job.name}") as hold:
            if not hold:  # running somewhere indeed
                return
            current = await self.table.get(job.name)
            if current is None or current["status"] != "running":
                return
            error = f"stopped: node {current['node']} ended during the run"
            job.row = await self.table.finished(
                job.name, current["node"], current["started_at"], error
            )
            log.warning("job %s: %s", job.name, error)

    async def _scheduler(self) -> None:
        while not self._closed:
            now = self._clock()
            for job in list(self._jobs.values()):
                if job.next_at is None or job.next_at > now:
                    continue
                if job.running:  # one run at a time: this turn is skipped
                    job.next_at = now + job.every
                else:
                    self._begin(job)
            due = [j.next_at for j in self._jobs.values() if j.next_at is not None]
            delay = min([_IDLE_WAKE_SECONDS, *(max(0.0, d - now) for d in due)])
            self._wake.clear()
            # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a cancellation that
            # comes as the wake-up event is set (a run ending as the app closes), and close()
            # then waited for ever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(delay, 0.01)):
                    await self._wake.wait()

    def _begin(self, job: _Job, trigger: str = "schedule") -> asyncio.Future[bool]:
        """Start a run's task (the cluster's checks come first, in it); the future says whether
        the function runs."""
        if job.every > 0:
            job.next_at = self._clock() + job.every
        decided: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        job.task = asyncio.create_task(self._run(job, trigger, decided), name=f"job:{job.name}")
        return decided


async def jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the jobs, scheduler started when `settings.jobs` is on. Appended after the
    library, cluster, peer store and fetcher (jobs use them, so they stop first) and before the
    features that register jobs. Once-jobs share their state in the content database's
    `job_runs` and hold the cluster's locks."""
    settings = app[keys.SETTINGS]
    jobs = Jobs(
        enabled=settings.jobs,
        cluster=app.get(keys.CLUSTER),
        storage=app[keys.LIBRARY].storage if keys.LIBRARY in app else None,
        node=settings.node_name,
    )
    app[keys.JOBS] = jobs
    jobs.start()
    try:
        yield
    finally:
        await jobs.close()


__all__ = ["JobFn", "JobRun", "JobRunsTable", "Jobs", "LockLost", "jobs_ctx"]
