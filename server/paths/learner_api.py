"""The learner's side of learning paths in the API (docs/api.md "Learning paths"), and
`setup_paths_learner(app)`, which mounts these routes and the report route, opens the LRS reader
and registers its job (server/paths/lrs.py).

    GET  /api/v1/paths/mine                              my paths, the one due first first
    POST /api/v1/paths/mine/sync                         read the LRS now for me (rate-limited)
    GET  /api/v1/paths/{path_id}                         one of my paths
    POST /api/v1/paths/{path_id}/steps/{step_id}/done    {how, checked?}: I did this step

All `path.learn` (any Inflow role). A path that is not the caller's (not assigned to them or one
of their groups, inactive, or outside its audience) is a 404, as if it did not exist.

The sync reads an outside system for one person, so it has its own per-person rate
(`SYNCS_PER_HOUR`, a token bucket in this node's memory like server/peer/limits.py): a 429
problem+json with Retry-After past it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import hdrs, web

from auth.identity import Identity
from server import keys
from server.admin.openapi import _ok, _op, _param, declared_schema
from server.body import read_json
from server.errors import PROBLEM_TYPE, Forbidden
from server.paths import lrs, progress, reports
from server.paths.models import HOWS, STEP_KINDS
from server.peer.people import person_key
from server.ratelimit import TokenBuckets
from server.responses import json_response
from server.schemas import _array_limits
from server.security import requires_op

routes = web.RouteTableDef()
BASE = "/api/v1/paths"
MINE = BASE + "/mine"
ONE = BASE + "/{path_id}"
DONE = ONE + "/steps/{step_id}/done"
SYNCS_PER_HOUR = 12  # a person's "sync now" requests an hour (3 at once)
SYNC_BURST = 3


def _caller(request: web.Request) -> Identity:
    identity = request[keys.IDENTITY]
    if identity is None:  # the middleware never lets an anonymous caller this far
        raise Forbidden("Sign in first.")
    return identity


def _json(data: Any, status: int = 200) -> web.Response:
    return json_response(data, status, no_store=True)


@routes.get(MINE)
@requires_op("path.learn")
async def mine(request: web.Request) -> web.Response:
    return _json(await progress.my_paths(request.app, _caller(request)))


def too_many_syncs(wait: float) -> web.HTTPTooManyRequests:
    seconds = max(1, math.ceil(wait))
    body = {
        "type": "https://inflow.example/problems/paths-sync-rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": f"Your progress was read from the LMS a moment ago; try again in {seconds} s.",
        "retry_after": seconds,
    }
    return web.HTTPTooManyRequests(
        text=json.dumps(body), content_type=PROBLEM_TYPE, headers={hdrs.RETRY_AFTER: str(seconds)}
    )


@routes.post(MINE + "/sync")
@requires_op("path.learn")
async def sync_mine(request: web.Request) -> web.Response:
    identity = _caller(request)
    buckets = request.app.get(keys.PATHS_SYNCS)
    if buckets is not None:
        wait = buckets.take(identity.key)
        if wait:
            raise too_many_syncs(wait)
    app = request.app
    # enrol the caller first: a learner seen for the first time is synced too
    await progress.standings(app, identity)
    result = await lrs.sync(app, person_key(app, identity))
    return _json(
        {
            "lrs": lrs.reader_of(app) is not None,
            **result.as_json(),
            "paths": await progress.my_paths(app, identity),
        }
    )


@routes.get(ONE)
@requires_op("path.learn")
async def one_path(request: web.Request) -> web.Response:
    app = request.app
    standing = await progress.my_path(app, _caller(request), request.match_info["path_id"])
    return _json(await progress.standing_json(app, standing))


@routes.post(DONE)
@requires_op("path.learn")
async def step_done(request: web.Request) -> web.Response:
    data = await read_json(request)
    info = request.match_info
    return _json(
        await progress.mark_done(
            request.app, _caller(request), info["path_id"], info["step_id"], data
        )
    )


def setup_paths_learner(app: web.Application) -> None:
    """The learner routes, the report route, the LRS reader and its job (after jobs_ctx and
    peer_ctx: the job uses the jobs, progress the peer store)."""
    app.router.add_routes(routes)
    app.router.add_routes(reports.routes)
    app.cleanup_ctx.append(lrs.lrs_ctx)
    app[keys.PATHS_SYNCS] = TokenBuckets(SYNCS_PER_HOUR / 3600.0, SYNC_BURST)


# -- OpenAPI ---------------------------------------------------------------------------------------


def _step_schema() -> dict[str, Any]:
    s = {"type": "string"}
    nullable = {"type": ["string", "null"]}
    properties: dict[str, Any] = {
        "id": s,
        "kind": {"type": "string", "enum": list(STEP_KINDS)},
        "title": s,
        "aid_id": s,
        "url": s,
        "activity_id": s,
        "checklist": {"type": "array", "items": s},
        "mentor_id": s,
        "app_id": s,
        "note": s,
        "done": {"type": "boolean"},
        "done_at": nullable,
        "how": {"type": ["string", "null"], "enum": [*HOWS, None]},
    }
    return {"type": "object", "required": sorted(properties), "properties": properties}


def standing_schema() -> dict[str, Any]:
    """One path of `GET /api/v1/paths/mine` (progress.standing_json)."""
    step = _step_schema()
    nullable = {"type": ["string", "null"]}
    properties: dict[str, Any] = {
        "path": {
            "type": "object",
            "required": ["id", "title", "description_html"],
            "properties": {
                "id": {"type": "string"},
                "title": {"type": "string"},
                "description_html": {"type": "string", "description": "Sanitised HTML"},
            },
        },
        "due_on": {**nullable, "format": "date"},
        "done": {"type": "integer", "minimum": 0},
        "total": {"type": "integer", "minimum": 1},
        "completed": {"type": "boolean"},
        "started_at": nullable,
        "completed_at": nullable,
        "next": {"oneOf": [step, {"type": "null"}]},
        "steps": {"type": "array", "items": step},
    }
    return {"type": "object", "required": sorted(properties), "properties": properties}


def _learn_op(summary: str, **kw: Any) -> dict[str, Any]:
    op = _op(summary, "path.learn", **kw)
    op["tags"] = ["paths"]
    return op


def learner_paths() -> dict[str, Any]:
    """This module's part of the OpenAPI document (and the report's, server/paths/reports.py)."""
    standing = standing_schema()
    done_body: dict[str, Any] = _array_limits(declared_schema(progress.StepDone, "validation"))
    done_body.pop("title", None)
    sync = {
        "type": "object",
        "required": ["lrs", "learners", "checked", "ticked", "errors", "paths"],
        "properties": {
            "lrs": {"type": "boolean", "description": "false: no LRS is configured"},
            "learners": {"type": "integer"},
            "checked": {"type": "integer", "description": "course steps asked about"},
            "ticked": {"type": "integer", "description": "course steps the LRS reported done"},
            "errors": {"type": "array", "items": {"type": "string"}},
            "paths": {"type": "array", "items": standing},
        },
    }
    pid, sid = _param("path_id"), _param("step_id")
    return {
        MINE: {
            "get": _learn_op(
                "My learning paths with my progress, the one due first first",
                response=_ok(schema={"type": "array", "items": standing}),
                errors=(401, 403),
            )
        },
        MINE + "/sync": {
            "post": _learn_op(
                "Read my course completions from the LRS now, then my paths",
                response=_ok(schema=sync),
                note=f" At most {SYNCS_PER_HOUR} an hour ({SYNC_BURST} at once): 429 with "
                "Retry-After.",
                errors=(401, 403, 429),
            )
        },
        ONE: {
            "get": _learn_op(
                "One of my learning paths with my progress",
                params=[pid],
                response=_ok(schema=standing),
                errors=(401, 403, 404),
            )
        },
        DONE: {
            "post": _learn_op(
                "I did this step: aid_finished (aid), practice_confirmed with every checklist "
                "line (practice), mentor_confirmed (mentor)",
                params=[pid, sid],
                body=done_body,
                response=_ok(schema=standing),
                note=" Another kind of step, or a checklist line not ticked: 422. A step done "
                "already stays as it was.",
                errors=(400, 401, 403, 404, 413, 422),
            )
        },
        **reports.report_paths(),
    }


__all__ = ["learner_paths", "routes", "setup_paths_learner", "standing_schema"]
