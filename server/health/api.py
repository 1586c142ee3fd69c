"""Link and rule health in the HTTP API (docs/health.md).

    GET  /api/v1/admin/health/links?owner=&app=&status=   the last check's results, failing first
    POST /api/v1/admin/health/links/check                  start a check now: 202 {job}
    GET  /api/v1/admin/health/rules?days=                  unused apps and contexts, rule warnings

The two reads let every Inflow role through the route (app owners read their apps' health
whatever their roles); server/health/service.py `scope` decides what each caller sees: everything
with `health.read`, their apps for an app's owners, nothing for anyone else. Starting a check is
`health.check`.

`setup_health(app)` adds the routes and the cleanup context that registers the `link-check` job
(after the jobs, the fetcher and the peer store are open).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from server import keys
from server.admin.openapi import _ok, _op, _param
from server.api.validation import known_query
from server.errors import Conflict, ValidationFailed
from server.health.links import CHECK_MAX_BYTES, LinkCache, LinkChecker
from server.health.models import LINK_STATUSES
from server.health.rules import DAYS_MAX
from server.health.service import (
    JOB,
    job_state,
    last_checked,
    link_report,
    rules_report,
    scope,
)
from server.jobs import JobRun
from server.models import SLUG_RE
from server.responses import json_response
from server.schemas import ref
from server.security import requires_op

routes = web.RouteTableDef()
BASE = "/api/v1/admin/health"
# The reads: every Inflow role passes the route; the service shows each caller what is theirs.
READ_ROUTE = "peer.read"
# a restart close to the next check waits at least this long (the server settles first)
FIRST_RUN_MIN_SECONDS = 60.0
# links never checked yet are checked this long after start-up (not a whole interval later)
NEVER_CHECKED_FIRST_SECONDS = 300.0


def _query(request: web.Request, allowed: set[str]) -> dict[str, str]:
    return {k: v.strip() for k, v in known_query(request, allowed).items()}


def _seen(request: web.Request) -> frozenset[str] | None:
    return scope(request[keys.IDENTITY], request.app[keys.LIBRARY].catalog)


def link_filters(values: dict[str, str]) -> dict[str, str]:
    """The links report's filters, checked (422 with the parameter's name)."""
    app, status, owner = values.get("app", ""), values.get("status", ""), values.get("owner", "")
    if app and not SLUG_RE.match(app):
        raise ValidationFailed("'app' must be an app id.", fields=["app"])
    if status and status not in LINK_STATUSES:
        raise ValidationFailed(
            f"'status' must be one of {', '.join(LINK_STATUSES)}.", fields=["status"]
        )
    if len(owner) > 200:
        raise ValidationFailed("'owner' is at most 200 characters.", fields=["owner"])
    return {"app": app, "status": status, "owner": owner}


def days_of(raw: str, default: int) -> int:
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= DAYS_MAX:
        raise ValidationFailed(
            f"'days' must be a whole number from 1 to {DAYS_MAX}.", fields=["days"]
        )
    return int(raw)


@routes.get(f"{BASE}/links")
@requires_op(READ_ROUTE)
async def links(request: web.Request) -> web.Response:
    filters = link_filters(_query(request, {"owner", "app", "status"}))
    report = await link_report(request.app[keys.PEER], _seen(request), **filters)
    return json_response({**report, "job": job_state(request.app)}, no_store=True)


@routes.post(f"{BASE}/links/check")
@requires_op("health.check")
async def check(request: web.Request) -> web.Response:
    _query(request, set())
    if not await request.app[keys.JOBS].run_now(JOB):
        raise Conflict("A link check is running; its results replace the last ones when done.")
    return json_response({"job": job_state(request.app)}, 202, no_store=True)


@routes.get(f"{BASE}/rules")
@requires_op(READ_ROUTE)
async def rules(request: web.Request) -> web.Response:
    q = _query(request, {"days"})
    days = days_of(q.get("days", ""), request.app[keys.SETTINGS].rule_health_days)
    return json_response(await rules_report(request.app, _seen(request), days), no_store=True)


def checker_of(app: web.Application, cache: LinkCache | None = None) -> LinkChecker:
    """The link checker over the app's peer store and safe fetcher (robots.txt obeyed)."""
    settings = app[keys.SETTINGS]
    fetcher = app[keys.FETCHER]
    policy = fetcher.policy(
        max_bytes=min(CHECK_MAX_BYTES, settings.fetch_max_bytes),
        robots=True,
    )
    return LinkChecker(
        app[keys.PEER], fetcher, policy, delay=settings.link_check_delay_seconds, cache=cache
    )


