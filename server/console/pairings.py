"""Mentors paired with new hires: current pairings, pairing by hand, rules and "Run now".

Every action posts back and redirects (303) with a notice, or shows the page again with the
problem; "Run now" shows the page with the run's summary. The operations are
server/peer/pairings.py's, so the console and the API cannot disagree.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from server import keys
from server.console.common import csv_list, need, render, see_other, text
from server.errors import InflowError
from server.models import dump
from server.peer.directory import DirectoryUnavailable
from server.peer.pairings import Pairings, pairing_json
from server.peer.pairings_api import group_problem

routes = web.RouteTableDef()
BASE = "/admin/pairings"


def _service(request: web.Request) -> Pairings:
    return request.config_dict[keys.PAIRINGS]


async def _page(
    request: web.Request,
    *,
    error: str = "",
    status: int = 200,
    form: MultiDictProxy[Any] | None = None,
    summary: dict[str, Any] | None = None,
) -> web.Response:
    catalog = request.config_dict[keys.LIBRARY].catalog
    service = _service(request)
    mentors = sorted((m for m in catalog.mentors if m.listed), key=lambda m: m.name.lower())
    return render(
        request,
        "pairings.html",
        {
            "pairings": [pairing_json(p, catalog) for p in await service.list_pairings()],
            "rules": [dump(r) for r in await service.list_rules()],
            "mentors": mentors,
            "apps": sorted(catalog.apps.values(), key=lambda a: a.name.lower()),
            "app_names": {a.id: a.name for a in catalog.apps.values()},
            "mentor_names": {m.id: m.name for m in catalog.mentors},
            "error": error,
            "f": {k: form.get(k, "") for k in form} if form is not None else {},
            "summary": summary,
        },
        status,
    )


@routes.get(BASE)
async def pairings_page(request: web.Request) -> web.Response:
    need(request, "pairing.read")
    return await _page(request)


def _days(form: MultiDictProxy[Any], name: str) -> Any:
    value = text(form, name)
    return int(value) if value.isdigit() else value or None


@routes.post(BASE)
async def create_pairing(request: web.Request) -> web.StreamResponse:
    session = need(request, "pairing.write")
    form = await request.post()
    data: dict[str, Any] = {
        "learner_username": text(form, "learner_username"),
        "mentor_id": text(form, "mentor_id"),
        "app_id": text(form, "app_id"),
    }
    if text(form, "ends_on"):
        data["ends_on"] = text(form, "ends_on")
    else:
        data["days"] = _days(form, "days")
    try:
        await _service(request).create_pairing(session.identity(), data)
    except InflowError as exc:
        return await _page(request, error=exc.detail, status=exc.status, form=form)
    raise see_other(BASE, "created")


@routes.post(BASE + "/{id}/end")
async def end_pairing(request: web.Request) -> web.StreamResponse:
    session = need(request, "pairing.write")
    await request.post()
    await _service(request).end_pairing(session.identity(), request.match_info["id"])
    raise see_other(BASE, "deleted")


@routes.post("/admin/pairing-rules")
async def create_rule(request: web.Request) -> web.StreamResponse:
    session = need(request, "pairing.write")
    form = await request.post()
    data: dict[str, Any] = {
        "id": text(form, "id"),
        "group": text(form, "group"),
        "app_id": text(form, "app_id"),
        "mentor_ids": csv_list(text(form, "mentor_ids")),
        "days": _days(form, "days"),
        "cap": _days(form, "cap"),
        "start_claim": text(form, "start_claim"),
        "active": text(form, "active") == "1",
    }
    try:
        await _service(request).save_rule(session.identity(), data)
    except InflowError as exc:
        return await _page(request, error=exc.detail, status=exc.status, form=form)
    raise see_other(BASE, "created")


@routes.post("/admin/pairing-rules/{id}/delete")
async def delete_rule(request: web.Request) -> web.StreamResponse:
    session = need(request, "pairing.write")
    await request.post()
    await _service(request).delete_rule(session.identity(), request.match_info["id"])
    raise see_other(BASE, "deleted")


@routes.post("/admin/pairing-rules/{id}/run")
async def run_rule(request: web.Request) -> web.StreamResponse:
    """Run now: the page again, with what the run did."""
    session = need(request, "pairing.write")
    await request.post()
    try:
        summary = await _service(request).run_rule(session.identity(), request.match_info["id"])
    except DirectoryUnavailable as exc:
        problem = group_problem(exc)
        return await _page(request, error=problem.detail, status=problem.status)
    return await _page(request, summary=summary)
