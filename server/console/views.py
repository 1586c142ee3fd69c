"""Console pages. Every page works without JavaScript; forms post back and redirect (303).

Handlers read the form, call `AdminService` with the session's identity and render a template;
domain errors become an error page (or the form again, with the message, in the editors).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp_jinja2
import jwt
from aiohttp import BodyPartReader, web
from multidict import MultiDictProxy
from yarl import URL

from auth.service import AuthUnavailable
from auth.verifier import InvalidToken
from server import keys
from server.admin.service import (
    PUBLISHERS,
    TRANSITIONS,
    AdminService,
    aid_etag,
    app_etag,
    context_etag,
    mentor_etag,
    page_by_id,
)
from server.console import Denied
from server.console.csrf import FIELD, check_csrf, safe_next
from server.console.oidc import pkce_pair
from server.console.session import ConsoleSession
from server.errors import InflowError, PayloadTooLarge, ValidationFailed
from server.models import AID_STATUSES, AID_TYPES

log = logging.getLogger("inflow.console")
routes = web.RouteTableDef()
CONSOLE_ROLES = frozenset({"author", "admin", "reviewer"})
STATIC = Path(__file__).resolve().parent.parent / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
NOTICES = {
    "saved": "Saved.",
    "created": "Created.",
    "deleted": "Deleted.",
    "moved": "Order saved.",
    "review": "Submitted for review.",
    "published": "Published: learners see it now.",
    "archived": "Archived.",
    "draft": "Moved back to draft.",
    "rolled-back": "Rolled back: the old content is now the newest version.",
    "signed-out": "You are signed out.",
    "vetted": "Vetted: learners on the mentor's apps see them now (when active).",
    "unvetted": "No longer vetted: learners do not see this mentor.",
}
TEST_ROLES = ("learner", "author", "mentor", "reviewer", "admin")


# -- helpers -----------------------------------------------------------------------------------


def session_of(request: web.Request) -> ConsoleSession | None:
    return request.get(keys.CONSOLE_SESSION)


def page_context(request: web.Request) -> dict[str, Any]:
    session = session_of(request)
    identity = session.identity() if session else None
    roles = identity.roles if identity else frozenset()
    notice = NOTICES.get(request.query.get("notice", ""))
    return {
        "me": identity,
        "csrf_field": FIELD,
        "csrf_token": session.csrf if session else "",
        "is_admin": "admin" in roles,
        "is_publisher": not roles.isdisjoint(PUBLISHERS),
        "notice": notice,
        "path": request.path,
    }


def need(request: web.Request, *roles: str) -> ConsoleSession:
    """The session, or a redirect to sign in; Denied (403 page) without a fitting role."""
    session = session_of(request)
    if session is None:
        target = request.path_qs if request.method == "GET" else "/admin"
        raise web.HTTPSeeOther(f"/admin/login?{urlencode({'next': target})}")
    have = frozenset(session.roles)
    if have.isdisjoint(CONSOLE_ROLES):
        raise Denied(
            "The admin console is for authors, reviewers and admins. Your account has none of "
            "these roles."
        )
    wanted = frozenset(roles)
    if wanted and "admin" not in have and have.isdisjoint(wanted):
        raise Denied(f"This page needs the role {' or '.join(sorted(wanted))}.")
    return session


def svc(request: web.Request) -> AdminService:
    app = request.app
    return AdminService(app[keys.SETTINGS], app[keys.LIBRARY], app[keys.SUGGESTER])


def render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    response = aiohttp_jinja2.render_template(
        f"admin/{template}", request, {**page_context(request), **context}
    )
    response.set_status(status)
    return response


def see_other(path: str, notice: str = "") -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{path}?notice={notice}" if notice else path)


async def form_of(request: web.Request) -> MultiDictProxy[Any]:
    return await request.post()


def text(form: MultiDictProxy[Any], name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def csv_list(value: str) -> list[str]:
    return [v.strip() for v in value.replace("\n", ",").split(",") if v.strip()]


def parse_rules(raw: str) -> list[dict[str, Any]]:
    """One rule per line; an optional priority after the last space: `*://h/p/** 10`."""
    rules = []
    for line in raw.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pattern, _, last = line.rpartition(" ")
        if pattern and last.lstrip("-").isdigit():
            rules.append({"pattern": pattern.strip(), "priority": int(last)})
        else:
            rules.append({"pattern": line, "priority": 0})
    return rules


def rules_text(rules: Any) -> str:
    return "\n".join(f"{r.pattern} {r.priority}" if r.priority else r.pattern for r in rules)


# -- static files, sign-in, sign-out -----------------------------------------------------------


@routes.get("/admin/static/{name}")
async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(
        path, headers={"Content-Type": STATIC_TYPES[path.suffix], "Cache-Control": "no-cache"}
    )


@routes.get("/admin/login")
async def login(request: web.Request) -> web.Response:
    target = safe_next(request.query.get("next"))
    if session_of(request) is not None:
        raise web.HTTPSeeOther(target)
    base = URL(request.app[keys.SETTINGS].base_url)
    if request.url.host != base.host and "moved" not in request.query:
        # Keycloak sends the browser back to base_url: start on that host, so the state cookie
        # set below is sent to the callback (e.g. opened on localhost, base_url on 127.0.0.1).
        # Hosts only (cookies ignore ports and TLS may end at a proxy); `moved` stops a loop
        # behind a proxy that rewrites Host.
        there = base.origin().with_path("/admin/login").with_query(next=target, moved="1")
        raise web.HTTPSeeOther(str(there))
    verifier, challenge = pkce_pair()
    nonce = secrets.token_urlsafe(24)
    store = request.app[keys.ADMIN_SESSIONS]
    state = await store.start_login({"verifier": verifier, "nonce": nonce, "next": target})
    url = await request.app[keys.ADMIN_OIDC].auth_url(state, nonce, challenge)
    response = web.HTTPSeeOther(url)
    # Binds the state to this browser: a callback with someone else's state is refused.
    response.set_cookie(
        "inflow_login_state",
        state,
        max_age=600,
        path="/admin/callback",
        httponly=True,
        samesite="Lax",
        secure=store.secure,
    )
    raise response


@routes.get("/admin/callback")
async def callback(request: web.Request) -> web.Response:
    store = request.app[keys.ADMIN_SESSIONS]
    state = request.query.get("state", "")
    cookie_state = request.cookies.get("inflow_login_state", "")
    if request.query.get("error"):
        raise Denied(f"Keycloak refused the sign-in: {request.query.get('error')}.", 400)
    if not state or not secrets.compare_digest(state.encode(), cookie_state.encode()):
        raise Denied("This sign-in did not start in this browser. Sign in again.", 400)
    pending = await store.finish_login(state)
    if pending is None:
        raise Denied("This sign-in expired or was used already. Sign in again.", 400)
    code = request.query.get("code", "")
    oidc = request.app[keys.ADMIN_OIDC]
    try:
        tokens = await oidc.exchange(code, pending["verifier"])
    except Exception as exc:  # python-keycloak raises many kinds
        raise Denied(f"The sign-in could not be completed ({type(exc).__name__}).", 400) from exc
    try:
        # Straight from the token endpoint over the back channel: the nonce is what matters here
        # (OIDC Core 3.1.3.7); the access token is fully verified below.
        id_claims = jwt.decode(tokens.get("id_token", ""), options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Denied("Keycloak sent no usable ID token.", 400) from exc
    if id_claims.get("nonce") != pending["nonce"]:
        raise Denied("The sign-in answer does not belong to this request.", 400)
    try:
        identity = await request.app[keys.AUTHENTICATOR].authenticate(tokens["access_token"])
    except (InvalidToken, AuthUnavailable) as exc:
        raise Denied(f"The access token was refused: {exc}", 400) from exc
    if identity.roles.isdisjoint(CONSOLE_ROLES):
        await oidc.logout(tokens.get("refresh_token", ""))
        raise Denied(
            "The admin console is for authors, reviewers and admins; your account has none of "
            "these roles."
        )
    sid, _ = await store.create(identity, tokens)
    response = web.HTTPSeeOther(safe_next(pending.get("next")))
    store.set_cookie(response, sid)
    response.del_cookie("inflow_login_state", path="/admin/callback")
    raise response


@routes.post("/admin/logout")
async def logout(request: web.Request) -> web.Response:
    session = session_of(request)
    store = request.app[keys.ADMIN_SESSIONS]
    if session is not None:
        try:
            await request.app[keys.ADMIN_OIDC].logout(session.refresh_token)
        except Exception as exc:  # the local session ends anyway
            log.warning("Keycloak logout failed: %s", type(exc).__name__)
        await store.delete(session)
    response = web.HTTPSeeOther("/admin/signed-out")
    store.clear_cookie(response)
    raise response


@routes.get("/admin/signed-out")
async def signed_out(request: web.Request) -> web.Response:
    return render(request, "signed_out.html", {})


# -- dashboard ---------------------------------------------------------------------------------


@routes.get("/admin")
async def dashboard(request: web.Request) -> web.Response:
    session = need(request)
    service = svc(request)
    aids = await service.list_aids({})
    today = dt.date.today()
    counts = {s: sum(1 for a in aids if a.status == s) for s in AID_STATUSES}
    stale = [a for a in aids if a.status == "published" and a.is_stale(today)]
    mine = [a for a in aids if a.owner == session.username and a.status != "archived"][:10]
    recent: list[dict[str, Any]] = []
    if "admin" in session.roles:
        recent, _ = await service.audit({}, None, 10)
    return render(
        request,
        "dashboard.html",
        {
            "counts": counts,
            "stale_count": len(stale),
            "apps": await service.list_apps(),
            "in_review": [a for a in aids if a.status == "review"][:20],
            "mine": mine,
            "recent": recent,
        },
    )


# -- apps, rules, contexts ---------------------------------------------------------------------


@routes.get("/admin/apps")
async def apps_page(request: web.Request) -> web.Response:
    need(request)
    catalog = request.app[keys.LIBRARY].catalog
    return render(
        request,
        "apps.html",
        {"apps": await svc(request).list_apps(), "app_aids": catalog.app_aids, "form": {}},
    )


@routes.post("/admin/apps")
async def apps_create(request: web.Request) -> web.Response:
    session = need(request, "admin")
    form = await form_of(request)
    data = {
        "id": text(form, "id"),
        "name": text(form, "name"),
        "description": text(form, "description"),
        "rules": parse_rules(text(form, "rules")),
    }
    try:
        app, warnings = await svc(request).create_app(session.identity(), data)
    except InflowError as exc:
        catalog = request.app[keys.LIBRARY].catalog
        return render(
            request,
            "apps.html",
            {
                "apps": await svc(request).list_apps(),
                "app_aids": catalog.app_aids,
                "form": {**data, "rules": text(form, "rules")},
                "error": exc.detail,
            },
            exc.status,
        )
    if warnings:
        return await _app_page(request, app.id, warnings=warnings, notice="Created, with warnings.")
    raise see_other(f"/admin/apps/{quote(app.id)}", "created")


async def _app_page(
    request: web.Request,
    app_id: str,
    *,
    warnings: list[dict[str, Any]] | None = None,
    error: str = "",
    notice: str = "",
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> web.Response:
    service = svc(request)
    app = await service.get_app(app_id)
    return render(
        request,
        "app_edit.html",
        {
            "app": app,
            "etag": app_etag(app),
            "rules_text": rules_text(app.rules),
            "warnings": warnings if warnings is not None else service.warnings_for(app),
            "error": error,
            "saved_notice": notice,
            "form": form or {},
            "mapped": request.app[keys.LIBRARY].catalog.app_aids.get(app.id, ()),
        },
        status,
    )


@routes.get("/admin/apps/{app_id}")
async def app_page(request: web.Request) -> web.Response:
    need(request)
    return await _app_page(request, request.match_info["app_id"])


@routes.post("/admin/apps/{app_id}")
async def app_save(request: web.Request) -> web.Response:
    session = need(request, "admin")
    app_id = request.match_info["app_id"]
    form = await form_of(request)
    data = {
        "name": text(form, "name"),
        "description": text(form, "description"),
        "rules": parse_rules(text(form, "rules")),
    }
    try:
        _, warnings = await svc(request).update_app(
            session.identity(), app_id, data, text(form, "etag")
        )
    except InflowError as exc:
        return await _app_page(request, app_id, error=exc.detail, status=exc.status)
    return await _app_page(request, app_id, warnings=warnings, notice="Saved.")


@routes.post("/admin/apps/{app_id}/delete")
async def app_delete(request: web.Request) -> web.Response:
    session = need(request, "admin")
    form = await form_of(request)
    await svc(request).delete_app(
        session.identity(), request.match_info["app_id"], text(form, "etag")
    )
    raise see_other("/admin/apps", "deleted")


def _context_data(form: MultiDictProxy[Any], with_id: bool) -> dict[str, Any]:
    priority = text(form, "priority") or "0"
    if not priority.lstrip("-").isdigit():
        raise ValidationFailed("Priority must be a whole number.", fields=["priority"])
    data: dict[str, Any] = {
        "name": text(form, "name"),
        "rule": {"pattern": text(form, "rule"), "priority": int(priority)},
        "title_pattern": text(form, "title_pattern"),
        "selector": text(form, "selector"),
    }
    if with_id:
        data["id"] = text(form, "id")
    return data


@routes.post("/admin/apps/{app_id}/contexts")
async def context_create(request: web.Request) -> web.Response:
    session = need(request, "admin")
    app_id = request.match_info["app_id"]
    form = await form_of(request)
    try:
        ctx, warnings = await svc(request).create_context(
            session.identity(), app_id, _context_data(form, True)
        )
    except InflowError as exc:
        return await _app_page(
            request, app_id, error=exc.detail, status=exc.status, form=dict(form)
        )
    if warnings:
        return await _app_page(request, app_id, warnings=warnings, notice="Context added.")
    raise see_other(f"/admin/contexts/{quote(ctx.id)}", "created")


async def _context_page(
    request: web.Request,
    ctx_id: str,
    *,
    error: str = "",
    status: int = 200,
    warnings: list[dict[str, Any]] | None = None,
) -> web.Response:
    service = svc(request)
    ctx = await service.get_context(ctx_id)
    catalog = request.app[keys.LIBRARY].catalog
    pinned = [catalog.aids.get(a) for a in ctx.aids]
    others = sorted(
        (m for m in catalog.aids.values() if m.id not in ctx.aids), key=lambda m: m.title.lower()
    )
    return render(
        request,
        "context_edit.html",
        {
            "ctx": ctx,
            "app": catalog.apps.get(ctx.app_id),
            "etag": context_etag(ctx),
            "pinned": list(zip(ctx.aids, pinned, strict=True)),
            "others": others,
            "error": error,
            "warnings": warnings or [],
        },
        status,
    )


@routes.get("/admin/contexts/{ctx_id}")
async def context_page(request: web.Request) -> web.Response:
    need(request)
    return await _context_page(request, request.match_info["ctx_id"])


@routes.post("/admin/contexts/{ctx_id}")
async def context_save(request: web.Request) -> web.Response:
    session = need(request, "admin")
    ctx_id = request.match_info["ctx_id"]
    form = await form_of(request)
    try:
        _, warnings = await svc(request).update_context(
            session.identity(), ctx_id, _context_data(form, False), text(form, "etag")
        )
    except InflowError as exc:
        return await _context_page(request, ctx_id, error=exc.detail, status=exc.status)
    if warnings:
        return await _context_page(request, ctx_id, warnings=warnings)
    raise see_other(f"/admin/contexts/{quote(ctx_id)}", "saved")


@routes.post("/admin/contexts/{ctx_id}/pins")
async def context_pins(request: web.Request) -> web.Response:
    session = need(request, "admin")
    ctx_id = request.match_info["ctx_id"]
    form = await form_of(request)
    try:
        await svc(request).move_pin(
            session.identity(), ctx_id, text(form, "aid"), text(form, "move"), text(form, "etag")
        )
    except InflowError as exc:
        return await _context_page(request, ctx_id, error=exc.detail, status=exc.status)
    raise web.HTTPSeeOther(f"/admin/contexts/{quote(ctx_id)}?notice=moved#pins")


@routes.post("/admin/contexts/{ctx_id}/delete")
async def context_delete(request: web.Request) -> web.Response:
    session = need(request, "admin")
    ctx_id = request.match_info["ctx_id"]
    form = await form_of(request)
    ctx = await svc(request).get_context(ctx_id)
    await svc(request).delete_context(session.identity(), ctx_id, text(form, "etag"))
    raise see_other(f"/admin/apps/{quote(ctx.app_id)}", "deleted")


@routes.get("/admin/tester")
async def tester(request: web.Request) -> web.Response:
    need(request)
    q = request.query
    url, title, role = (
        q.get("url", "").strip(),
        q.get("title", "").strip(),
        q.get("role", "learner"),
    )
    groups = tuple(csv_list(q.get("groups", "")))
    result: dict[str, Any] | None = None
    error = ""
    if url:
        from server.api.validation import page_url

        try:
            checked = page_url(url, request.app[keys.SETTINGS].max_url_bytes)
            result = await svc(request).test_rules(
                checked, title[:500], role if role in TEST_ROLES else "learner", groups[:20], 10
            )
        except InflowError as exc:
            error = exc.detail
    return render(
        request,
        "tester.html",
        {
            "url": url,
            "title": title,
            "role": role,
            "groups": ", ".join(groups),
            "roles": TEST_ROLES,
            "result": result,
            "error": error,
        },
    )


# -- aids --------------------------------------------------------------------------------------


@routes.get("/admin/aids")
async def aids_page(request: web.Request) -> web.Response:
    need(request)
    service = svc(request)
    raw = {k: request.query.get(k, "") for k in ("app", "type", "status", "owner", "stale", "q")}
    try:
        filters = service.validate_aid_filters(raw)
    except InflowError as exc:
        filters, error = {}, exc.detail
    else:
        error = ""
    aids = await service.list_aids(filters)
    page, nxt = page_by_id(aids, lambda a: a.id, request.query.get("cursor"), 50)
    next_query = urlencode({**filters, "cursor": nxt}) if nxt else ""
    return render(
        request,
        "aids.html",
        {
            "aids": page,
            "total": len(aids),
            "filters": raw,
            "apps": await service.list_apps(),
            "types": AID_TYPES,
            "statuses": AID_STATUSES,
            "next_query": next_query,
            "today": dt.date.today(),
            "error": error,
        },
    )


@routes.get("/admin/stale")
async def stale_page(request: web.Request) -> web.Response:
    need(request)
    aids = await svc(request).list_aids({"stale": "1"})
    by_owner: dict[str, list[Any]] = {}
    for aid in sorted(aids, key=lambda a: (a.verified_at or "", a.id)):
        by_owner.setdefault(aid.owner or "(no owner)", []).append(aid)
    return render(request, "stale.html", {"by_owner": sorted(by_owner.items()), "total": len(aids)})


def _aid_form_data(form: MultiDictProxy[Any], include_id: bool) -> dict[str, Any]:
    interval = text(form, "review_interval_days") or "180"
    if not interval.isdigit():
        raise ValidationFailed("Review interval must be a whole number of days.")
    body = form.get("body", "")
    data: dict[str, Any] = {
        "title": text(form, "title"),
        "summary": text(form, "summary"),
        "type": text(form, "type") or "howto",
        "tags": csv_list(text(form, "tags")),
        "apps": [a for a in form.getall("apps", []) if isinstance(a, str)],
        "audience": csv_list(text(form, "audience")),
        "owner": text(form, "owner"),
        "verified_at": text(form, "verified_at") or None,
        "review_interval_days": int(interval),
        "source": text(form, "source"),
        "body": body.replace("\r\n", "\n") if isinstance(body, str) else "",
    }
    if include_id:
        data["id"] = text(form, "id")
    return data


async def _editor(
    request: web.Request,
    aid: Any,
    *,
    form: dict[str, Any] | None = None,
    error: str = "",
    status: int = 200,
    preview_html: str = "",
) -> web.Response:
    session = need(request)
    roles = frozenset(session.roles)
    publisher = not roles.isdisjoint(PUBLISHERS)
    steps = []
    if aid is not None:
        for (src, dst), who in TRANSITIONS.items():
            if src == aid.status and (who == "author" or publisher):
                steps.append(dst)
    fields = form if form is not None else (aid.content_fields() if aid else {"type": "howto"})
    return render(
        request,
        "aid_edit.html",
        {
            "aid": aid,
            "f": fields,
            "etag": aid_etag(aid) if aid else "",
            "steps": steps,
            "apps": await svc(request).list_apps(),
            "types": AID_TYPES,
            "error": error,
            "preview_html": preview_html,
            "locked": aid is not None and aid.status == "published" and not publisher,
        },
        status,
    )


@routes.get("/admin/aids/new")
async def aid_new(request: web.Request) -> web.Response:
    need(request, "author", "reviewer")
    return await _editor(request, None)


@routes.post("/admin/aids/new")
async def aid_create(request: web.Request) -> web.Response:
    session = need(request, "author", "reviewer")
    form = await form_of(request)
    try:
        data = _aid_form_data(form, include_id=True)
    except InflowError as exc:
        return await _editor(request, None, form=dict(form), error=exc.detail, status=exc.status)
    if text(form, "action") == "preview":
        html = await request.app[keys.RENDERER].render(data["body"])
        return await _editor(request, None, form=data, preview_html=html)
    if not data["owner"]:
        data["owner"] = session.username
    try:
        aid = await svc(request).create_aid(session.identity(), data)
    except InflowError as exc:
        return await _editor(request, None, form=data, error=exc.detail, status=exc.status)
    raise see_other(f"/admin/aids/{quote(aid.id)}", "created")


@routes.get("/admin/aids/{aid_id}")
async def aid_page(request: web.Request) -> web.Response:
    need(request)
    aid = await svc(request).get_aid(request.match_info["aid_id"])
    return await _editor(request, aid)


@routes.post("/admin/aids/{aid_id}")
async def aid_save(request: web.Request) -> web.Response:
    session = need(request, "author", "reviewer")
    aid_id = request.match_info["aid_id"]
    service = svc(request)
    form = await form_of(request)
    aid = await service.get_aid(aid_id)
    try:
        data = _aid_form_data(form, include_id=False)
    except InflowError as exc:
        return await _editor(request, aid, form=dict(form), error=exc.detail, status=exc.status)
    if text(form, "action") == "preview":
        html = await request.app[keys.RENDERER].render(data["body"])
        return await _editor(request, aid, form={**data, "id": aid_id}, preview_html=html)
    try:
        await service.update_aid(session.identity(), aid_id, data, text(form, "etag"), partial=True)
    except InflowError as exc:
        current = await service.get_aid(aid_id)
        return await _editor(
            request,
            current,
            form={**data, "id": aid_id, "status": current.status},
            error=exc.detail,
            status=exc.status,
        )
    raise see_other(f"/admin/aids/{quote(aid_id)}", "saved")


@routes.post("/admin/aids/{aid_id}/transition")
async def aid_transition(request: web.Request) -> web.Response:
    session = need(request, "author", "reviewer")
    aid_id = request.match_info["aid_id"]
    form = await form_of(request)
    to = text(form, "to")
    await svc(request).transition(
        session.identity(), aid_id, to, text(form, "etag"), text(form, "comment")
    )
    raise see_other(f"/admin/aids/{quote(aid_id)}", to if to in NOTICES else "saved")


@routes.post("/admin/aids/{aid_id}/delete")
async def aid_delete(request: web.Request) -> web.Response:
    session = need(request, "admin")
    form = await form_of(request)
    await svc(request).delete_aid(
        session.identity(), request.match_info["aid_id"], text(form, "etag")
    )
    raise see_other("/admin/aids", "deleted")


@routes.get("/admin/aids/{aid_id}/history")
async def aid_history(request: web.Request) -> web.Response:
    need(request)
    aid_id = request.match_info["aid_id"]
    service = svc(request)
    aid = await service.get_aid(aid_id)
    versions = await service.versions(aid_id)
    diff: dict[str, Any] | None = None
    a, b = request.query.get("from", ""), request.query.get("to", "")
    if a.isdigit() and b.isdigit():
        diff = await service.diff(aid_id, int(a), int(b))
    elif len(versions) > 1:
        diff = await service.diff(aid_id, versions[1]["version"], versions[0]["version"])
    return render(
        request,
        "aid_history.html",
        {"aid": aid, "etag": aid_etag(aid), "versions": versions, "diff": diff},
    )


@routes.post("/admin/aids/{aid_id}/rollback")
async def aid_rollback(request: web.Request) -> web.Response:
    session = need(request, "author", "reviewer")
    aid_id = request.match_info["aid_id"]
    form = await form_of(request)
    version = text(form, "version")
    if not version.isdigit():
        raise ValidationFailed("Pick a version to roll back to.")
    await svc(request).rollback(session.identity(), aid_id, int(version), text(form, "etag"))
    raise see_other(f"/admin/aids/{quote(aid_id)}/history", "rolled-back")


@routes.post("/admin/preview")
async def preview(request: web.Request) -> web.Response:
    """Sanitized HTML for the editor's live preview (fetch with X-CSRF-Token)."""
    need(request)
    form = await form_of(request)
    markdown = form.get("markdown", "")
    if not isinstance(markdown, str) or len(markdown) > 200_000:
        raise ValidationFailed("Send the Markdown (at most 200000 characters).")
    html = await request.app[keys.RENDERER].render(markdown)
    return web.json_response({"html": html}, headers={"Cache-Control": "no-store"})