async def health_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: register the `link-check` job, every `link_check_hours` (0: by hand only).
    The first run is due one interval after the last check (a restart does not check again), or
    five minutes after start-up when links were never checked."""
    every = app[keys.SETTINGS].link_check_hours * 3600.0

    cache: LinkCache = {}  # the links of unchanged aids, from run to run (parsed once)

    async def run(job: JobRun) -> None:
        await checker_of(app, cache).run(job.progress)

    first_in = None
    if every > 0:
        last = await last_checked(app[keys.PEER])
        if last is None:  # never checked (a new installation): soon, once the server settled
            first_in = min(every, NEVER_CHECKED_FIRST_SECONDS)
        else:
            first_in = max(FIRST_RUN_MIN_SECONDS, every - (time.time() - last))
    app[keys.JOBS].register(JOB, every, run, first_in=first_in)
    yield


def setup_health(app: web.Application) -> None:
    """The health routes, and the job (after the jobs, fetcher and peer contexts)."""
    app.router.add_routes(routes)
    app.cleanup_ctx.append(health_ctx)


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_STRS = {"type": "array", "items": _STR}
JOB_STATE = _obj(
    ["name", "running", "started_at", "finished_at", "last_error", "progress"],
    name=_STR,
    registered=_BOOL,
    running=_BOOL,
    started_at=_STR,
    finished_at=_STR,
    last_error=_STR,
    runs=_INT,
    every_seconds={"type": "number"},
    next_at={"type": ["string", "null"]},
    node=_STR,  # where the last (or current) run ran (docs/scale-out.md)
    elsewhere=_BOOL,  # that run is on another node (its progress is there)
    progress=_obj(["done", "total", "message"], done=_INT, total=_INT, message=_STR),
)
LINK = _obj(
    ["aid", "url", "primary", "status", "http_status", "final_url", "detail", "checked_at"],
    aid=_obj(["id", "title", "owner", "apps"], id=_STR, title=_STR, owner=_STR, apps=_STRS),
    url=_STR,
    primary=_BOOL,
    status={"type": "string", "enum": list(LINK_STATUSES)},
    http_status=_INT,
    final_url=_STR,
    detail=_STR,
    checked_at=_STR,
    failing_since=_STR,
)
LINKS = _obj(
    ["links", "counts", "truncated", "checked_at", "job"],
    links={"type": "array", "items": LINK},
    counts={"type": "object", "additionalProperties": _INT},
    truncated=_BOOL,
    checked_at=_STR,
    job=JOB_STATE,
)
RULES = _obj(
    ["days", "since", "apps"],
    days=_INT,
    since=_STR,
    apps={
        "type": "array",
        "items": _obj(
            ["app", "unused", "contexts", "unused_contexts", "warnings"],
            app=_obj(["id", "name", "owners"], id=_STR, name=_STR, owners=_STRS),
            unused=_BOOL,
            contexts=_INT,
            unused_contexts={
                "type": "array",
                "items": _obj(["id", "name", "rules"], id=_STR, name=_STR, rules=_STRS),
            },
            warnings={"type": "array", "items": ref("RuleWarning")},
        ),
    },
)


def health_paths() -> dict[str, Any]:
    """This module's part of the OpenAPI document (merged by server/openapi.py)."""
    note = (
        " Every role passes the route: callers with health.read see every app, an app's owners"
        " their apps, anyone else nothing."
    )
    listing = [
        _param("owner", "query", False),
        _param("app", "query", False),
        _param("status", "query", False),
    ]
    return {
        f"{BASE}/links": {
            "get": _op(
                "Links of published aids as last checked (failing first), with the job's state",
                READ_ROUTE,
                params=listing,
                errors=(400, 401, 403, 422),
                response=_ok(schema=LINKS),
                note=note,
            )
        },
        f"{BASE}/links/check": {
            "post": _op(
                "Check every link of every published aid now (in the background)",
                "health.check",
                ok="202",
                errors=(401, 403, 409, 422),
                response=_ok("Started", _obj(["job"], job=JOB_STATE)),
            )
        },
        f"{BASE}/rules": {
            "get": _op(
                "Apps and contexts with no panel opening in `days` days, and rule warnings",
                READ_ROUTE,
                params=[_param("days", "query", False, "integer")],
                errors=(400, 401, 403, 422),
                response=_ok(schema=RULES),
                note=note,
            )
        },
    }


__all__ = ["health_paths", "routes", "setup_health"]
