"""Learning paths in the admin API (server/paths/service.py holds the operations; docs/paths.md).

GET    /api/v1/admin/paths                                   every path (path.read)
POST   /api/v1/admin/paths                                   a LearningPath (path.write) -> 201
GET    /api/v1/admin/paths/{path_id}                         one path, with its ETag
PUT    /api/v1/admin/paths/{path_id}                         replace (If-Match optional: 412)
DELETE /api/v1/admin/paths/{path_id}                         with its assignments and progress
GET    /api/v1/admin/paths/{path_id}/assignments             who has it (path.read)
POST   /api/v1/admin/paths/{path_id}/assignments             to a group or a person (path.assign)
DELETE /api/v1/admin/paths/{path_id}/assignments/{assignment_id}

Bodies and answers are the declarations (server/paths/models.py); a step naming an aid, a mentor
or an app the catalog does not have is a 422 naming the step's field (`steps[2].aid_id`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import keys
from server.admin.api import caller, resource_body
from server.admin.openapi import _ok, _op, _param, list_schema, plain_schema
from server.api.validation import known_query
from server.paths.models import LearningPath, PathAssignment
from server.paths.service import PathService, assignment_json, path_etag, path_json
from server.responses import json_response
from server.security import requires_op

routes = web.RouteTableDef()
BASE = "/api/v1/admin/paths"
ONE = BASE + "/{path_id}"
ASSIGNMENTS = ONE + "/assignments"
ASSIGNMENT = ASSIGNMENTS + "/{assignment_id}"


def service(request: web.Request) -> PathService:
    return PathService(request.app[keys.PEER])


def _pid(request: web.Request) -> str:
    return request.match_info["path_id"]


def _if_match(request: web.Request) -> str | None:
    return request.headers.get("If-Match")


@routes.get(BASE)
@requires_op("path.read")
async def list_paths(request: web.Request) -> web.Response:
    known_query(request)
    found = await service(request).list()
    return json_response({"paths": [path_json(p) for p in found]}, no_store=True)


@routes.post(BASE)
@requires_op("path.write")
async def create_path(request: web.Request) -> web.Response:
    known_query(request)
    data = await resource_body(request)
    catalog = request.app[keys.LIBRARY].catalog
    path = await service(request).create(caller(request), data, catalog)
    return json_response(path_json(path), 201, etag=path_etag(path), no_store=True)


@routes.get(ONE)
@requires_op("path.read")
async def get_path(request: web.Request) -> web.Response:
    known_query(request)
    path = await service(request).get(_pid(request))
    return json_response(path_json(path), etag=path_etag(path), no_store=True)


@routes.put(ONE)
@requires_op("path.write")
async def put_path(request: web.Request) -> web.Response:
    known_query(request)
    data = await resource_body(request)  # checked after If-Match (the service's order)
    catalog = request.app[keys.LIBRARY].catalog
    path = await service(request).replace(
        caller(request), _pid(request), data, catalog, if_match=_if_match(request)
    )
    return json_response(path_json(path), etag=path_etag(path), no_store=True)


@routes.delete(ONE)
@requires_op("path.write")
async def delete_path(request: web.Request) -> web.Response:
    known_query(request)
    await service(request).delete(caller(request), _pid(request), if_match=_if_match(request))
    return web.Response(status=204)


@routes.get(ASSIGNMENTS)
@requires_op("path.read")
async def list_assignments(request: web.Request) -> web.Response:
    known_query(request)
    found = await service(request).assignments(_pid(request))
    return json_response({"assignments": [assignment_json(a) for a in found]}, no_store=True)


@routes.post(ASSIGNMENTS)
@requires_op("path.assign")
async def create_assignment(request: web.Request) -> web.Response:
    known_query(request)
    data = await resource_body(request)
    made = await service(request).assign(caller(request), _pid(request), data)
    return json_response(assignment_json(made), 201, no_store=True)


@routes.delete(ASSIGNMENT)
@requires_op("path.assign")
async def delete_assignment(request: web.Request) -> web.Response:
    known_query(request)
    svc = service(request)
    await svc.unassign(caller(request), _pid(request), request.match_info["assignment_id"])
    return web.Response(status=204)


# -- OpenAPI ---------------------------------------------------------------------------------------

_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "The ETag you read; another version: 412 (left out: the write goes through)",
}


def path_admin_paths() -> dict[str, Any]:
    """This module's part of the OpenAPI document (merged by server/openapi.py); bodies and
    answers from the declarations (server/paths/models.py)."""
    path, body = plain_schema(LearningPath), plain_schema(LearningPath, "validation")
    assignment = plain_schema(PathAssignment)
    assignment_body = plain_schema(PathAssignment, "validation")
    # the path's id comes from the URL
    assignment_body["required"] = [n for n in assignment_body.get("required", []) if n != "path_id"]
    pid = [_param("path_id")]
    return {
        BASE: {
            "get": _op(
                "Learning paths, in title order",
                "path.read",
                response=_ok(schema=list_schema("paths", path)),
                errors=(401, 403, 422),
            ),
            "post": _op(
                "Create a learning path (its steps' aids, mentors and apps must exist)",
                "path.write",
                body=body,
                ok="201",
                response=_ok("Created", path, etag=True),
                errors=(400, 401, 403, 409, 413, 415, 422),
            ),
        },
        ONE: {
            "get": _op(
                "One learning path, with its ETag",
                "path.read",
                params=pid,
                response=_ok(schema=path, etag=True),
            ),
            "put": _op(
                "Replace a learning path (read-only fields as GET gave them, or left out)",
                "path.write",
                params=[*pid, _IF_MATCH],
                body=body,
                response=_ok(schema=path, etag=True),
                errors=(400, 401, 403, 404, 412, 413, 415, 422),
            ),
            "delete": _op(
                "Delete a learning path, with its assignments and everyone's progress on it",
                "path.write",
                params=[*pid, _IF_MATCH],
                ok="204",
                response={"description": "Deleted"},
                errors=(401, 403, 404, 412, 422),
            ),
        },
        ASSIGNMENTS: {
            "get": _op(
                "Who the path is assigned to: groups and people, with due dates",
                "path.read",
                params=pid,
                response=_ok(schema=list_schema("assignments", assignment)),
            ),
            "post": _op(
                "Assign the path to a Keycloak group or to one person (one of the two), "
                "optionally by a date; 409 when assigned to them already",
                "path.assign",
                params=pid,
                body=assignment_body,
                ok="201",
                response=_ok("Created", assignment),
                errors=(400, 401, 403, 404, 409, 413, 415, 422),
            ),
        },
        ASSIGNMENT: {
            "delete": _op(
                "Remove an assignment (progress already made is kept)",
                "path.assign",
                params=[*pid, _param("assignment_id")],
                ok="204",
                response={"description": "Deleted"},
                errors=(401, 403, 404, 422),
            ),
        },
    }


def setup_paths_admin(app: web.Application) -> None:
    """The admin routes of learning paths (after peer_ctx: they use the peer store)."""
    app.router.add_routes(routes)


__all__ = ["path_admin_paths", "routes", "setup_paths_admin"]