# -- mentors -----------------------------------------------------------------------------------


@routes.get("/admin/mentors")
async def mentors_page(request: web.Request) -> web.Response:
    need(request)
    service = svc(request)
    raw = {k: request.query.get(k, "")[:200] for k in ("app", "vetted", "active", "q")}
    try:
        filters = service.validate_mentor_filters(raw)
    except InflowError as exc:
        filters, error = {}, exc.detail
    else:
        error = ""
    mentors = await service.list_mentors(filters)
    catalog = request.app[keys.LIBRARY].catalog
    return render(
        request,
        "mentors.html",
        {
            "mentors": [(m, mentor_etag(m)) for m in mentors],
            "apps": await service.list_apps(),
            "app_names": {a.id: a.name for a in catalog.apps.values()},
            "filters": raw,
            "error": error,
        },
    )


def _mentor_form_data(form: MultiDictProxy[Any], *, new: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": text(form, "name"),
        "contact": text(form, "contact"),
        "can_help_with": text(form, "can_help_with"),
        "apps": [a for a in form.getall("apps", []) if isinstance(a, str)],
        "topics": csv_list(text(form, "topics")),
        "audience": csv_list(text(form, "audience")),
        "username": text(form, "username"),
        "subject": text(form, "subject"),
        "active": text(form, "active") == "1",
    }
    if new:  # an existing mentor is vetted or unvetted with its own button
        data["id"] = text(form, "id")
        data["vetted"] = text(form, "vetted") == "1"
    return data


