"""HTTP routes of the authoring queue (server/queue/service.py), their OpenAPI entries (derived
from the declarations), and `setup_queue(app)`, which mounts them, makes the service and registers
the refresh job (`queue-refresh`, every `settings.queue_refresh_minutes`; 0 = only on demand).

`PUT /api/v1/admin/queue/{item_id}` is open to `queue.read` at the route: an author moves an item
assigned to them; the service refuses the rest of what `queue.write` allows with a 403.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from server import keys
from server.admin.common import field_errors
from server.admin.openapi import declared_schema
from server.api.caller import identity_of
from server.body import read_json
from server.errors import Forbidden, ValidationFailed
from server.jobs import JobRun
from server.models import FieldErrors, validate
from server.queue.models import KINDS, STATUSES, QueueChange, QueueItem
from server.queue.service import QueueService, item_json, validate_filters
from server.responses import json_response
from server.security import requires_op

routes = web.RouteTableDef()
A = "/api/v1/admin/queue"
JOB = "queue-refresh"
FIRST_RUN_SECONDS = 300


def service(request: web.Request) -> QueueService:
    return request.config_dict[keys.QUEUE]


def _json(data: Any, status: int = 200) -> web.Response:
    return json_response(data, status, no_store=True)


@routes.get(A)
@requires_op("queue.read")
async def list_items(request: web.Request) -> web.Response:
    filters = validate_filters(request.query)
    svc = service(request)
    items = await svc.list(filters)
    return _json({"items": [item_json(i) for i in items], "last_refresh": svc.last_refresh})


@routes.put(A + "/{item_id}")
@requires_op("queue.read")
async def change_item(request: web.Request) -> web.Response:
    identity = identity_of(request)
    if identity is None:  # the middleware lets no anonymous caller this far
        raise Forbidden("Sign in first.")
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.")
    svc = service(request)
    item = await svc.get(request.match_info["item_id"])  # 404 before the body's 422
    # a read-modify-write client sends the whole item back: read-only fields are ignored when
    # they are unchanged, and a 422 naming them when changed
    current = item_json(item)
    writable = ("status", "assignee", "note")
    changed = sorted(k for k, v in data.items() if k not in writable and current.get(k, v) != v)
    if changed:
        raise ValidationFailed(
            f"Read-only field(s): {', '.join(changed)}. You may change status, assignee and note.",
            fields=changed,
        )
    try:
        body = validate(QueueChange, {k: data[k] for k in writable if k in data})
    except FieldErrors as exc:
        raise field_errors(exc) from exc
    return _json(item_json(await svc.change(identity, item.id, body)))


@routes.post(A + "/refresh")
@requires_op("queue.refresh")
async def refresh(request: web.Request) -> web.Response:
    summary = await service(request).refresh()
    return _json({"refresh": summary})


async def queue_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the service (after the library, the peer store and the jobs), and the refresh
    job when `queue_refresh_minutes` > 0."""
    svc = QueueService(app)
    app[keys.QUEUE] = svc
    minutes = app[keys.SETTINGS].queue_refresh_minutes
    jobs = app.get(keys.JOBS)
    if jobs is not None and minutes > 0:

        async def run(job: JobRun) -> None:
            job.progress(0, 1, "reading analytics, feedback, questions, aids and links")
            summary = await svc.refresh()
            job.progress(1, 1, f"{summary['found']} found, {summary['added']} new")

        # the first run soon after start-up (a restarted server has its queue within minutes)
        every = minutes * 60
        jobs.register(JOB, every, run, first_in=min(every, FIRST_RUN_SECONDS))
    yield


def setup_queue(app: web.Application) -> None:
    app.router.add_routes(routes)
    app.cleanup_ctx.append(queue_ctx)


# -- OpenAPI -----------------------------------------------------------------------------------

PROBLEM = {"$ref": "#/components/responses/Problem"}
ITEM_ID = {"name": "item_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _ok(schema: dict[str, Any], desc: str = "OK") -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": schema}}}


def _item_schema() -> dict[str, Any]:
    schema = declared_schema(QueueItem)
    schema.setdefault("properties", {})["link"] = {
        "type": "string",
        "description": "Where to act on it in the console (tester, aid, question)",
    }
    return schema


def queue_paths() -> dict[str, Any]:
    item = _item_schema()
    summary = {"type": "object", "additionalProperties": True}
    params = [
        {
            "name": "status",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": [*STATUSES, "active", "all"]},
        },
        {
            "name": "kind",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": list(KINDS)},
        },
        {"name": "assignee", "in": "query", "required": False, "schema": {"type": "string"}},
        {"name": "app", "in": "query", "required": False, "schema": {"type": "string"}},
    ]
    return {
        A: {
            "get": {
                "summary": "The authoring queue: gaps found in analytics, feedback, questions, "
                "review dates and link checks",
                "tags": ["admin"],
                "x-operation": "queue.read",
                "parameters": params,
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "required": ["items", "last_refresh"],
                            "properties": {
                                "items": {"type": "array", "items": item},
                                "last_refresh": summary,
                            },
                        }
                    ),
                    **{str(c): PROBLEM for c in (401, 403, 422)},
                },
            }
        },
        A + "/{item_id}": {
            "put": {
                "summary": "Assign an item, set its status or note (an author: the status of an "
                "item assigned to them)",
                "description": "The service decides: reviewers and admins (queue.write) change "
                "status, assignee and note; an author moves an item assigned to them to "
                "assigned, in_progress or done. Read-only fields sent back unchanged are ignored.",
                "tags": ["admin"],
                "x-operation": "queue.read",
                "parameters": [ITEM_ID],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": declared_schema(QueueChange, "validation")}
                    },
                },
                "responses": {
                    "200": _ok(item),
                    **{str(c): PROBLEM for c in (400, 401, 403, 404, 413, 422)},
                },
            }
        },
        A + "/refresh": {
            "post": {
                "summary": "Compute the queue now (the job does it every queue_refresh_minutes)",
                "tags": ["admin"],
                "x-operation": "queue.refresh",
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "required": ["refresh"],
                            "properties": {"refresh": summary},
                        }
                    ),
                    **{str(c): PROBLEM for c in (401, 403)},
                },
            }
        },
    }


__all__ = ["queue_ctx", "queue_paths", "routes", "setup_queue"]
