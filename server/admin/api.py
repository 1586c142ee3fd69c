"""The admin JSON API under /api/v1/admin/ (docs/admin.md). Handlers stay short: parse, call the
service, answer with an ETag where there is one. Errors come up as domain exceptions."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web

from auth.identity import Identity
from server import keys
from server.admin.common import field_errors
from server.admin.service import (
    AdminService,
    aid_etag,
    aid_json,
    app_etag,
    app_json,
    context_etag,
    context_json,
    mentor_etag,
    mentor_json,
)
from server.admin.tester import RuleTestRequest
from server.api.validation import int_field, known_query, page_url
from server.body import read_body, read_json
from server.cursor import page_by_id
from server.errors import (
    Forbidden,
    UnsupportedMediaType,
    ValidationFailed,
)
from server.models import FieldErrors, Mapping, Pins, Preview, Rollback, Transition, validate
from server.responses import json_response
from server.security import requires_op

B = TypeVar("B")

routes = web.RouteTableDef()
PREFIX = "/api/v1/admin"
ARCHIVE_TYPES = frozenset(
    {
        "application/zip",
        "application/x-zip-compressed",
        "application/x-tar",
        "application/gzip",
        "application/x-gzip",
        "application/x-xz",
        "application/x-bzip2",
        "application/octet-stream",
    }
)


def service(request: web.Request) -> AdminService:
    app = request.app
    return AdminService(app[keys.SETTINGS], app[keys.LIBRARY], app[keys.SUGGESTER])


def caller(request: web.Request) -> Identity:
    identity = request[keys.IDENTITY]
    if identity is None:  # the middleware never lets an anonymous caller this far
        raise Forbidden("Sign in first.")
    return identity


def _json(data: Any, status: int = 200, etag: str | None = None) -> web.Response:
    return json_response(data, status, etag=etag, no_store=True)


def _limit(request: web.Request) -> int:
    default = request.app[keys.SETTINGS].admin_page_size
    return int_field(request.query.get("limit"), "limit", 1, 200, default)


async def resource_body(request: web.Request) -> dict[str, Any]:
    """A JSON object for a declared resource. Its fields are checked by the declaration
    (server/models.py) in the service, after the preconditions (If-Match: 428/412 first)."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.")
    return data


async def declared(request: web.Request, cls: type[B]) -> B:
    """The body of an operation, checked by its declaration (server/models.py)."""
    try:
        return validate(cls, await resource_body(request))
    except FieldErrors as exc:
        raise field_errors(exc) from exc


def _if_match(request: web.Request) -> str | None:
    return request.headers.get("If-Match")


# -- apps --------------------------------------------------------------------------------------


@routes.get(f"{PREFIX}/apps")
@requires_op("app.read")
async def list_apps(request: web.Request) -> web.Response:
    known_query(request, {"limit", "cursor"})
    apps = await service(request).list_apps()
    page, nxt = page_by_id(apps, lambda a: a.id, request.query.get("cursor"), _limit(request))
    return _json({"apps": [app_json(a) for a in page], "next_cursor": nxt})


@routes.post(f"{PREFIX}/apps")
@requires_op("app.write")
async def create_app(request: web.Request) -> web.Response:
    data = await resource_body(request)
    app, warnings = await service(request).create_app(caller(request), data)
    return _json({**app_json(app), "warnings": warnings}, 201, app_etag(app))


@routes.get(PREFIX + "/apps/{app_id}")
@requires_op("app.read")
async def get_app(request: web.Request) -> web.Response:
    svc = service(request)
    app = await svc.get_app(request.match_info["app_id"])
    return _json({**app_json(app), "warnings": svc.warnings_for(app)}, etag=app_etag(app))


@routes.put(PREFIX + "/apps/{app_id}")
@requires_op("app.write")
async def put_app(request: web.Request) -> web.Response:
    data = await resource_body(request)
    app, warnings = await service(request).update_app(
        caller(request), request.match_info["app_id"], data, _if_match(request)
    )
    return _json({**app_json(app), "warnings": warnings}, etag=app_etag(app))