async def _mentor_editor(
    request: web.Request,
    mentor: Any,
    *,
    form: dict[str, Any] | None = None,
    error: str = "",
    status: int = 200,
) -> web.Response:
    fields = form if form is not None else (mentor.content_fields() if mentor else {"active": True})
    return render(
        request,
        "mentor_edit.html",
        {
            "mentor": mentor,
            "f": fields,
            "etag": mentor_etag(mentor) if mentor else "",
            "apps": await svc(request).list_apps(),
            "error": error,
        },
        status,
    )


@routes.get("/admin/mentors/new")
async def mentor_new(request: web.Request) -> web.Response:
    need(request, "admin")
    return await _mentor_editor(request, None)


@routes.post("/admin/mentors/new")
async def mentor_create(request: web.Request) -> web.Response:
    session = need(request, "admin")
    data = _mentor_form_data(await form_of(request), new=True)
    try:
        mentor = await svc(request).create_mentor(session.identity(), data)
    except InflowError as exc:
        return await _mentor_editor(request, None, form=data, error=exc.detail, status=exc.status)
    raise see_other(f"/admin/mentors/{quote(mentor.id)}", "created")


@routes.get("/admin/mentors/{mentor_id}")
async def mentor_page(request: web.Request) -> web.Response:
    need(request)
    mentor = await svc(request).get_mentor(request.match_info["mentor_id"])
    return await _mentor_editor(request, mentor)


