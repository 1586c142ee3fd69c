"""Tips in the API (server/peer/tips.py is the service; docs/peer.md "Tips").

Learners (any Inflow role):
    POST   /api/v1/peer/tips                   tip.write   {url, title, body, show_name} -> 201
    GET    /api/v1/peer/tips/mine              peer.read   the caller's tips, any status
    PUT    /api/v1/peer/tips/{tip_id}          tip.write   own; back to pending
    DELETE /api/v1/peer/tips/{tip_id}          tip.write   own; audited
    POST   /api/v1/peer/tips/{tip_id}/report   tip.report  {reason}
    POST   /api/v1/peer/tips/{tip_id}/endorse  tip.endorse a vetted mentor of the tip's app
Moderators (reviewers, admins: `tip.moderate`; an app's owners for that app's tips, whatever
their other roles, so these routes let any Inflow role through and the service decides):
    GET    /api/v1/admin/tips?status=&app=
    POST   /api/v1/admin/tips/{tip_id}/approve | reject {reason} | hide
    PUT    /api/v1/admin/tips/{tip_id}         {body, audience?}
    DELETE /api/v1/admin/tips/{tip_id}

Learners' writes count against the per-person peer write rate (server/peer/limits.py).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import keys
from server.admin.openapi import _ok, _op, _param, declared_schema
from server.api.caller import audience_of
from server.api.validation import known_query, page_url
from server.body import read_json
from server.errors import Forbidden
from server.peer.limits import check_peer_rate
from server.peer.models import TIP_STATUSES, Tip
from server.peer.tips import (
    ModeratorEdit,
    Rejection,
    TipChange,
    TipDraft,
    TipReportBody,
    TipService,
    parse,
)
from server.responses import json_response
from server.schemas import _array_limits
from server.security import requires_op

routes = web.RouteTableDef()
PEER = "/api/v1/peer/tips"
ADMIN = "/api/v1/admin/tips"
ONE = "/{tip_id}"
# The moderation routes: the route lets every Inflow role through (owners moderate their apps'
# tips whatever their roles); the service asks `tip.moderate` or ownership of the tip's app.
MODERATION_ROUTE = "peer.read"


def _caller(request: web.Request) -> Any:
    identity = request[keys.IDENTITY]
    if identity is None:  # the middleware never lets an anonymous caller this far
        raise Forbidden("Sign in first.")
    return identity


def _svc(request: web.Request) -> TipService:
    return TipService(request.app)


async def _body(request: web.Request) -> Any:
    return await read_json(request)


def _json(data: Any, status: int = 200) -> web.Response:
    return json_response(data, status, no_store=True)


# -- learners --------------------------------------------------------------------------------------


@routes.post(PEER)
@requires_op("tip.write")
async def write_tip(request: web.Request) -> web.Response:
    draft = parse(TipDraft, await _body(request))
    page_url(draft.url, request.config_dict[keys.SETTINGS].max_url_bytes)
    check_peer_rate(request)
    return _json(await _svc(request).write(_caller(request), draft), 201)


@routes.get(PEER + "/mine")
@requires_op("peer.read")
async def my_tips(request: web.Request) -> web.Response:
    return _json({"tips": await _svc(request).mine(_caller(request))})


@routes.put(PEER + ONE)
@requires_op("tip.write")
async def change_tip(request: web.Request) -> web.Response:
    change = parse(TipChange, await _body(request))
    check_peer_rate(request)
    tip_id = request.match_info["tip_id"]
    return _json(await _svc(request).change_own(_caller(request), tip_id, change))


@routes.delete(PEER + ONE)
@requires_op("tip.write")
async def delete_tip(request: web.Request) -> web.Response:
    check_peer_rate(request)
    await _svc(request).delete_own(_caller(request), request.match_info["tip_id"])
    return web.Response(status=204)


@routes.post(PEER + ONE + "/report")
@requires_op("tip.report")
async def report_tip(request: web.Request) -> web.Response:
    report = parse(TipReportBody, await _body(request) if request.body_exists else {})
    check_peer_rate(request)
    result = await _svc(request).report(
        _caller(request), audience_of(request), request.match_info["tip_id"], report.reason
    )
    return _json(result, 201)


@routes.post(PEER + ONE + "/endorse")
@requires_op("tip.endorse")
async def endorse_tip(request: web.Request) -> web.Response:
    check_peer_rate(request)
    return _json(await _svc(request).endorse(_caller(request), request.match_info["tip_id"]))


# -- moderators ------------------------------------------------------------------------------------


@routes.get(ADMIN)
@requires_op(MODERATION_ROUTE)
async def tip_queue(request: web.Request) -> web.Response:
    known_query(request, {"status", "app"})
    tips = await _svc(request).queue(
        _caller(request), request.query.get("status", ""), request.query.get("app", "")
    )
    return _json({"tips": tips})


@routes.post(ADMIN + ONE + "/approve")
@requires_op(MODERATION_ROUTE)
async def approve_tip(request: web.Request) -> web.Response:
    return _json(await _svc(request).approve(_caller(request), request.match_info["tip_id"]))


@routes.post(ADMIN + ONE + "/reject")
@requires_op(MODERATION_ROUTE)
async def reject_tip(request: web.Request) -> web.Response:
    rejection = parse(Rejection, await _body(request))
    return _json(
        await _svc(request).reject(_caller(request), request.match_info["tip_id"], rejection.reason)
    )


@routes.post(ADMIN + ONE + "/hide")
@requires_op(MODERATION_ROUTE)
async def hide_tip(request: web.Request) -> web.Response:
    return _json(await _svc(request).hide(_caller(request), request.match_info["tip_id"]))


@routes.put(ADMIN + ONE)
@requires_op(MODERATION_ROUTE)
async def edit_tip(request: web.Request) -> web.Response:
    change = parse(ModeratorEdit, await _body(request))
    return _json(await _svc(request).edit(_caller(request), request.match_info["tip_id"], change))


@routes.delete(ADMIN + ONE)
@requires_op(MODERATION_ROUTE)
async def moderator_delete_tip(request: web.Request) -> web.Response:
    await _svc(request).delete(_caller(request), request.match_info["tip_id"])
    return web.Response(status=204)


# -- OpenAPI ---------------------------------------------------------------------------------------


def _request(cls: type) -> dict[str, Any]:
    schema: dict[str, Any] = _array_limits(declared_schema(cls, "validation"))
    schema.pop("title", None)
    return schema


_ENDORSEMENT = {
    "type": ["object", "null"],
    "required": ["id", "name"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string", "description": "The mentor's name (plain text)"},
        "at": {"type": "string"},
    },
}
_PLACE = {
    "app": {
        "type": "object",
        "required": ["id", "name"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
    },
    "context": {
        "type": ["object", "null"],
        "required": ["id", "name"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
    },
}
_HTML = {"type": "string", "description": "The body rendered as sanitised HTML"}


def _own_tip() -> dict[str, Any]:
    """A tip as its author (and, with more, a moderator) sees it: the declared Tip's fields
    (server/peer/models.py) without the author's person key, plus where and the rendered body."""
    props = declared_schema(Tip)["properties"]
    keep = ("id", "body", "show_name", "author_name", "status", "reject_reason")
    stamps = ("created_at", "updated_at")
    properties: dict[str, Any] = {k: props[k] for k in keep}
    properties.update(_PLACE)
    properties["body_html"] = _HTML
    properties["endorsed_by"] = _ENDORSEMENT
    properties.update({k: props[k] for k in stamps})
    return {"type": "object", "required": sorted(properties), "properties": properties}


