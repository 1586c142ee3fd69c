"""The application factory. No I/O at import time: everything opens in cleanup contexts."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from auth.service import TokenAuthenticator
from index.service import IndexService
from server import keys
from server.admin import api as admin_api
from server.admin import bulk_api as admin_bulk
from server.admin import usage as admin_usage
from server.admin.templates_api import setup_app_templates
from server.admin.transcripts import setup_transcripts
from server.analytics import setup_analytics
from server.api import public as public_api
from server.body import read_body
from server.cache import ResultCache
from server.cluster import cluster_ctx
from server.console import setup_console
from server.demo import add_demo_routes
from server.errors import Handler, problem, problem_middleware
from server.fetch import fetcher_ctx
from server.follow import follow_ctx
from server.health.api import setup_health
from server.jobs import jobs_ctx
from server.learn import setup_learn
from server.library import Library
from server.logs import request_middleware
from server.metrics import Metrics, setup_metrics
from server.openapi import add_openapi_route
from server.paths.admin_api import setup_paths_admin
from server.paths.learner_api import setup_paths_learner
from server.peer import page as peer_page
from server.peer.limits import peer_write_buckets
from server.peer.pairings_api import setup_pairings
from server.peer.questions_api import setup_questions
from server.peer.recs_api import setup_recommendations
from server.peer.sender import mail_ctx
from server.peer.store import PeerStore
from server.peer.tips_api import routes as tips_routes
from server.queue.api import setup_queue
from server.ratelimit import rate_limit_middlewares
from server.render import AsyncRenderer
from server.security import auth_middleware
from server.settings import Settings
from server.snapshots import snapshots_ctx
from server.sources.api import setup_sources
from server.storage import Storage
from server.suggest import Suggester

log = logging.getLogger(__name__)


async def authenticator_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the bearer-token authenticator from the auth settings, closed on shutdown."""
    authenticator = await TokenAuthenticator.from_settings(app[keys.SETTINGS].auth)
    app[keys.AUTHENTICATOR] = authenticator
    try:
        yield
    finally:
        await authenticator.close()


async def heap_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx, last: what start-up loaded (the catalog: 400k objects at 100k aids) is moved
    out of the garbage collector's full collections, which scanned all of it in pauses of
    150-300 ms on the event loop (uncached suggest's p99). Moved back at shutdown, so an app
    closed in a long-lived process (the tests) can still be collected."""
    gc.freeze()
    yield
    gc.unfreeze()


async def library_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    storage = Storage(
        settings.db_path,
        analytics_secret=settings.analytics_secret,
        key_dir=settings.data_dir,
        url=settings.database_url,
    )
    await storage.open()
    index = IndexService(
        settings.index_dir,
        search_threads=settings.search_threads,
        writer_timeout=settings.writer_timeout_seconds,
        mmap=settings.index_mmap,
        merge_delay=settings.index_merge_delay_seconds,
        build_procs=settings.index_build_procs,
    )
    try:
        await index.open()
        library = Library(storage, index)
        await library.start(settings.content_dir)
        app[keys.LIBRARY] = library
        app[keys.SUGGESTER] = Suggester(settings, index, app[keys.RESULT_CACHE])
        yield
    finally:
        if keys.LIBRARY in app:
            await app[keys.LIBRARY].stop()  # a background index rebuild, if one runs
        await index.close()  # drains the writer queue first
        await storage.close()


async def peer_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: peer learning's store, on the library's storage (closed with it), and the
    per-person write limit."""
    storage = app[keys.LIBRARY].storage
    # person keys are analytics pseudonyms: load the key now, in the storage thread, so
    # server/peer/people.py person_key never reads a file on the event loop
    await storage.call(storage.pseudonymize, "", "")
    app[keys.PEER] = PeerStore(storage)
    buckets = peer_write_buckets(app[keys.SETTINGS].peer_writes_per_hour)
    if buckets is not None:
        app[keys.PEER_WRITES] = buckets
    yield


# X-Request-Id: the extension can show it with an error (server/logs.py, docs/operations.md)
EXPOSE_HEADERS = "ETag, WWW-Authenticate, Retry-After, X-Request-Id"


def cors_middleware_factory(origins: frozenset[str]) -> web.middleware:  # type: ignore[valid-type]
    allow_headers = "Authorization, Content-Type, If-None-Match, If-Match"

    @web.middleware
    async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = origin is not None and origin in origins and request.path.startswith("/api/")
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            if not allowed:
                return problem(403, "Forbidden", "This origin may not call the API.", "cors")
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin or "",
                    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
                    "Access-Control-Allow-Headers": allow_headers,
                    "Access-Control-Max-Age": "600",
                    "Vary": "Origin",
                },
            )
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects; the problem middleware answers the rest
            if allowed:
                exc.headers["Access-Control-Allow-Origin"] = origin or ""
                exc.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
                exc.headers["Vary"] = "Origin"
            raise
        if allowed:
            response.headers["Access-Control-Allow-Origin"] = origin or ""
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            response.headers["Vary"] = "Origin"
        return response

    return cors_middleware