@routes.post("/admin/mentors/{mentor_id}")
async def mentor_save(request: web.Request) -> web.Response:
    session = need(request, "admin")
    mentor_id = request.match_info["mentor_id"]
    service = svc(request)
    form = await form_of(request)
    data = _mentor_form_data(form, new=False)
    try:
        await service.update_mentor(
            session.identity(), mentor_id, data, text(form, "etag"), partial=True
        )
    except InflowError as exc:
        current = await service.get_mentor(mentor_id)
        return await _mentor_editor(
            request,
            current,
            form={**current.content_fields(), **data},
            error=exc.detail,
            status=exc.status,
        )
    raise see_other(f"/admin/mentors/{quote(mentor_id)}", "saved")


@routes.post("/admin/mentors/{mentor_id}/vetting")
async def mentor_vetting(request: web.Request) -> web.Response:
    """The vetting toggle (list and editor): `vetted` is 1 or 0, checked against the ETag."""
    session = need(request, "admin")
    mentor_id = request.match_info["mentor_id"]
    form = await form_of(request)
    vetted = text(form, "vetted") == "1"
    await svc(request).set_vetted(session.identity(), mentor_id, vetted, text(form, "etag"))
    editor = f"/admin/mentors/{quote(mentor_id)}"
    back = "/admin/mentors" if text(form, "back") == "list" else editor
    raise see_other(back, "vetted" if vetted else "unvetted")


