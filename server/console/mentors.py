"""Vetted peer mentors: the list with its vetting buttons, the editor, vetting, delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from server import keys
from server.admin.service import AdminService, mentor_etag
from server.console import Denied
from server.console.common import (
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
)
from server.console.session import ConsoleSession
from server.errors import InflowError
from server.permissions import may

routes = web.RouteTableDef()


@routes.get("/admin/mentors")
async def mentors_page(request: web.Request) -> web.Response:
    need(request, "mentor.read")
    service = svc(request)
    raw = {k: request.query.get(k, "")[:200] for k in ("app", "vetted", "active", "q")}
    try:
        filters = service.validate_mentor_filters(raw)
    except InflowError as exc:
        filters, error = {}, exc.detail
    else:
        error = ""
    mentors = await service.list_mentors(filters)
    catalog = request.config_dict[keys.LIBRARY].catalog
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


def _mentor_data(form: MultiDictProxy[Any], *, new: bool) -> dict[str, Any]:
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


def _mentor_values(mentor: Any) -> dict[str, Any]:
    """The stored mentor as its form shows it (lists typed as comma-separated text)."""
    if mentor is None:
        return {"active": True}
    values = dict(mentor.content_fields())
    for name in ("topics", "audience"):
        values[name] = ", ".join(values.get(name) or ())
    return values


async def _mentor_editor(request: web.Request, state: FormState | None = None) -> web.Response:
    need(request, "mentor.read")
    mentor_id = request.match_info.get("id")
    mentor = await svc(request).get_mentor(mentor_id) if mentor_id else None
    context = {
        "mentor": mentor,
        "f": _mentor_values(mentor),
        "etag": mentor_etag(mentor) if mentor else "",
        "apps": await svc(request).list_apps(),
    }
    return render_form(request, "mentor_edit.html", context, state)


async def _save(
    request: web.Request, session: ConsoleSession, form: MultiDictProxy[Any]
) -> web.StreamResponse:
    data = _mentor_data(form, new="id" not in request.match_info)
    if data.get("vetted") and not may(session.roles, "mentor.vet"):
        raise Denied("Vetting a mentor needs the permission 'mentor.vet'.")
    return await create_or_update(
        request,
        session,
        form,
        data,
        "/admin/mentors",
        AdminService.create_mentor,
        AdminService.update_mentor,
    )


add_editor(routes, "/admin/mentors", ("mentor.write", "mentor.write"), _mentor_editor, _save)


@routes.post("/admin/mentors/{id}/vetting")
async def mentor_vetting(request: web.Request) -> web.StreamResponse:
    """The vetting toggle (list and editor): `vetted` is 1 or 0, checked against the ETag."""
    session, mentor_id, form = await posted(request, "mentor.vet")
    vetted = text(form, "vetted") == "1"
    await svc(request).set_vetted(session.identity(), mentor_id, vetted, text(form, "etag"))
    editor = f"/admin/mentors/{quote(mentor_id)}"
    back = "/admin/mentors" if text(form, "back") == "list" else editor
    raise see_other(back, "vetted" if vetted else "unvetted")


add_delete(routes, "/admin/mentors", "mentor.write", AdminService.delete_mentor, "/admin/mentors")
