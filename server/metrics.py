"""Prometheus metrics at `GET /metrics` (docs/operations.md lists them with their meaning).

Off unless `INFLOW_METRICS=1`. Then the route answers callers from `INFLOW_METRICS_ALLOW`
(addresses or networks; default loopback only) and callers with an `admin` bearer token, and
nobody else: the figures tell an outsider how big the library is, which sources fail and how
busy the server is, so they are not public (the same reasoning as /admin).

One `CollectorRegistry` per app (tests make many apps in one process; the global default registry
would mix them and refuse the second app's metrics). What the metrics are made of:

- request latency and counts: observed by the request middleware (server/logs.py) under the
  route's canonical resource (`/api/v1/aids/{aid_id}`, never the raw path, so a scan of random
  URLs makes one `(unmatched)` series, not thousands);
- in-memory state (the result cache, the index, the catalog, jobs, the xAPI forwarder): read at
  scrape time on the event loop, cheap;
- what lives in the databases (content version, outboxes, sources, links): counted in the storage
  threads when a scrape comes and the last count is older than `INFLOW_METRICS_CACHE_SECONDS`;
  concurrent scrapes share one count. These are the same on every node of a cluster (one
  database): aggregate them with max(), not sum().
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from aiohttp import hdrs, web
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from auth.service import AuthUnavailable
from auth.verifier import InvalidToken
from server import keys
from server.errors import Forbidden
from server.ratelimit import client_address
from server.security import public

log = logging.getLogger(__name__)

_Net = ipaddress.IPv4Network | ipaddress.IPv6Network
UNMATCHED = "(unmatched)"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds: suggest answers in ms from its cache, tens of ms uncached; imports take seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def route_label(request: web.Request) -> str:
    """The route's canonical resource (`/api/v1/aids/{aid_id}`), or `(unmatched)` (404s)."""
    try:
        resource = request.match_info.route.resource
    except Exception:  # no match info: a middleware answered before routing (cannot happen)
        return UNMATCHED
    if resource is None or request.match_info.http_exception is not None:
        return UNMATCHED
    return resource.canonical or UNMATCHED


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


@dataclass
class DbFigures:
    """What the databases say, counted in their threads (see `Metrics.refresh`)."""

    content_version: int | None = None
    xapi_pending: int | None = None
    xapi_dead: int | None = None
    email: dict[str, int] = field(default_factory=dict)  # notification status -> count
    links: dict[str, int] = field(default_factory=dict)  # link-check status -> count
    source_status: dict[str, str] = field(default_factory=dict)  # source id -> last status
    source_items: dict[tuple[str, str], int] = field(default_factory=dict)  # (id, outcome) -> n
    source_runs: dict[tuple[str, str], int] = field(default_factory=dict)  # (id, status) -> n
    errors: int = 0  # counts that failed this time (logged)


def _content_tx(conn: sa.Connection) -> dict[str, Any]:
    """Notifications by status, link checks of published aids by status, sources' last status
    and their runs' totals: a few GROUP BYs on the content database."""
    from server.db.content_tables import aids as aids_table
    from server.health.models import LinkCheck
    from server.peer.models import Notification
    from server.peer.store import table_of
    from server.sources.models import Source, SyncRun

    n = table_of(Notification)
    email: dict[str, int] = dict(
        conn.execute(sa.select(n.c.status, sa.func.count()).group_by(n.c.status)).all()
    )
    lk = table_of(LinkCheck)
    links: dict[str, int] = dict(
        conn.execute(
            sa.select(lk.c.status, sa.func.count())
            .select_from(lk.join(aids_table, aids_table.c.id == lk.c.aid_id))
            .where(aids_table.c.status == "published")
            .group_by(lk.c.status)
        ).all()
    )
    s = table_of(Source)
    status = dict(conn.execute(sa.select(s.c.id, s.c.last_status)).all())
    r = table_of(SyncRun)
    items: dict[tuple[str, str], int] = {}
    runs: dict[tuple[str, str], int] = {}
    stmt = sa.select(
        r.c.source_id,
        r.c.status,
        sa.func.count(),
        sa.func.sum(r.c.added),
        sa.func.sum(r.c.changed),
        sa.func.sum(r.c.failed),
    ).group_by(r.c.source_id, r.c.status)
    for source_id, run_status, count, added, changed, failed in conn.execute(stmt).all():
        if source_id not in status:
            continue  # a deleted source's runs
        runs[(source_id, run_status)] = int(count)
        for outcome, value in (("added", added), ("changed", changed), ("failed", failed)):
            items[(source_id, outcome)] = items.get((source_id, outcome), 0) + int(value or 0)
    return {"email": email, "links": links, "status": status, "items": items, "runs": runs}


