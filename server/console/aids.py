"""Aids: the list, the stale list, the editor (with a preview that needs no JavaScript), workflow
steps, history with diffs, roll back, delete."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from multidict import MultiDictProxy

from server import keys
from server.admin.service import TRANSITIONS, AdminService, aid_etag
from server.console.common import (
    NOTICES,
    FormState,
    add_delete,
    add_editor,
    create_or_update,
    csv_list,
    need,
    posted,
    render,
    render_form,
    see_other,
    svc,
    text,
    whole_number,
)
from server.console.session import ConsoleSession
from server.cursor import page_by_id
from server.errors import InflowError, ValidationFailed
from server.models import AID_STATUSES, AID_TYPES
from server.permissions import may

routes = web.RouteTableDef()
MAX_PREVIEW = 200_000


@routes.get("/admin/aids")
async def aids_page(request: web.Request) -> web.Response:
    need(request, "aid.read")
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
    need(request, "aid.read")
    aids = await svc(request).list_aids({"stale": "1"})
    by_owner: dict[str, list[Any]] = {}
    for aid in sorted(aids, key=lambda a: (a.verified_at or "", a.id)):
        by_owner.setdefault(aid.owner or "(no owner)", []).append(aid)
    return render(request, "stale.html", {"by_owner": sorted(by_owner.items()), "total": len(aids)})


# -- the editor ----------------------------------------------------------------------------------


def _aid_data(form: MultiDictProxy[Any], *, new: bool) -> dict[str, Any]:
    interval = whole_number(
        form, "review_interval_days", "180", "Review interval must be a whole number of days."
    )
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
        "review_interval_days": interval,
        "source": text(form, "source"),
        "body": body.replace("\r\n", "\n") if isinstance(body, str) else "",
    }
    if new:
        data["id"] = text(form, "id")
    return data


def _aid_values(aid: Any) -> dict[str, Any]:
    """The stored aid as its form shows it (lists typed as comma-separated text)."""
    if aid is None:
        return {"type": "howto", "review_interval_days": 180}
    values = dict(aid.content_fields())
    for name in ("tags", "audience"):
        values[name] = ", ".join(values.get(name) or ())
    return values


def _steps(roles: frozenset[str], status: str) -> list[str]:
    """The workflow steps these roles may take from `status`: the table's `aid.transition`, and
    `aid.publish` for the steps that publish, unpublish or archive."""
    if not may(roles, "aid.transition"):
        return []
    publisher = may(roles, "aid.publish")
    return [
        dst
        for (src, dst), who in TRANSITIONS.items()
        if src == status and (who == "author" or publisher)
    ]


async def _editor(
    request: web.Request, state: FormState | None = None, *, preview_html: str = ""
) -> web.Response:
    session = need(request, "aid.read")
    roles = frozenset(session.roles)
    aid_id = request.match_info.get("id")
    aid = await svc(request).get_aid(aid_id) if aid_id else None
    context = {
        "aid": aid,
        "f": _aid_values(aid),
        "etag": aid_etag(aid) if aid else "",
        "steps": _steps(roles, aid.status) if aid else [],
        "apps": await svc(request).list_apps(),
        "types": AID_TYPES,
        "preview_html": preview_html,
        "locked": aid is not None and aid.status == "published" and not may(roles, "aid.publish"),
    }
    return render_form(request, "aid_edit.html", context, state)


async def _save_or_preview(
    request: web.Request, session: ConsoleSession, form: MultiDictProxy[Any]
) -> web.StreamResponse:
    aid_id = request.match_info.get("id")
    data = _aid_data(form, new=aid_id is None)
    if text(form, "action") == "preview":
        html = await request.config_dict[keys.RENDERER].render(data["body"])
        return await _editor(request, FormState.typed(form), preview_html=html)
    if aid_id is None:
        data["owner"] = data["owner"] or session.username
    return await create_or_update(
        request,
        session,
        form,
        data,
        "/admin/aids",
        AdminService.create_aid,
        AdminService.update_aid,
    )


add_editor(routes, "/admin/aids", ("aid.create", "aid.update"), _editor, _save_or_preview)


@routes.post("/admin/aids/{id}/transition")
async def aid_transition(request: web.Request) -> web.StreamResponse:
    session, aid_id, form = await posted(request, "aid.transition")
    to = text(form, "to")
    await svc(request).transition(
        session.identity(), aid_id, to, text(form, "etag"), text(form, "comment")
    )
    raise see_other(f"/admin/aids/{quote(aid_id)}", to if to in NOTICES else "saved")


add_delete(routes, "/admin/aids", "aid.delete", AdminService.delete_aid, "/admin/aids")


# -- history, roll back, live preview ------------------------------------------------------------


@routes.get("/admin/aids/{id}/history")
async def aid_history(request: web.Request) -> web.Response:
    need(request, "aid.read")
    aid_id = request.match_info["id"]
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


@routes.post("/admin/aids/{id}/rollback")
async def aid_rollback(request: web.Request) -> web.StreamResponse:
    session, aid_id, form = await posted(request, "aid.update")
    version = text(form, "version")
    if not version.isdigit():
        raise ValidationFailed("Pick a version to roll back to.")
    await svc(request).rollback(session.identity(), aid_id, int(version), text(form, "etag"))
    raise see_other(f"/admin/aids/{quote(aid_id)}/history", "rolled-back")


@routes.post("/admin/preview")
async def preview(request: web.Request) -> web.Response:
    """Sanitized HTML for the editor's live preview (fetch with X-CSRF-Token)."""
    need(request, "preview")
    form = await request.post()
    markdown = form.get("markdown", "")
    if not isinstance(markdown, str) or len(markdown) > MAX_PREVIEW:
        raise ValidationFailed(f"Send the Markdown (at most {MAX_PREVIEW} characters).")
    html = await request.config_dict[keys.RENDERER].render(markdown)
    return web.json_response({"html": html}, headers={"Cache-Control": "no-store"})