def _queue_tip() -> dict[str, Any]:
    props = declared_schema(Tip)["properties"]
    base = _own_tip()
    extra = {k: props[k] for k in ("audience", "report_count", "moderated_by", "moderated_at")}
    extra["reports"] = {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["reason", "at"],
            "properties": {"reason": {"type": "string"}, "at": {"type": "string"}},
        },
    }
    properties = {**base["properties"], **extra}
    return {"type": "object", "required": sorted(properties), "properties": properties}


def panel_tip_schema() -> dict[str, Any]:
    """One tip of `page_tips` (the panel, POST /api/v1/peer/page)."""
    properties: dict[str, Any] = {
        "id": {"type": "string"},
        "body_html": _HTML,
        "author_name": {"type": "string", "description": "'' unless the author chose show_name"},
        "author": {"type": "string", "description": "The name, or 'A colleague'"},
        "endorsed_by": _ENDORSEMENT,
        "endorsed": {"type": "string", "description": "'Endorsed by <mentor>' or ''"},
        "context_id": {"type": "string"},
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
        "mine": {"type": "boolean"},
    }
    return {"type": "object", "required": sorted(properties), "properties": properties}


def _peer_op(summary: str, operation: str, **kw: Any) -> dict[str, Any]:
    op = _op(summary, operation, **kw)
    op["tags"] = ["peer"]
    return op