@routes.delete(PREFIX + "/apps/{app_id}")
@requires_op("app.write")
async def delete_app(request: web.Request) -> web.Response:
    unmapped = await service(request).delete_app(
        caller(request), request.match_info["app_id"], _if_match(request)
    )
    return _json({"deleted": request.match_info["app_id"], "unmapped_aids": unmapped})


@routes.post(PREFIX + "/apps/{app_id}/contexts")
@requires_op("context.write")
async def create_context(request: web.Request) -> web.Response:
    data = await resource_body(request)
    ctx, warnings = await service(request).create_context(
        caller(request), request.match_info["app_id"], data
    )
    return _json({**context_json(ctx), "warnings": warnings}, 201, context_etag(ctx))


# -- contexts ----------------------------------------------------------------------------------


@routes.get(f"{PREFIX}/contexts")
@requires_op("app.read")
async def list_contexts(request: web.Request) -> web.Response:
    q = known_query(request, {"app", "limit", "cursor"})
    contexts = sorted(request.app[keys.LIBRARY].catalog.contexts.values(), key=lambda c: c.id)
    if q.get("app"):
        contexts = [c for c in contexts if c.app_id == q["app"]]
    page, nxt = page_by_id(contexts, lambda c: c.id, q.get("cursor"), _limit(request))
    return _json({"contexts": [context_json(c) for c in page], "next_cursor": nxt})


@routes.get(PREFIX + "/contexts/{ctx_id}")
@requires_op("app.read")
async def get_context(request: web.Request) -> web.Response:
    ctx = await service(request).get_context(request.match_info["ctx_id"])
    return _json(context_json(ctx), etag=context_etag(ctx))


@routes.patch(PREFIX + "/contexts/{ctx_id}")
@requires_op("context.write")
async def patch_context(request: web.Request) -> web.Response:
    data = await resource_body(request)
    ctx, warnings = await service(request).update_context(
        caller(request), request.match_info["ctx_id"], data, _if_match(request)
    )
    return _json({**context_json(ctx), "warnings": warnings}, etag=context_etag(ctx))


@routes.delete(PREFIX + "/contexts/{ctx_id}")
@requires_op("context.write")
async def delete_context(request: web.Request) -> web.Response:
    await service(request).delete_context(
        caller(request), request.match_info["ctx_id"], _if_match(request)
    )
    return _json({"deleted": request.match_info["ctx_id"]})


@routes.put(PREFIX + "/contexts/{ctx_id}/aids")
@requires_op("context.write")
async def put_pins(request: web.Request) -> web.Response:
    body = await declared(request, Pins)
    aids = list(body.aids)
    ctx = await service(request).set_pins(
        caller(request), request.match_info["ctx_id"], aids, _if_match(request)
    )
    return _json(context_json(ctx), etag=context_etag(ctx))


# -- aids --------------------------------------------------------------------------------------


@routes.get(f"{PREFIX}/aids")
@requires_op("aid.read")
async def list_aids(request: web.Request) -> web.Response:
    svc = service(request)
    q = known_query(request, {"app", "type", "status", "owner", "stale", "q", "limit", "cursor"})
    aids = await svc.list_aids(svc.validate_aid_filters(q))
    page, nxt = page_by_id(aids, lambda a: a.id, q.get("cursor"), _limit(request))
    return _json({"aids": [aid_json(a, body=False) for a in page], "next_cursor": nxt})


@routes.post(f"{PREFIX}/aids")
@requires_op("aid.create")
async def create_aid(request: web.Request) -> web.Response:
    data = await resource_body(request)
    aid = await service(request).create_aid(caller(request), data)
    return _json(aid_json(aid), 201, aid_etag(aid))


@routes.get(PREFIX + "/aids/{aid_id}")
@requires_op("aid.read")
async def get_aid(request: web.Request) -> web.Response:
    aid = await service(request).get_aid(request.match_info["aid_id"])
    return _json(aid_json(aid), etag=aid_etag(aid))


async def _write_aid(request: web.Request, partial: bool) -> web.Response:
    data = await resource_body(request)
    aid = await service(request).update_aid(
        caller(request), request.match_info["aid_id"], data, _if_match(request), partial=partial
    )
    return _json(aid_json(aid), etag=aid_etag(aid))


