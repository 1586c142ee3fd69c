"""HTTP routes of mentor recommendations and flags on aids (server/peer/recommendations.py,
server/peer/flags.py), and their part of the OpenAPI document.

POST   /api/v1/peer/recommendations              (aid.recommend) {url, title, aid_id, note}
DELETE /api/v1/peer/recommendations              (aid.recommend) {url, title, aid_id}
POST   /api/v1/peer/aids/{aid_id}/flag           (aid.flag) {kind, comment}
GET    /api/v1/admin/aid-flags?status=&aid=&app= (flag.read)
POST   /api/v1/admin/aid-flags/{flag_id}/resolve (flag.resolve; audited)

`setup_recommendations(app)` adds the routes and a cleanup context (after the peer store's) that
loads the recommendations into memory and registers them as a suggest signal.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from aiohttp import web

from auth.identity import Identity
from server import keys
from server.admin.common import field_errors
from server.api.caller import audience_of
from server.api.validation import page_url
from server.body import read_json
from server.errors import Forbidden, ValidationFailed
from server.follow import is_postgresql
from server.models import FieldErrors, adapter, validate
from server.peer.flags import (
    FlagRequest,
    flag_aid,
    flag_json,
    list_flags,
    resolve_flag,
    validate_filters,
)
from server.peer.limits import check_peer_rate
from server.peer.recommendations import (
    Recommendations,
    RecommendRequest,
    UnrecommendRequest,
    recommend,
    unrecommend,
)
from server.responses import json_response
from server.security import requires_op

routes = web.RouteTableDef()
RECS = "/api/v1/peer/recommendations"
FLAG = "/api/v1/peer/aids/{aid_id}/flag"
FLAGS = "/api/v1/admin/aid-flags"
T = TypeVar("T")


def _caller(request: web.Request) -> Identity:
    identity = request[keys.IDENTITY]
    if identity is None:  # the middleware never lets an anonymous caller this far
        raise Forbidden("Sign in first.")
    return identity


async def _body(request: web.Request, cls: type[T]) -> T:
    data = await read_json(request)  # the app's body limit (413), depth, lone surrogates
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.")
    try:
        body = validate(cls, {k: v for k, v in data.items() if v is not None})
    except FieldErrors as exc:
        raise field_errors(exc) from exc
    url = getattr(body, "url", None)
    if url is not None:
        page_url(url, request.config_dict[keys.SETTINGS].max_url_bytes)
    return body


@routes.post(RECS)
@requires_op("aid.recommend")
async def post_recommendation(request: web.Request) -> web.Response:
    identity = _caller(request)
    body = await _body(request, RecommendRequest)
    await check_peer_rate(request)
    rec, created = await recommend(request.config_dict, identity, audience_of(request), body)
    return json_response(rec, 201 if created else 200, no_store=True)


@routes.delete(RECS)
@requires_op("aid.recommend")
async def delete_recommendation(request: web.Request) -> web.Response:
    identity = _caller(request)
    body = await _body(request, UnrecommendRequest)
    await unrecommend(request.config_dict, identity, body)
    return web.Response(status=204)


@routes.post(FLAG)
@requires_op("aid.flag")
async def post_flag(request: web.Request) -> web.Response:
    identity = _caller(request)
    body = await _body(request, FlagRequest)
    await check_peer_rate(request)
    flag = await flag_aid(
        request.config_dict, identity, audience_of(request), request.match_info["aid_id"], body
    )
    return json_response(flag, 201, no_store=True)


@routes.get(FLAGS)
@requires_op("flag.read")
async def get_flags(request: web.Request) -> web.Response:
    filters = validate_filters(request.query)
    flags = await list_flags(request.config_dict, filters, _caller(request).email)
    catalog = request.config_dict[keys.LIBRARY].catalog
    return json_response({"flags": [flag_json(f, catalog) for f in flags]}, no_store=True)


@routes.post(FLAGS + "/{flag_id}/resolve")
@requires_op("flag.resolve")
async def post_resolve(request: web.Request) -> web.Response:
    identity = _caller(request)
    flag = await resolve_flag(request.config_dict, identity, request.match_info["flag_id"])
    return json_response(flag, no_store=True)


# -- wiring --------------------------------------------------------------------------------------


async def recommendations_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after the peer store's): every recommendation in memory, the suggest signal
    that reads it, and the task reloading it now and then (other nodes' changes)."""
    cache = Recommendations(app[keys.LIBRARY])
    await cache.reload(app[keys.PEER])
    app[keys.PEER_RECS] = cache
    signals = app[keys.SUGGESTER].signals
    signals.append(cache)
    # On PostgreSQL other nodes add and take back recommendations too: reload as often as the
    # content follower polls (docs/scale-out.md), else the module's default (this node's own
    # changes reload at once).
    settings = app[keys.SETTINGS]
    every = max(1.0, settings.follow_poll_seconds) if is_postgresql(settings.database_url) else None
    run = cache.run(app[keys.PEER]) if every is None else cache.run(app[keys.PEER], every)
    task = asyncio.create_task(run, name="recommendations-reload")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if cache in signals:
            signals.remove(cache)