@routes.post("/admin/mentors/{mentor_id}/delete")
async def mentor_delete(request: web.Request) -> web.Response:
    session = need(request, "admin")
    form = await form_of(request)
    await svc(request).delete_mentor(
        session.identity(), request.match_info["mentor_id"], text(form, "etag")
    )
    raise see_other("/admin/mentors", "deleted")


# -- import, export, audit ---------------------------------------------------------------------


@routes.get("/admin/import")
async def import_page(request: web.Request) -> web.Response:
    need(request)
    return render(request, "import.html", {"report": None})


@routes.post("/admin/import")
async def import_upload(request: web.Request) -> web.Response:
    """multipart/form-data: the CSRF token first, then the file; read as a stream, with limits."""
    session = need(request, "admin")
    limit = request.app[keys.SETTINGS].admin_max_upload_bytes
    if request.content_type != "multipart/form-data":
        raise ValidationFailed("Upload the archive with the form.")
    reader = await request.multipart()
    token: str | None = None
    data = b""
    filename = ""
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == FIELD:
            token = (await part.read(decode=True)).decode("utf-8", "replace")[:200]
        elif part.name == "archive":
            check_csrf(session.csrf, token)  # before reading a byte of the file
            filename = (part.filename or "upload")[:200]
            chunks, size = [], 0
            while chunk := await part.read_chunk(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"The archive is over the limit of {limit} bytes.")
                chunks.append(chunk)
            data = b"".join(chunks)
    check_csrf(session.csrf, token)
    if not data:
        raise ValidationFailed("Choose a zip or tar archive to upload.")
    try:
        report = await svc(request).import_archive(session.identity(), data, filename)
    except InflowError as exc:
        return render(
            request,
            "import.html",
            {"report": None, "error": exc.detail, "problems": exc.extra},
            exc.status,
        )
    return render(request, "import.html", {"report": report, "filename": filename})


@routes.get("/admin/export")
async def export(request: web.Request) -> web.Response:
    session = need(request)
    data = await svc(request).export_archive(session.identity())
    return web.Response(
        body=data,
        content_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="inflow-content.zip"'},
    )


@routes.get("/admin/audit")
async def audit_page(request: web.Request) -> web.Response:
    need(request, "admin")
    names = ("actor", "action", "target_type", "target_id")
    filters = {k: request.query.get(k, "").strip()[:200] for k in names}
    entries, nxt = await svc(request).audit(
        {k: v for k, v in filters.items() if v}, request.query.get("cursor"), 50
    )
    for e in entries:
        e["detail_text"] = json.dumps(e["detail"], ensure_ascii=False)[:500]
    next_query = (
        urlencode({**{k: v for k, v in filters.items() if v}, "cursor": nxt}) if nxt else ""
    )
    return render(
        request, "audit.html", {"entries": entries, "filters": filters, "next_query": next_query}
    )