@routes.put(PREFIX + "/aids/{aid_id}")
@requires_op("aid.update")
async def put_aid(request: web.Request) -> web.Response:
    return await _write_aid(request, partial=False)


@routes.patch(PREFIX + "/aids/{aid_id}")
@requires_op("aid.update")
async def patch_aid(request: web.Request) -> web.Response:
    return await _write_aid(request, partial=True)


@routes.delete(PREFIX + "/aids/{aid_id}")
@requires_op("aid.delete")
async def delete_aid(request: web.Request) -> web.Response:
    await service(request).delete_aid(
        caller(request), request.match_info["aid_id"], _if_match(request)
    )
    return _json({"deleted": request.match_info["aid_id"]})


@routes.post(PREFIX + "/aids/{aid_id}/transitions")
@requires_op("aid.transition")
async def transition(request: web.Request) -> web.Response:
    body = await declared(request, Transition)
    aid = await service(request).transition(
        caller(request),
        request.match_info["aid_id"],
        body.to,
        _if_match(request),
        body.comment,
    )
    return _json(aid_json(aid), etag=aid_etag(aid))


@routes.get(PREFIX + "/aids/{aid_id}/versions")
@requires_op("aid.read")
async def versions(request: web.Request) -> web.Response:
    aid_id = request.match_info["aid_id"]
    return _json({"aid": aid_id, "versions": await service(request).versions(aid_id)})


@routes.get(PREFIX + "/aids/{aid_id}/versions/{version}")
@requires_op("aid.read")
async def version(request: web.Request) -> web.Response:
    n = int_field(request.match_info["version"], "version", 1, 10**9, 1)
    data = await service(request).version(request.match_info["aid_id"], n)
    return _json({"version": n, **data})


@routes.get(PREFIX + "/aids/{aid_id}/diff")
@requires_op("aid.read")
async def diff(request: web.Request) -> web.Response:
    q = known_query(request, {"from", "to"})
    if "from" not in q or "to" not in q:
        raise ValidationFailed("Give both 'from' and 'to' versions.", fields=["from", "to"])
    a = int_field(q["from"], "from", 1, 10**9, 1)
    b = int_field(q["to"], "to", 1, 10**9, 1)
    return _json(await service(request).diff(request.match_info["aid_id"], a, b))


@routes.post(PREFIX + "/aids/{aid_id}/rollback")
@requires_op("aid.update")
async def rollback(request: web.Request) -> web.Response:
    n = (await declared(request, Rollback)).version
    aid = await service(request).rollback(
        caller(request), request.match_info["aid_id"], n, _if_match(request)
    )
    return _json(aid_json(aid), etag=aid_etag(aid))


# -- mappings ----------------------------------------------------------------------------------


@routes.get(f"{PREFIX}/mappings")
@requires_op("app.read")
async def mappings(request: web.Request) -> web.Response:
    return _json(service(request).mappings())


@routes.put(PREFIX + "/mappings/{aid_id}")
@requires_op("mapping.write")
async def put_mapping(request: web.Request) -> web.Response:
    body = await declared(request, Mapping)
    result = await service(request).set_mapping(
        caller(request),
        request.match_info["aid_id"],
        list(body.apps),
        list(body.contexts),
        _if_match(request),
    )
    aid = await service(request).get_aid(request.match_info["aid_id"])
    return _json(result, etag=aid_etag(aid))


# -- mentors -----------------------------------------------------------------------------------


@routes.get(f"{PREFIX}/mentors")
@requires_op("mentor.read")
async def list_mentors(request: web.Request) -> web.Response:
    svc = service(request)
    q = known_query(request, {"app", "vetted", "active", "q", "limit", "cursor"})
    mentors = await svc.list_mentors(svc.validate_mentor_filters(q))
    page, nxt = page_by_id(mentors, lambda m: m.id, q.get("cursor"), _limit(request))
    return _json({"mentors": [mentor_json(m) for m in page], "next_cursor": nxt})