def setup_recommendations(app: web.Application) -> None:
    """Called by server/app.py after the peer store's cleanup context is added."""
    app.cleanup_ctx.append(recommendations_ctx)
    app.router.add_routes(routes)


# -- OpenAPI -------------------------------------------------------------------------------------


def rec_paths() -> dict[str, Any]:
    """This module's part of the OpenAPI document (merged by server/openapi.py); request bodies
    derive from the declarations, the roles from the permission table (`x-operation`)."""
    problem = {"$ref": "#/components/responses/Problem"}
    text = {"type": "string"}
    when = {"type": "string", "format": "date-time"}

    def errors(*codes: int) -> dict[str, Any]:
        return {str(c): problem for c in codes}

    def body(cls: type) -> dict[str, Any]:
        schema = adapter(cls).json_schema(mode="validation")
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    def ok(desc: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": desc, "content": {"application/json": {"schema": schema}}}

    rec = {
        "type": "object",
        "required": ["id", "mentor_id", "app_id", "context_id", "aid_id", "note", "created_at"],
        "properties": {
            "id": text,
            "mentor_id": text,
            "mentor_name": text,
            "app_id": text,
            "context_id": {**text, "description": '"": every page of the app'},
            "context_name": text,
            "aid_id": text,
            "aid_title": text,
            "note": text,
            "created_at": when,
        },
    }
    flag = {
        "type": "object",
        "required": [
            "id",
            "aid_id",
            "mentor_id",
            "kind",
            "comment",
            "status",
            "resolved_by",
            "resolved_at",
            "created_at",
        ],
        "properties": {
            "id": text,
            "aid_id": text,
            "aid_title": text,
            "aid_owner": text,
            "mentor_id": text,
            "mentor_name": text,
            "kind": {"type": "string", "enum": ["wrong", "outdated"]},
            "comment": text,
            "status": {"type": "string", "enum": ["open", "resolved"]},
            "resolved_by": text,
            "resolved_at": {"type": ["string", "null"], "format": "date-time"},
            "created_at": when,
        },
    }
    aid_id = {"name": "aid_id", "in": "path", "required": True, "schema": text}
    flag_id = {"name": "flag_id", "in": "path", "required": True, "schema": text}
    filters = [
        {
            "name": "status",
            "in": "query",
            "schema": {"type": "string", "enum": ["open", "resolved", "all"], "default": "open"},
        },
        {"name": "aid", "in": "query", "schema": text},
        {"name": "app", "in": "query", "schema": text},
        {
            "name": "mine",
            "in": "query",
            "description": "1: only aids whose owner is your e-mail address",
            "schema": {"type": "string", "enum": ["1", "0", "true", "false"]},
        },
    ]
    return {
        RECS: {
            "post": {
                "summary": "Recommend an aid on the page you are on (vetted mentors of the "
                "page's app); again: changes the note",
                "tags": ["peer"],
                "x-operation": "aid.recommend",
                "requestBody": body(RecommendRequest),
                "responses": {
                    "200": ok("Recommended already: the note is updated", rec),
                    "201": ok("Recommended", rec),
                    **errors(400, 401, 403, 404, 413, 422, 429),
                },
            },
            "delete": {
                "summary": "Take back your recommendation of an aid on the page",
                "tags": ["peer"],
                "x-operation": "aid.recommend",
                "requestBody": body(UnrecommendRequest),
                "responses": {
                    "204": {"description": "Taken back"},
                    **errors(400, 401, 403, 404, 413, 422),
                },
            },
        },
        FLAG: {
            "post": {
                "summary": "Flag an aid as wrong or outdated (vetted mentors); its owner is "
                "e-mailed when the owner is an address",
                "tags": ["peer"],
                "x-operation": "aid.flag",
                "parameters": [aid_id],
                "requestBody": body(FlagRequest),
                "responses": {
                    "201": ok("Flagged", flag),
                    **errors(400, 401, 403, 404, 409, 413, 422, 429),
                },
            }
        },
        FLAGS: {
            "get": {
                "summary": "Flags on aids (default: the open ones), open first, newest first",
                "tags": ["admin"],
                "x-operation": "flag.read",
                "parameters": filters,
                "responses": {
                    "200": ok(
                        "The flags",
                        {
                            "type": "object",
                            "required": ["flags"],
                            "properties": {"flags": {"type": "array", "items": flag}},
                        },
                    ),
                    **errors(401, 403, 422),
                },
            }
        },
        FLAGS + "/{flag_id}/resolve": {
            "post": {
                "summary": "Resolve a flag (audited as aid.flag_resolved); resolved already: 409",
                "tags": ["admin"],
                "x-operation": "flag.resolve",
                "parameters": [flag_id],
                "responses": {"200": ok("Resolved", flag), **errors(401, 403, 404, 409)},
            }
        },
    }