def request_log_middleware_factory(path: Path) -> web.middleware:  # type: ignore[valid-type]
    """Debug aid (INFLOW_REQUEST_LOG): one JSON line per API request, with its body.

    Never records the Authorization header. Used by the privacy test that proves unmapped URLs
    never reach the server.
    """

    def _append(line: str) -> None:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    @web.middleware
    async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            length = request.content_length
            if not request.body_exists:
                body = ""
            elif length is not None and length <= request.client_max_size:
                # read_body keeps the bytes on the request: the handler reads the same ones.
                body = (await read_body(request)).decode("utf-8", "replace")
            else:  # chunked, or bigger than the app's limit: the route reads it with its own limit
                body = f"<{'chunked' if length is None else length} bytes, not logged>"
            line = json.dumps(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": request.query_string,
                    "body": body,
                }
            )
            await asyncio.get_running_loop().run_in_executor(None, _append, line)
        return await handler(request)

    return request_log_middleware


def create_app(settings: Settings) -> web.Application:
    # CORS outermost: problem answers (401, 404, 422, 429...) carry its headers too, or the
    # extension sees an opaque network error instead of the problem.
    # The request id, request log line and metrics outermost of all (server/logs.py): they see
    # every answer, CORS preflights and problems included.
    metrics = Metrics(settings.metrics_cache_seconds) if settings.metrics else None
    middlewares: list[Middleware] = [request_middleware(metrics)]
    if settings.cors_origins:
        middlewares.append(cors_middleware_factory(frozenset(settings.cors_origins)))
    middlewares.append(problem_middleware)
    by_address, by_subject = rate_limit_middlewares(settings)
    if by_address is not None:  # before the token is checked: floods of bad tokens stop here
        middlewares.append(by_address)
    if settings.request_log is not None:
        middlewares.append(request_log_middleware_factory(settings.request_log))
    middlewares.append(auth_middleware)
    if by_subject is not None:
        middlewares.append(by_subject)
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_bytes)
    app[keys.SETTINGS] = settings
    app[keys.RESULT_CACHE] = ResultCache(settings.cache_entries)
    app[keys.RENDERER] = AsyncRenderer(settings.image_hosts, base_url=settings.base_url)
    app.cleanup_ctx.append(library_ctx)
    # right after the library: the locks of work that runs once across nodes (server/cluster.py)
    app.cleanup_ctx.append(cluster_ctx)
    app.cleanup_ctx.append(peer_ctx)  # after library_ctx: the peer store uses its storage
    app.cleanup_ctx.append(mail_ctx)  # after peer_ctx: the e-mail sender reads the outbox
    app.cleanup_ctx.append(fetcher_ctx)  # the safe HTTP client (sources, link checks)
    # background jobs: after what they use (library, peer store, fetcher), so they stop first;
    # before the features that register jobs (sources, health, queue)
    app.cleanup_ctx.append(jobs_ctx)
    # after library_ctx and jobs_ctx: other nodes' content changes, and the change log's prune job
    app.cleanup_ctx.append(follow_ctx)
    app.cleanup_ctx.append(snapshots_ctx)  # after jobs_ctx: index snapshots are a job
    app.cleanup_ctx.append(authenticator_ctx)
    app.router.add_routes(public_api.routes)
    app.router.add_routes(admin_api.routes)
    app.router.add_routes(admin_usage.routes)
    setup_app_templates(app)  # read at start-up, off the loop; /api/v1/admin/app-templates
    setup_transcripts(app)  # a video aid's transcript: /api/v1/admin/aids/{id}/transcript
    app.router.add_routes(admin_bulk.routes)
    app.router.add_routes(tips_routes)  # peer learning: tips (server/peer/tips_api.py)
    setup_questions(app)  # after peer_ctx: the question index is rebuilt from the peer store
    setup_recommendations(app)  # after peer_ctx: recommendations in memory, a suggest signal
    app.router.add_routes(peer_page.routes)  # the panel's peer learning, one request a page
    setup_console(app)  # after library_ctx: sessions live in the database
    setup_learn(app)  # the learner web app at /learn (docs/learn.md), sessions like the console's
    setup_analytics(app)  # after library_ctx: event validation reads the catalog
    setup_pairings(app)  # after library_ctx: pairings read the library and the suggester
    setup_health(app)  # after jobs_ctx: link checks are a job (server/health, docs/health.md)
    setup_sources(app)  # after library, fetcher and jobs: sources sync as jobs (docs/sources.md)
    setup_queue(app)  # after jobs_ctx: the authoring queue's refresh is a job (docs/queue.md)
    setup_paths_admin(app)  # after peer_ctx: learning paths' admin API (docs/paths.md)
    setup_paths_learner(app)  # after jobs_ctx, peer_ctx: my paths, LRS sync job, reports
    add_openapi_route(app)
    if metrics is not None:  # GET /metrics (INFLOW_METRICS; docs/operations.md)
        setup_metrics(app, metrics)  # last: its cleanup runs first, before the storage closes
    if settings.serve_demo:
        add_demo_routes(app)
    # after every other context has started (its cleanup, an unfreeze, first: harmless)
    app.cleanup_ctx.append(heap_ctx)
    return app
