"""Sources in the admin API (server/sources/service.py holds the operations; docs/sources.md).

GET    /api/v1/admin/sources                     every source (source.read)
POST   /api/v1/admin/sources                     a Source (source.write) -> 201
GET    /api/v1/admin/sources/{id}                with `running` and `progress`
PUT    /api/v1/admin/sources/{id}                replace (read-only fields as GET gave them)
DELETE /api/v1/admin/sources/{id}[?archive=1]    409 while its aids are not archived
POST   /api/v1/admin/sources/{id}/sync           202 {run} (source.sync); 409 while one runs
                                                  (on any node: the problem's `node` names it)
GET    /api/v1/admin/sources/{id}/runs           newest first (at most 50)
GET    /api/v1/admin/sources/{id}/runs/{run_id}  one run, its failures with reasons
GET    /api/v1/admin/sources/{id}/items          the provenance of each aid it made
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from server import keys
from server.admin.api import caller, resource_body
from server.admin.openapi import _ok, _op, _param, list_schema, plain_schema
from server.api.validation import known_query
from server.errors import ValidationFailed
from server.models import dump
from server.responses import json_response
from server.security import requires_op
from server.sources.models import Source, SourceItem, SyncRun
from server.sources.service import SourceService, sources_ctx

routes = web.RouteTableDef()
BASE = "/api/v1/admin/sources"
ONE = BASE + "/{source_id}"
TRUE, FALSE = frozenset({"1", "true", "yes"}), frozenset({"", "0", "false", "no"})


def service(request: web.Request) -> SourceService:
    return request.app[keys.SOURCES]


def run_json(run: SyncRun) -> dict[str, Any]:
    """A run as served: its failures as a list of {item, reason}."""
    data = dump(run)
    try:
        failures = json.loads(run.failures or "[]")
    except ValueError:
        failures = []
    data["failures"] = failures if isinstance(failures, list) else []
    return data


def _sid(request: web.Request) -> str:
    return request.match_info["source_id"]


@routes.get(BASE)
@requires_op("source.read")
async def list_sources(request: web.Request) -> web.Response:
    known_query(request)
    svc = service(request)
    found = await svc.list()
    return json_response({"sources": [svc.source_json(s) for s in found]}, no_store=True)


@routes.post(BASE)
@requires_op("source.write")
async def create_source(request: web.Request) -> web.Response:
    known_query(request)
    data = await resource_body(request)
    svc = service(request)
    source = await svc.create(caller(request), data)
    return json_response(svc.source_json(source), 201, no_store=True)


@routes.get(ONE)
@requires_op("source.read")
async def get_source(request: web.Request) -> web.Response:
    known_query(request)
    svc = service(request)
    return json_response(svc.source_json(await svc.get(_sid(request))), no_store=True)


@routes.put(ONE)
@requires_op("source.write")
async def put_source(request: web.Request) -> web.Response:
    known_query(request)
    data = await resource_body(request)
    svc = service(request)
    source = await svc.replace(caller(request), _sid(request), data)
    return json_response(svc.source_json(source), no_store=True)


@routes.delete(ONE)
@requires_op("source.write")
async def delete_source(request: web.Request) -> web.Response:
    q = known_query(request, {"archive"})
    archive = q.get("archive", "").strip().lower()
    if archive not in TRUE | FALSE:
        raise ValidationFailed("'archive' must be 1 or 0.", fields=["archive"])
    await service(request).delete(caller(request), _sid(request), archive=archive in TRUE)
    return web.Response(status=204)


@routes.post(ONE + "/sync")
@requires_op("source.sync")
async def sync_source(request: web.Request) -> web.Response:
    known_query(request)
    run = await service(request).start_sync(_sid(request), caller(request))
    return json_response({"run": run_json(run)}, 202, no_store=True)


@routes.get(ONE + "/runs")
@requires_op("source.read")
async def list_runs(request: web.Request) -> web.Response:
    known_query(request)
    runs = await service(request).runs(_sid(request))
    return json_response({"runs": [run_json(r) for r in runs]}, no_store=True)


@routes.get(ONE + "/runs/{run_id}")
@requires_op("source.read")
async def get_run(request: web.Request) -> web.Response:
    known_query(request)
    run = await service(request).run(_sid(request), request.match_info["run_id"])
    return json_response(run_json(run), no_store=True)


@routes.get(ONE + "/items")
@requires_op("source.read")
async def list_items(request: web.Request) -> web.Response:
    known_query(request)
    items = await service(request).items(_sid(request))
    return json_response({"items": [dump(i) for i in items]}, no_store=True)


# -- OpenAPI ---------------------------------------------------------------------------------------

_PROGRESS = {
    "type": ["object", "null"],
    "description": "While a sync runs: how far it got",
    "required": ["run_id", "done", "total", "message"],
    "properties": {
        "run_id": {"type": "string"},
        "done": {"type": "integer"},
        "total": {"type": "integer"},
        "message": {"type": "string"},
    },
}


def _source_schema() -> dict[str, Any]:
    schema = plain_schema(Source)
    schema["properties"]["running"] = {"type": "boolean", "readOnly": True}
    schema["properties"]["progress"] = {**_PROGRESS, "readOnly": True}
    schema["required"] = sorted(set(schema.get("required", [])) | {"running", "progress"})
    return schema


def _run_schema() -> dict[str, Any]:
    schema = plain_schema(SyncRun)
    schema["properties"]["failures"] = {
        "type": "array",
        "readOnly": True,
        "maxItems": 200,
        "items": {
            "type": "object",
            "required": ["item", "reason"],
            "properties": {"item": {"type": "string"}, "reason": {"type": "string"}},
        },
    }
    return schema


def source_paths() -> dict[str, Any]:
    """This module's part of the OpenAPI document (merged by server/openapi.py); bodies and
    answers from the declarations (server/sources/models.py)."""
    body = plain_schema(Source, "validation")
    source, run = _source_schema(), _run_schema()
    item = plain_schema(SourceItem)
    sid = [_param("source_id")]
    rid = [*sid, _param("run_id")]
    return {
        BASE: {
            "get": _op(
                "Sources that feed the library, with their last sync",
                "source.read",
                response=_ok(schema=list_schema("sources", source)),
                errors=(401, 403, 422),
            ),
            "post": _op(
                "Add a source (a feed, a website section or a git repository)",
                "source.write",
                body=body,
                ok="201",
                response=_ok("Created", source),
                errors=(400, 401, 403, 409, 413, 415, 422),
            ),
        },
        ONE: {
            "get": _op(
                "One source, with whether a sync runs and how far it got",
                "source.read",
                params=sid,
                response=_ok(schema=source),
            ),
            "put": _op(
                "Replace a source (read-only fields as GET gave them, or left out)",
                "source.write",
                params=sid,
                body=body,
                response=_ok(schema=source),
                errors=(400, 401, 403, 404, 409, 413, 415, 422),
            ),
            "delete": _op(
                "Delete a source; 409 while its aids are not archived, unless archive=1 "
                "archives them first (they stay, as Inflow's own)",
                "source.write",
                params=[*sid, _param("archive", "query", False)],
                ok="204",
                response={"description": "Deleted"},
                errors=(401, 403, 404, 409, 422),
            ),
        },
        ONE + "/sync": {
            "post": _op(
                "Sync a source now: answers at once with the run (status running); 409 while "
                "one runs, on this node or another (the problem's `node` names that node)",
                "source.sync",
                params=sid,
                ok="202",
                response=_ok(
                    "Started",
                    {"type": "object", "required": ["run"], "properties": {"run": run}},
                ),
                errors=(401, 403, 404, 409, 422),
            ),
        },
        ONE + "/runs": {
            "get": _op(
                "The source's sync runs, newest first (at most 50)",
                "source.read",
                params=sid,
                response=_ok(schema=list_schema("runs", run)),
            ),
        },
        ONE + "/runs/{run_id}": {
            "get": _op(
                "One sync run: its counts and the items that failed, with reasons",
                "source.read",
                params=rid,
                response=_ok(schema=run),
            ),
        },
        ONE + "/items": {
            "get": _op(
                "What the source made: each item's aid, URL, validators, hash and state",
                "source.read",
                params=sid,
                response=_ok(schema=list_schema("items", item)),
            ),
        },
    }


def setup_sources(app: web.Application) -> None:
    """Routes, and the service with its scheduled syncs (after the library, fetcher and jobs)."""
    app.router.add_routes(routes)
    app.cleanup_ctx.append(sources_ctx)


__all__ = ["routes", "run_json", "setup_sources", "source_paths"]