def tips_paths() -> dict[str, Any]:
    """This module's part of the OpenAPI document (merged by server/openapi.py). Bodies come
    from their declarations (server/peer/tips.py), tips from the Tip declaration."""
    tid = _param("tip_id")
    own, queued = _own_tip(), _queue_tip()
    moderation = (
        " Also needs tip.moderate (reviewer, admin) or to own the tip's app (its `owners` "
        "hold the caller's e-mail): asked by the service, 403 otherwise."
    )
    rate = " Counts against the per-person peer write rate (429 with Retry-After)."
    listing = {"type": "object", "required": ["tips"], "properties": {"tips": {"type": "array"}}}
    return {
        PEER: {
            "post": _peer_op(
                "Share a tip about the page: it waits for moderation (pending)",
                "tip.write",
                note=" A page of no mapped app: 422." + rate,
                body=_request(TipDraft),
                ok="201",
                response=_ok("Created", own),
                errors=(400, 401, 403, 413, 422, 429),
            )
        },
        PEER + "/mine": {
            "get": _peer_op(
                "My tips, newest first, with their status and any rejection reason",
                "peer.read",
                response=_ok(
                    schema={**listing, "properties": {"tips": {"type": "array", "items": own}}}
                ),
                errors=(401, 403),
            )
        },
        PEER + ONE: {
            "put": _peer_op(
                "Change my tip: it goes back to moderation (pending)",
                "tip.write",
                params=[tid],
                body=_request(TipChange),
                response=_ok(schema=own),
                note=rate,
                errors=(400, 401, 403, 404, 422, 429),
            ),
            "delete": _peer_op(
                "Delete my tip (audited, without its text)",
                "tip.write",
                params=[tid],
                ok="204",
                response={"description": "Deleted"},
                note=rate,
                errors=(401, 403, 404, 429),
            ),
        },
        PEER + ONE + "/report": {
            "post": _peer_op(
                "Report a tip I can see: hidden from me at once, flagged to moderators",
                "tip.report",
                params=[tid],
                body=_request(TipReportBody),
                ok="201",
                response=_ok("Reported"),
                note=" Once per tip and person: 409 the second time." + rate,
                errors=(400, 401, 403, 404, 409, 422, 429),
            )
        },
        PEER + ONE + "/endorse": {
            "post": _peer_op(
                "Endorse an approved tip ('Endorsed by <mentor>')",
                "tip.endorse",
                params=[tid],
                response=_ok(),
                note=" Only a vetted, active mentor of the tip's app." + rate,
                errors=(401, 403, 404, 429),
            )
        },
        ADMIN: {
            "get": _op(
                "The moderation queue: tips of the apps I moderate, newest first",
                MODERATION_ROUTE,
                params=[
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": list(TIP_STATUSES)},
                    },
                    _param("app", "query", False),
                ],
                response=_ok(
                    schema={**listing, "properties": {"tips": {"type": "array", "items": queued}}}
                ),
                note=moderation,
                errors=(401, 403, 422),
            )
        },
        ADMIN + ONE: {
            "put": _op(
                "Edit a tip as its moderator (audited)",
                MODERATION_ROUTE,
                params=[tid],
                body=_request(ModeratorEdit),
                response=_ok(schema=queued),
                note=moderation,
            ),
            "delete": _op(
                "Delete a tip (audited, without its text)",
                MODERATION_ROUTE,
                params=[tid],
                ok="204",
                response={"description": "Deleted"},
                note=moderation,
                errors=(401, 403, 404),
            ),
        },
        ADMIN + ONE + "/approve": {
            "post": _op(
                "Approve a tip: learners on its page see it",
                MODERATION_ROUTE,
                params=[tid],
                response=_ok(schema=queued),
                note=moderation,
                errors=(401, 403, 404),
            )
        },
        ADMIN + ONE + "/reject": {
            "post": _op(
                "Reject a tip with a reason its author reads",
                MODERATION_ROUTE,
                params=[tid],
                body=_request(Rejection),
                response=_ok(schema=queued),
                note=moderation,
            )
        },
        ADMIN + ONE + "/hide": {
            "post": _op(
                "Hide a tip at once, whatever its status",
                MODERATION_ROUTE,
                params=[tid],
                response=_ok(schema=queued),
                note=moderation,
                errors=(401, 403, 404),
            )
        },
    }


__all__ = ["panel_tip_schema", "routes", "tips_paths"]
