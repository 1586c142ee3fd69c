"""The usage signal of one aid, for admins: see it per page context, and reset it.

GET  /api/v1/admin/aids/{aid_id}/usage        (analytics.read)
POST /api/v1/admin/aids/{aid_id}/usage/reset  (usage.reset; audited as `aid.usage_reset`)

The console shows the same (server/console/usage.py). What the signal is and how it ranks:
server/analytics/usage_signal.py and docs/analytics.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from auth.identity import Identity
from server import keys
from server.admin.common import who
from server.analytics.usage_signal import HALF_LIFE_DAYS
from server.errors import Forbidden, NotFound
from server.responses import json_response
from server.security import requires_op
from server.storage import Changes

routes = web.RouteTableDef()
PATH = "/api/v1/admin/aids/{aid_id}/usage"


def _aid(config: Any, aid_id: str) -> str:
    meta = config[keys.LIBRARY].catalog.aids.get(aid_id)
    if meta is None:
        raise NotFound(f"No aid with id {aid_id!r}.")
    return str(meta.title)


async def usage_report(config: Any, aid_id: str) -> dict[str, Any]:
    """The aid's signal per context, read now from the rollups (not the suggest cache).

    Below the minimum group only the fact is shown, no figures (as in every analytics report)."""
    title = _aid(config, aid_id)
    analytics = config[keys.ANALYTICS]
    usage, store = analytics.usage, analytics.store
    data = await usage.report(aid_id)
    catalog = config[keys.LIBRARY].catalog
    contexts = []
    for ctx_id, per_aid in data.items():
        u = per_aid.get(aid_id)
        if u is None:
            continue
        ctx = catalog.contexts.get(ctx_id)
        row: dict[str, Any] = {**u.as_json(), "context_name": ctx.name if ctx else ctx_id}
        if not u.counts:
            row.update(people=None, helpful=None, not_helpful=None, opened=None)
        contexts.append(row)
    contexts.sort(key=lambda r: (not r["counts"], -(r["people"] or 0), r["context"]))
    return {
        "aid": aid_id,
        "title": title,
        "min_group": usage.min_group,
        "half_life_days": HALF_LIFE_DAYS,
        "reset_at": await store.usage_reset_time(aid_id) or None,
        "contexts": contexts,
    }


async def reset_usage(config: Any, identity: Identity, aid_id: str) -> dict[str, Any]:
    """Forget the aid's signal up to now, log it in the audit log, and refresh what suggest
    reads, so the next suggest answer no longer uses it."""
    _aid(config, aid_id)
    analytics = config[keys.ANALYTICS]
    at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    removed = await analytics.store.usage_reset(aid_id, at)
    storage = config[keys.LIBRARY].storage

    def audit(changes: Changes) -> None:
        storage.audit_add_tx(
            who(identity), "aid.usage_reset", "aid", aid_id, {"before": at, "rows": removed}
        )

    await config[keys.LIBRARY].write(audit)
    await analytics.usage.refresh()
    return await usage_report(config, aid_id)


def _caller(request: web.Request) -> Identity:
    identity = request[keys.IDENTITY]
    if identity is None:  # the middleware never lets an anonymous caller this far
        raise Forbidden("Sign in first.")
    return identity


@routes.get(PATH)
@requires_op("analytics.read")
async def get_usage(request: web.Request) -> web.Response:
    return json_response(
        await usage_report(request.config_dict, request.match_info["aid_id"]), no_store=True
    )


@routes.post(f"{PATH}/reset")
@requires_op("usage.reset")
async def post_reset(request: web.Request) -> web.Response:
    identity = _caller(request)
    report = await reset_usage(request.config_dict, identity, request.match_info["aid_id"])
    return json_response(report, no_store=True)


def usage_paths() -> dict[str, Any]:
    """This module's part of the OpenAPI document (merged by server/openapi.py)."""
    problem = {"$ref": "#/components/responses/Problem"}
    param = {"name": "aid_id", "in": "path", "required": True, "schema": {"type": "string"}}
    context = {
        "type": "object",
        "required": ["context", "context_name", "people", "helpful", "not_helpful", "score"],
        "properties": {
            "context": {"type": "string"},
            "context_name": {"type": "string"},
            "people": {"type": ["integer", "null"]},
            "helpful": {"type": ["integer", "null"]},
            "not_helpful": {"type": ["integer", "null"]},
            "opened": {"type": ["integer", "null"]},
            "score": {"type": "number"},
            "counts": {"type": "boolean"},
        },
    }
    ok = {
        "description": "The aid's usage signal per page context",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["aid", "min_group", "half_life_days", "reset_at", "contexts"],
                    "properties": {
                        "aid": {"type": "string"},
                        "title": {"type": "string"},
                        "min_group": {"type": "integer"},
                        "half_life_days": {"type": "number"},
                        "reset_at": {"type": ["string", "null"], "format": "date-time"},
                        "contexts": {"type": "array", "items": context},
                    },
                }
            }
        },
    }
    errors = {str(c): problem for c in (401, 403, 404)}
    return {
        PATH: {
            "get": {
                "summary": "The aid's usage signal per page context (helpful, not helpful, "
                "people, score); figures only at or above the minimum group",
                "tags": ["admin"],
                "x-operation": "analytics.read",
                "parameters": [param],
                "responses": {"200": ok, **errors},
            }
        },
        f"{PATH}/reset": {
            "post": {
                "summary": "Reset the aid's usage signal: events before now no longer count "
                "(audited)",
                "tags": ["admin"],
                "x-operation": "usage.reset",
                "parameters": [param],
                "responses": {"200": ok, **errors},
            }
        },
    }