@routes.post(f"{PREFIX}/mentors")
@requires_op("mentor.write")
async def create_mentor(request: web.Request) -> web.Response:
    data = await resource_body(request)
    mentor = await service(request).create_mentor(caller(request), data)
    return _json(mentor_json(mentor), 201, mentor_etag(mentor))


@routes.get(PREFIX + "/mentors/{mentor_id}")
@requires_op("mentor.read")
async def get_mentor(request: web.Request) -> web.Response:
    mentor = await service(request).get_mentor(request.match_info["mentor_id"])
    return _json(mentor_json(mentor), etag=mentor_etag(mentor))


async def _write_mentor(request: web.Request, partial: bool) -> web.Response:
    data = await resource_body(request)
    mentor = await service(request).update_mentor(
        caller(request),
        request.match_info["mentor_id"],
        data,
        _if_match(request),
        partial=partial,
    )
    return _json(mentor_json(mentor), etag=mentor_etag(mentor))


@routes.put(PREFIX + "/mentors/{mentor_id}")
@requires_op("mentor.write")
async def put_mentor(request: web.Request) -> web.Response:
    return await _write_mentor(request, partial=False)


@routes.patch(PREFIX + "/mentors/{mentor_id}")
@requires_op("mentor.write")
async def patch_mentor(request: web.Request) -> web.Response:
    return await _write_mentor(request, partial=True)


@routes.delete(PREFIX + "/mentors/{mentor_id}")
@requires_op("mentor.write")
async def delete_mentor(request: web.Request) -> web.Response:
    await service(request).delete_mentor(
        caller(request), request.match_info["mentor_id"], _if_match(request)
    )
    return _json({"deleted": request.match_info["mentor_id"]})


# -- rule tester, preview ----------------------------------------------------------------------


@routes.post(f"{PREFIX}/rules/test")
@requires_op("rules.test")
async def rules_test(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    # As in suggest, a null is the same as leaving the field out.
    raw = await resource_body(request)
    try:
        body = validate(RuleTestRequest, {k: v for k, v in raw.items() if v is not None})
    except FieldErrors as exc:
        raise field_errors(exc) from exc
    result = await service(request).test_rules(
        page_url(body.url, settings.max_url_bytes),
        body.title,
        body.role,
        body.groups,
        int_field(body.limit, "limit", 1, settings.max_limit, settings.default_limit),
        headings=body.headings,
        selection=body.selection,
    )
    return _json(result)


@routes.post(f"{PREFIX}/preview")
@requires_op("preview")
async def preview(request: web.Request) -> web.Response:
    markdown = (await declared(request, Preview)).markdown
    html = await request.app[keys.RENDERER].render(markdown)
    return _json({"html": html})


# -- import, export, audit ---------------------------------------------------------------------


@routes.post(f"{PREFIX}/import")
@requires_op("import")
async def import_archive(request: web.Request) -> web.Response:
    if request.content_type not in ARCHIVE_TYPES:
        raise UnsupportedMediaType(
            "Send the archive as the raw body with Content-Type application/zip, "
            "application/x-tar or application/gzip."
        )
    data = await read_body(request, request.app[keys.SETTINGS].admin_max_upload_bytes)
    name = request.query.get("filename", "upload")
    report = await service(request).import_archive(caller(request), data, name)
    return _json(report)


@routes.get(f"{PREFIX}/export")
@requires_op("export")
async def export_archive(request: web.Request) -> web.Response:
    data = await service(request).export_archive(caller(request))
    return web.Response(
        body=data,
        content_type="application/zip",
        headers={
            "Content-Disposition": 'attachment; filename="inflow-content.zip"',
            "Cache-Control": "no-store",
        },
    )


@routes.get(f"{PREFIX}/audit")
@requires_op("audit.read")
async def audit(request: web.Request) -> web.Response:
    q = known_query(
        request,
        {"actor", "action", "target_type", "target_id", "since", "until", "limit", "cursor"},
    )
    filters = {k: v for k, v in q.items() if k not in {"limit", "cursor"}}
    entries, nxt = await service(request).audit(filters, q.get("cursor"), _limit(request))
    return _json({"entries": entries, "next_cursor": nxt})