class Metrics:
    """The app's registry: request metrics observed by the middleware, and a collector reading
    the app's state at scrape time."""

    def __init__(self, cache_seconds: float = 5.0) -> None:
        # No `_created` series beside every counter and histogram: they double the series for
        # a start time Prometheus does not need (it detects restarts by counters going down).
        # A switch of the client library for the whole process, the same for every app.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=False)
        self.latency = Histogram(
            "inflow_http_request_duration_seconds",
            "Time to answer a request, by route (canonical resource) and method.",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "inflow_http_requests",
            "Requests answered, by route, method and status class (2xx, 4xx...).",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.cache_seconds = cache_seconds
        self.app: web.Application | None = None
        self.db = DbFigures()
        self._db_at = float("-inf")
        self._refreshing: asyncio.Task[None] | None = None
        self.registry.register(_StateCollector(self))

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        method = request.method if request.method in _METHODS else "other"
        route = route_label(request)
        self.latency.labels(method, route).observe(seconds)
        self.requests.labels(method, route, status_class(status)).inc()

    async def refresh(self) -> None:
        """Count what the databases hold, unless the last count is fresh enough. Concurrent
        scrapes wait for the same count."""
        if time.monotonic() - self._db_at < self.cache_seconds:
            return
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._count(), name="metrics-db")
        await asyncio.shield(self._refreshing)

    async def _count(self) -> None:
        app = self.app
        if app is None:
            return
        figures = DbFigures()
        library = app.get(keys.LIBRARY)
        if library is not None:
            try:
                figures.content_version = await library.storage.content_version()
                got = await library.storage.call(lambda: _content_tx(library.storage.conn))
                figures.email = {str(k): int(v) for k, v in got["email"].items()}
                figures.links = {str(k): int(v) for k, v in got["links"].items()}
                figures.source_status = got["status"]
                figures.source_items = got["items"]
                figures.source_runs = got["runs"]
            except Exception:
                figures.errors += 1
                log.exception("metrics: counting the content database failed")
        analytics = app.get(keys.ANALYTICS)
        if analytics is not None:
            try:
                store = analytics.store
                figures.xapi_pending, figures.xapi_dead = await store.write(store.outbox_size_sync)
            except Exception:
                figures.errors += 1
                log.exception("metrics: counting the xAPI outbox failed")
        self.db = figures
        self._db_at = time.monotonic()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _gauge(name: str, doc: str, value: float | None, labels: list[str] | None = None) -> Metric:
    g = GaugeMetricFamily(name, doc, labels=labels)
    if value is not None:
        g.add_metric([], value)
    return g


