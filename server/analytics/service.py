"""The analytics service hung off the app: store, pseudonyms, statements, forwarder, purge task.

Opened and closed in `analytics_ctx` (a cleanup context); the forwarder runs as a background
task cancelled there, after which the store's threads are drained; on many nodes one node at a
time forwards (the cluster lock `xapi-forwarder`, server/cluster.py). The retention purge is the
job `analytics-purge` (server/jobs.py: once across the nodes).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Sequence

import aiohttp
from aiohttp import web

from server import keys
from server.analytics.events import Event
from server.analytics.outbox import Forwarder, LrsClient
from server.analytics.pseudonym import Pseudonymizer, load_key
from server.analytics.store import EventStore, IngestResult, cutoff_day
from server.analytics.usage_signal import UsageSignal
from server.analytics.xapi import StatementBuilder
from server.jobs import JobFn, JobRun
from server.settings import Settings
from server.storage import Storage

log = logging.getLogger("inflow.analytics")
PURGE_JOB = "analytics-purge"
PURGE_FIRST_IN = 5.0  # seconds after start-up before the first purge


class Analytics:
    def __init__(self, settings: Settings, store: EventStore, pseudonym: Pseudonymizer) -> None:
        self.settings = settings
        self.store = store
        self.pseudonym = pseudonym
        self.builder: StatementBuilder | None = None
        self.forwarder: Forwarder | None = None
        self.content: Storage | None = None  # the content database, for its feedback purge
        # what colleagues found helpful per page context, for suggest (usage_signal.py)
        self.usage = UsageSignal(store, settings.analytics_min_group)

    async def ingest(self, events: Sequence[Event], issuer: str, subject: str) -> IngestResult:
        user = self.pseudonym(issuer, subject)
        builder = self.builder
        statement_for = None
        if builder is not None:

            def statement_for(e: Event) -> str:
                return builder.statement_json(e, user)

        result = await self.store.ingest(events, user, statement_for)
        if result.queued and self.forwarder is not None:
            self.forwarder.notify()
        return result

    async def purge(self, today: dt.date | None = None) -> dict[str, int]:
        """Apply the retention: events, rollups and comments, and the content database's
        feedback rows (same privacy rules, same cutoff)."""
        cutoff = cutoff_day(self.settings.analytics_retention_days, today)
        removed = await self.store.purge(cutoff)
        if self.content is not None:
            removed["feedback"] = await self.content.purge_feedback(cutoff)
        return removed


def purge_job(analytics: Analytics) -> JobFn:
    """The retention purge as a job (`analytics-purge`, every
    `INFLOW_ANALYTICS_PURGE_INTERVAL_SECONDS`, the first soon after start-up): once across the
    nodes (server/jobs.py), a failure recorded and logged, the next round tries again."""

    async def run(job: JobRun) -> None:
        job.progress(0, 1, "deleting events, figures and comments past the retention")
        removed = await analytics.purge()
        if any(removed.values()):
            log.info("analytics retention purge: %s", removed)
        job.progress(1, 1, ", ".join(f"{n} {k}" for k, n in removed.items()))

    return run


async def analytics_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    key = await asyncio.get_running_loop().run_in_executor(
        None, load_key, settings.analytics_secret, settings.data_dir
    )
    store = EventStore(settings.events_db_path, url=settings.events_database_url)
    await store.open()
    analytics = Analytics(settings, store, Pseudonymizer(key))
    analytics.content = app[keys.LIBRARY].storage
    app[keys.ANALYTICS] = analytics
    tasks: list[asyncio.Task[None]] = []
    session: aiohttp.ClientSession | None = None
    try:
        # the first load runs in the background task: a big events database never delays start-up
        app[keys.SUGGESTER].signals.append(analytics.usage)
        tasks.append(asyncio.create_task(analytics.usage.run(), name="usage-signal"))
        if settings.lrs_endpoint:
            library = app[keys.LIBRARY]

            def app_name(i: str) -> str | None:
                a = library.catalog.apps.get(i)
                return a.name if a else None

            def context_name(i: str) -> str | None:
                c = library.catalog.contexts.get(i)
                return c.name if c else None

            def aid_title(i: str) -> str | None:
                m = library.catalog.aids.get(i)
                return m.title if m else None

            analytics.builder = StatementBuilder(
                settings.base_url, app_name, context_name, aid_title
            )
            session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=settings.lrs_timeout_seconds)
            )
            analytics.forwarder = Forwarder(settings, store, LrsClient(settings, session))
            forward = analytics.forwarder.run(app.get(keys.CLUSTER))
            tasks.append(asyncio.create_task(forward, name="xapi-forwarder"))
        interval = settings.analytics_purge_interval_seconds
        if interval > 0:  # soon after start-up (never on the loop at once), then every interval
            app[keys.JOBS].register(
                PURGE_JOB, interval, purge_job(analytics), first_in=min(interval, PURGE_FIRST_IN)
            )
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if session is not None:
            await session.close()
        await analytics.usage.close()
        await store.close()
