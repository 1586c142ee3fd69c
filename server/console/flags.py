"""Flags mentors raised on aids (wrong, outdated), in the console: the list for authors and
reviewers, with a resolve button (audited); the aid's own page marks its open flags. The same
service as the admin API (server/peer/flags.py)."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from server import keys
from server.console.common import need, posted, render, text
from server.errors import InflowError
from server.peer.flags import flag_json, list_flags, resolve_flag, validate_filters

routes = web.RouteTableDef()
PATH = "/admin/aid-flags"
NOTICES = {"resolved": "Resolved: the flag is closed (recorded in the audit log)."}


@routes.get(PATH)
async def flags_page(request: web.Request) -> web.Response:
    session = need(request, "flag.read")
    raw = {
        k: request.query.get(k, "")[:100]
        for k in ("status", "aid", "app", "mine")
        if k in request.query
    }
    try:
        filters = validate_filters(raw)
    except InflowError as exc:
        filters, error = {"status": "open"}, exc.detail
    else:
        error = ""
    flags = await list_flags(request.config_dict, filters, session.identity().email)
    catalog = request.config_dict[keys.LIBRARY].catalog
    return render(
        request,
        "flags.html",
        {
            "flags": [flag_json(f, catalog) for f in flags],
            "filters": filters,
            "apps": sorted(catalog.apps.values(), key=lambda a: a.name.lower()),
            "error": error,
            "done": NOTICES.get(request.query.get("done", "")),
        },
    )


@routes.post(PATH + "/{id}/resolve")
async def flag_resolve(request: web.Request) -> web.StreamResponse:
    session, flag_id, form = await posted(request, "flag.resolve")
    await resolve_flag(request.config_dict, session.identity(), flag_id)
    back = text(form, "back")
    if back.startswith("/admin/aids/") and "//" not in back:
        raise web.HTTPSeeOther(f"{back}#open-flags")
    raise web.HTTPSeeOther(f"{PATH}?{urlencode({'done': 'resolved'})}")
