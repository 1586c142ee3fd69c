"""The dashboard (/admin): counts by status, what waits for review, your aids, recent changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from server.console.audit import names_of, readable
from server.console.common import need, render, svc
from server.models import AID_STATUSES
from server.permissions import may

routes = web.RouteTableDef()


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
    if may(session.roles, "audit.read"):
        recent, _ = await service.audit({}, None, 10)
        recent = readable(recent, names_of(request))
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