class _StateCollector(Collector):
    """In-memory state read now; database figures from the last `Metrics.refresh`."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        app = self.metrics.app
        if app is None:
            return
        yield from self._cache(app)
        yield from self._index(app)
        yield from self._jobs(app)
        yield from self._xapi(app)
        yield from self._content()

    def _cache(self, app: web.Application) -> Iterator[Metric]:
        cache = app.get(keys.RESULT_CACHE)
        if cache is None:
            return
        hits = CounterMetricFamily(
            "inflow_result_cache_hits", "Suggest answers served from the result cache."
        )
        hits.add_metric([], cache.hits)
        misses = CounterMetricFamily(
            "inflow_result_cache_misses", "Suggest answers that had to be computed."
        )
        misses.add_metric([], cache.misses)
        yield hits
        yield misses
        yield _gauge("inflow_result_cache_entries", "Answers held by the result cache.", len(cache))

    def _index(self, app: web.Application) -> Iterator[Metric]:
        library = app.get(keys.LIBRARY)
        if library is None:
            return
        index = library.index
        yield _gauge(
            "inflow_index_generation",
            "This node's index generation: +1 per index commit since start-up.",
            index.generation,
        )
        indexed = index.state.content_version
        yield _gauge(
            "inflow_index_content_version",
            "The content version the index reflects (-1: no index yet).",
            indexed,
        )
        db_version = self.metrics.db.content_version  # the shared database's (all nodes)
        follower = app.get(keys.FOLLOWER)  # on PostgreSQL: the newest version a NOTIFY named
        if follower is not None and db_version is not None:
            db_version = max(db_version, follower.latest)
        yield _gauge(
            "inflow_content_version",
            "The database's content version (every content write transaction adds one).",
            db_version,
        )
        yield _gauge(
            "inflow_index_lag_versions",
            "Content versions the index is behind the database (0: in step).",
            None if db_version is None else max(0, db_version - indexed),
        )
        catalog = library.catalog
        size = GaugeMetricFamily(
            "inflow_catalog_size", "Resources in this node's catalog, by kind.", labels=["kind"]
        )
        size.add_metric(["aids"], len(catalog.aids))
        size.add_metric(["apps"], len(catalog.apps))
        size.add_metric(["contexts"], len(catalog.contexts))
        size.add_metric(["mentors"], len(catalog.mentors))
        yield size
        yield _gauge(
            "inflow_catalog_version", "The content version of this node's catalog.", catalog.version
        )

    def _jobs(self, app: web.Application) -> Iterator[Metric]:
        jobs = app.get(keys.JOBS)
        if jobs is None:
            return
        runs = CounterMetricFamily(
            "inflow_job_runs", "Runs of a background job that ended.", labels=["job"]
        )
        failures = CounterMetricFamily(
            "inflow_job_failures", "Runs of a background job that failed.", labels=["job"]
        )
        running = GaugeMetricFamily(
            "inflow_job_running", "1 while a run of the job is in progress.", labels=["job"]
        )
        for name, (ended, failed, now) in jobs.counts().items():
            runs.add_metric([name], ended)
            failures.add_metric([name], failed)
            running.add_metric([name], 1 if now else 0)
        yield runs
        yield failures
        yield running

    def _xapi(self, app: web.Application) -> Iterator[Metric]:
        db = self.metrics.db
        yield _gauge(
            "inflow_xapi_outbox_pending",
            "xAPI statements waiting to be sent to the LRS.",
            db.xapi_pending,
        )
        yield _gauge(
            "inflow_xapi_outbox_dead", "xAPI statements the LRS refused as invalid.", db.xapi_dead
        )
        analytics = app.get(keys.ANALYTICS)
        forwarder = analytics.forwarder if analytics is not None else None
        if forwarder is not None:
            stats = forwarder.stats
            sent = CounterMetricFamily(
                "inflow_xapi_sent", "xAPI statements the LRS accepted (this node)."
            )
            sent.add_metric([], stats.sent)
            failed = CounterMetricFamily(
                "inflow_xapi_send_failures", "Batches the LRS could not take (down, 5xx...)."
            )
            failed.add_metric([], stats.failures)
            yield sent
            yield failed

    def _content(self) -> Iterator[Metric]:
        db = self.metrics.db
        email = GaugeMetricFamily(
            "inflow_email_outbox",
            "E-mail notifications by status (queued: not sent yet; failed: gave up).",
            labels=["status"],
        )
        for status in ("queued", "sent", "failed"):
            email.add_metric([status], db.email.get(status, 0))
        yield email
        links = GaugeMetricFamily(
            "inflow_links",
            "Links of published aids by their last check's status.",
            labels=["status"],
        )
        for status, count in sorted(db.links.items()):
            links.add_metric([status], count)
        yield links
        last = GaugeMetricFamily(
            "inflow_source_last_status",
            "1 for each source's last sync status (never, running, ok, partial, failed).",
            labels=["source", "status"],
        )
        for source, status in sorted(db.source_status.items()):
            last.add_metric([source, status], 1)
        yield last
        items = CounterMetricFamily(
            "inflow_source_items",
            "Items of a source added, changed or failed, over its recorded sync runs.",
            labels=["source", "outcome"],
        )
        for (source, outcome), count in sorted(db.source_items.items()):
            items.add_metric([source, outcome], count)
        yield items
        runs = CounterMetricFamily(
            "inflow_source_syncs", "Sync runs of a source by result.", labels=["source", "status"]
        )
        for (source, status), count in sorted(db.source_runs.items()):
            runs.add_metric([source, status], count)
        yield runs
        yield _gauge(
            "inflow_metrics_count_errors",
            "Database counts that failed at the last refresh (see the log).",
            db.errors,
        )


def _allowed_networks(values: tuple[str, ...]) -> list[_Net]:
    nets = []
    for value in values:
        try:
            nets.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            log.warning("INFLOW_METRICS_ALLOW: %r is not an address or network; ignored", value)
    return nets


def _address_allowed(request: web.Request) -> bool:
    """The caller's address is in INFLOW_METRICS_ALLOW. A request that came through a proxy
    (X-Forwarded-For or Forwarded) counts with the client the trusted proxies name, and not at
    all when its proxy is not trusted: a proxy on 127.0.0.1 would otherwise open /metrics to
    everyone it forwards."""
    settings = request.app[keys.SETTINGS]
    trusted = frozenset(settings.rate_limit_trusted_proxies)
    forwarded = hdrs.X_FORWARDED_FOR in request.headers or hdrs.FORWARDED in request.headers
    if forwarded and (request.remote or "") not in trusted:
        return False
    try:
        address = ipaddress.ip_address(client_address(request, trusted))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket is 127.0.0.1
    return any(address in net for net in request.app[keys.METRICS_NETWORKS])


async def _is_admin(request: web.Request) -> bool:
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    try:
        identity = await request.app[keys.AUTHENTICATOR].authenticate(token.strip())
    except (InvalidToken, AuthUnavailable):
        return False
    return "admin" in identity.roles


@public  # not under /api/: access is decided here (address or admin bearer)
async def metrics_handler(request: web.Request) -> web.Response:
    if not _address_allowed(request) and not await _is_admin(request):
        raise Forbidden(
            "Metrics are open to the addresses in INFLOW_METRICS_ALLOW and to admins' tokens."
        )
    metrics = request.app[keys.METRICS]
    await metrics.refresh()
    body = metrics.render()
    return web.Response(body=body, headers={hdrs.CONTENT_TYPE: CONTENT_TYPE_LATEST})


def setup_metrics(app: web.Application, metrics: Metrics) -> None:
    """`GET /metrics` on an app whose settings turned metrics on."""
    settings = app[keys.SETTINGS]
    metrics.app = app
    app[keys.METRICS] = metrics
    app[keys.METRICS_NETWORKS] = _allowed_networks(settings.metrics_allow)
    app.router.add_get("/metrics", metrics_handler, allow_head=False)
    app.cleanup_ctx.append(_metrics_ctx)


async def _metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup: a database count in progress ends before the storage closes, and the collector
    lets go of the app."""
    yield
    metrics = app[keys.METRICS]
    task = metrics._refreshing
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    metrics.app = None


__all__ = ["Metrics", "route_label", "setup_metrics", "status_class"]
