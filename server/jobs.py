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
app[keys.JOBS].state("link-check")                      # running, times, last error, progress
```

Rules:
- at most one run of a job at a time: a run due while the last one still runs is skipped, and
  `run_now` answers False;
- a job is due `every_seconds` after its last run started (the first time: after one interval
  from its registration, or `first_in` seconds); `every_seconds` 0 means "only when asked";
- an exception in a run is logged and recorded (`last_error`), never kills the scheduler;
- with `settings.jobs` off (INFLOW_JOBS=0) nothing runs by itself; `run_now` still does (tests
  call jobs that way, and "Sync now" works on a server whose scheduler is off);
- `run_now` starts the run and returns at once (the route answers 202); `wait(name)` waits for
  the run in progress, if any;
- closing cancels the runs in progress and waits for them to end.

State lives in this process's memory. Issue 15 (several nodes) will take an advisory lock around
each run (`_run`), so that one node runs a job at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from server import keys

log = logging.getLogger(__name__)

JobFn = Callable[["JobRun"], Awaitable[None]]
ERROR_MAX = 1000
_IDLE_WAKE_SECONDS = 3600.0  # the scheduler wakes at least this often (and on every change)


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class _Job:
    name: str
    every: float
    fn: JobFn
    next_at: float | None  # monotonic time it is due; None: only when asked
    task: asyncio.Task[None] | None = None
    started_at: str = ""
    finished_at: str = ""
    last_error: str = ""
    runs: int = 0
    failures: int = 0  # runs that raised (metrics: inflow_job_failures_total)
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

    def __init__(self, *, enabled: bool = True, clock: Callable[[], float] = time.monotonic):
        self.enabled = enabled
        self._clock = clock
        self._jobs: dict[str, _Job] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the scheduler (when enabled); call it on the event loop."""
        if self.enabled and self._loop_task is None:
            self._loop_task = asyncio.create_task(self._scheduler(), name="jobs-scheduler")

    async def close(self) -> None:
        """Stop the scheduler, cancel the runs in progress and wait for them to end."""
        self._closed = True
        tasks = [t for t in (self._loop_task, *(j.task for j in self._jobs.values())) if t]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loop_task = None

    # -- registration ----------------------------------------------------------------------------
    def register(
        self, name: str, every_seconds: float, fn: JobFn, *, first_in: float | None = None
    ) -> None:
        """Add a job, or change the interval and function of a registered one (its run in
        progress and its state stay). `every_seconds` 0: only when asked (`run_now`)."""
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
            self._jobs[name] = _Job(name, every, fn, next_at)
        else:
            job.every, job.fn, job.next_at = every, fn, next_at
        self._wake.set()

    def unregister(self, name: str) -> None:
        """Forget a job (a deleted source); a run in progress finishes on its own."""
        self._jobs.pop(name, None)
        self._wake.set()

    def names(self) -> list[str]:
        return sorted(self._jobs)

    # -- running ---------------------------------------------------------------------------------
    async def run_now(self, name: str) -> bool:
        """Start a run of `name` now; False when one is running already. Unknown name: KeyError."""
        job = self._jobs[name]
        if job.running or self._closed:
            return False
        self._start(job, "manual")
        return True

    async def wait(self, name: str) -> None:
        """Until the run of `name` in progress (if any) has ended."""
        job = self._jobs.get(name)
        task = job.task if job is not None else None
        if task is not None:
            await asyncio.wait({task})  # never raises: the run records its own errors

    def state(self, name: str) -> dict[str, Any]:
        """What a person may want to know about a job (JSON-ready)."""
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
                "progress": {"done": 0, "total": 0, "message": ""},
            }
        next_at = None
        if job.next_at is not None and self.enabled:
            wall = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=job.next_at - self._clock())
            next_at = wall.isoformat(timespec="seconds").replace("+00:00", "Z")
        return {
            "name": name,
            "registered": True,
            "running": job.running,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "last_error": job.last_error,
            "runs": job.runs,
            "every_seconds": job.every,
            "next_at": next_at,
            "progress": dict(job.progress),
        }

    def counts(self) -> dict[str, tuple[int, int, bool]]:
        """(runs, failed runs, running now) of every job, for the metrics (server/metrics.py)."""
        return {n: (j.runs, j.failures, j.running) for n, j in sorted(self._jobs.items())}

    def _start(self, job: _Job, trigger: str) -> None:
        job.started_at, job.finished_at = _now_iso(), ""
        job.progress = {"done": 0, "total": 0, "message": ""}
        if job.every > 0:
            job.next_at = self._clock() + job.every
        job.task = asyncio.create_task(self._run(job, JobRun(job, trigger)), name=f"job:{job.name}")

    async def _run(self, job: _Job, run: JobRun) -> None:
        """One run: its errors are recorded and logged, never raised into the scheduler."""
        try:
            await job.fn(run)
        except asyncio.CancelledError:
            job.last_error = "stopped: the server shut down during the run"
            raise
        except Exception as exc:
            log.exception("job %s failed", job.name)
            job.last_error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
            job.failures += 1
        else:
            job.last_error = ""
        finally:
            job.runs += 1
            job.finished_at = _now_iso()
            self._wake.set()

    async def _scheduler(self) -> None:
        while True:
            now = self._clock()
            for job in list(self._jobs.values()):
                if job.next_at is None or job.next_at > now:
                    continue
                if job.running:  # one run at a time: this turn is skipped
                    job.next_at = now + job.every
                else:
                    self._start(job, "schedule")
            due = [j.next_at for j in self._jobs.values() if j.next_at is not None]
            delay = min([_IDLE_WAKE_SECONDS, *(max(0.0, d - now) for d in due)])
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.01))


async def jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the jobs, scheduler started when `settings.jobs` is on. Appended after the
    library, peer store and fetcher (jobs use them, so they stop first) and before the features
    that register jobs."""
    jobs = Jobs(enabled=app[keys.SETTINGS].jobs)
    app[keys.JOBS] = jobs
    jobs.start()
    try:
        yield
    finally:
        await jobs.close()


__all__ = ["JobFn", "JobRun", "Jobs", "jobs_ctx"]
