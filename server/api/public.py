"""Learner-facing API: suggest, search, aids, rules, feedback; and health checks."""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from server import keys
from server.api.caller import audience_of, identity_of
from server.api.validation import (
    int_field,
    json_object,
    known_query,
    page_url,
    text_field,
)
from server.catalog import AidMeta, Catalog
from server.db.errors import DatabaseUnavailable
from server.errors import AidNotFound, ValidationFailed
from server.models import (
    AID_TYPES,
    SLUG_RE,
    FieldErrors,
    PageRequest,
    field_names,
    learner_aid_json,
    required_fields,
    validate,
)
from server.responses import json_response
from server.security import public, requires_op
from server.sources.provenance import provenance_etag_part, provenance_of
from server.suggest import PageSignals

routes = web.RouteTableDef()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(data, status, headers=headers)


@routes.post("/api/v1/suggest")
@requires_op("suggest")
async def suggest(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    # The declaration (server/models.py PageRequest) names the fields and checks their types
    # and limits; a null is the same as leaving the field out.
    raw = await json_object(
        request, set(field_names(PageRequest)), set(required_fields(PageRequest))
    )
    try:
        body = validate(PageRequest, {k: v for k, v in raw.items() if v is not None})
    except FieldErrors as exc:
        raise ValidationFailed(
            "; ".join(f"'{f}' {m}" for f, m in exc.errors),
            fields=sorted({f.split("[")[0] for f, _ in exc.errors}),
            errors=[{"field": f, "message": m} for f, m in exc.errors],
        ) from exc
    url = page_url(body.url, settings.max_url_bytes)
    page = PageSignals(
        url=url,
        title=body.title,
        selection=body.selection,
        headings=body.headings,
        selectors_present=frozenset(body.selectors) if body.selectors is not None else None,
    )
    limit = int_field(body.limit, "limit", 1, settings.max_limit, settings.default_limit)
    library = request.app[keys.LIBRARY]
    identity = identity_of(request)
    result = await request.app[keys.SUGGESTER].suggest(
        library.catalog,
        page,
        audience_of(request),
        limit,
        subject=identity.subject if identity else None,
        identity=identity,
    )
    return _json(result)


@routes.get("/api/v1/search")
@requires_op("search")
async def search(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    q = request.query
    known_query(request, {"q", "app", "type", "limit", "cursor"})
    app = q.get("app") or None
    if app is not None and not SLUG_RE.match(app):
        raise ValidationFailed("'app' must be an app id.", fields=["app"])
    aid_type = q.get("type") or None
    if aid_type is not None and aid_type not in AID_TYPES:
        raise ValidationFailed(f"'type' must be one of {', '.join(AID_TYPES)}.", fields=["type"])
    limit = int_field(q.get("limit"), "limit", 1, settings.max_limit, settings.default_limit)
    library = request.app[keys.LIBRARY]
    result = await request.app[keys.SUGGESTER].search(
        library.catalog,
        q.get("q", ""),
        app=app,
        aid_type=aid_type,
        audience=audience_of(request),
        limit=limit,
        cursor=q.get("cursor"),
    )
    return _json(result)


def readable_aid(catalog: Catalog, aid_id: str, audience: frozenset[str] | None) -> AidMeta:
    """The aid's catalog entry when a caller with `audience` may read it (the learner web app
    asks the same). Unpublished or invisible aids are 404 to learners: their existence is not
    disclosed."""
    meta = catalog.aids.get(aid_id)
    if (
        meta is None
        or not meta.visible_to(audience)
        or (meta.status != "published" and audience is not None)
    ):
        raise AidNotFound(f"No aid with id {aid_id!r} is available to you.")
    return meta


@routes.get("/api/v1/aids/{aid_id}")
@requires_op("aid.view")
async def get_aid(request: web.Request) -> web.StreamResponse:
    aid_id = request.match_info["aid_id"]
    library = request.app[keys.LIBRARY]
    readable_aid(library.catalog, aid_id, audience_of(request))
    aid = await library.storage.get_aid(aid_id)
    provenance = await provenance_of(request.app, aid)  # the source it comes from, or None
    tag = f"{aid.id}:{aid.version}:{aid.updated_at}:{provenance_etag_part(provenance)}"
    etag = '"' + hashlib.sha256(tag.encode()).hexdigest()[:20] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
        return web.Response(status=304, headers=headers)
    body_html = await request.app[keys.RENDERER].render(aid.body)
    return _json({**learner_aid_json(aid, body_html), "provenance": provenance}, headers=headers)


@routes.get("/api/v1/rules")
@requires_op("rules.read")
async def rules(request: web.Request) -> web.Response:
    doc = request.app[keys.LIBRARY].catalog.rules_document()
    etag = f'"rules-{doc["version"]}"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return _json(doc, headers={"ETag": etag, "Cache-Control": "private, no-cache"})


@routes.post("/api/v1/feedback")
async def feedback(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    data = await json_object(
        request, {"aid_id", "helpful", "url", "comment"}, {"aid_id", "helpful"}
    )
    aid_id = text_field(data, "aid_id", 64)
    if not isinstance(data["helpful"], bool):
        raise ValidationFailed("'helpful' must be true or false.", fields=["helpful"])
    meta = request.app[keys.LIBRARY].catalog.aids.get(aid_id)
    if meta is None or not meta.visible_to(audience_of(request)):
        raise AidNotFound(f"No aid with id {aid_id!r} is available to you.")
    url = data.get("url")
    url = page_url(url, settings.max_url_bytes) if url else ""
    comment = text_field(data, "comment", 2000)
    # Privacy (docs/analytics.md): the person is stored as the analytics pseudonym, never as
    # issuer|subject, and the page only as the app and context it matched, never its URL.
    app_id = context_id = ""
    if url:
        place = request.app[keys.LIBRARY].catalog.resolve(url)
        app_id = place.app.id if place.app else ""
        context_id = place.contexts[0].id if place.contexts else ""
    ident = identity_of(request)
    user = request.app[keys.ANALYTICS].pseudonym(ident.issuer, ident.subject) if ident else ""
    storage = request.app[keys.LIBRARY].storage
    fid = await storage.add_feedback(aid_id, data["helpful"], comment, user, app_id, context_id)
    up, down = await storage.feedback_counts(aid_id)
    return _json(
        {
            "id": fid,
            "aid_id": aid_id,
            "helpful": data["helpful"],
            "totals": {"helpful": up, "not_helpful": down},
        },
        status=201,
    )


@routes.get("/healthz")
@public
async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


@routes.get("/readyz")
@public
async def readyz(request: web.Request) -> web.Response:
    library = request.app[keys.LIBRARY]
    checks: dict[str, dict[str, Any]] = {}
    try:
        count = await library.storage.ping()
        checks["database"] = {"ok": True, "detail": f"{count} aids"}
    except DatabaseUnavailable as exc:  # "content database unavailable: <why>" (it reconnects)
        checks["database"] = {"ok": False, "detail": str(exc)}
    except Exception as exc:
        checks["database"] = {"ok": False, "detail": f"database unavailable: {exc}"}
    if checks["database"]["ok"]:
        # The same comparison as `inflow check`: the database's content version and aid count
        # against what the index recorded (and the index's health: corrupt, rebuilding).
        agreement = await library.agreement(wait=2.0)
        checks["index"] = {"ok": agreement["ok"], "detail": agreement["detail"]}
    else:
        checks["index"] = {"ok": False, "detail": "not checked: the database is unavailable"}
    follower = request.app.get(keys.FOLLOWER)  # on PostgreSQL: other nodes' changes (follow.py)
    if follower is not None:
        ok, detail = follower.status()
        checks["follow"] = {"ok": ok, "detail": detail}
        index = checks["index"]
        if ok and not index["ok"] and checks["database"]["ok"] and library.index.health == "ok":
            indexed = agreement["index"]["content_version"]
            if 0 <= indexed < agreement["database"]["content_version"]:
                # another node's change that this node is applying now: not a fault
                index.update(ok=True, detail=f"{index['detail']} (catching up from the change log)")
    authenticator = request.app.get(keys.AUTHENTICATOR)
    if authenticator is not None:
        ok, detail = await authenticator.ready()
        checks["identity"] = {"ok": ok, "detail": detail}
    ready = all(c["ok"] for c in checks.values())
    return _json(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )
