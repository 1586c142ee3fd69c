"""An aid's usage signal in the console: what colleagues found helpful per page context, and a
reset button for admins (the same service as the admin API, server/admin/usage.py)."""

from __future__ import annotations

from aiohttp import web

from server.admin.usage import reset_usage, usage_report
from server.console.common import need, posted, render

routes = web.RouteTableDef()


@routes.get("/admin/aids/{id}/usage")
async def usage_page(request: web.Request) -> web.Response:
    need(request, "analytics.read")
    report = await usage_report(request.config_dict, request.match_info["id"])
    done = request.query.get("reset") == "1"
    return render(request, "aid_usage.html", {"report": report, "done": done})


@routes.post("/admin/aids/{id}/usage/reset")
async def usage_reset(request: web.Request) -> web.Response:
    session, aid_id, _ = await posted(request, "usage.reset")
    await reset_usage(request.config_dict, session.identity(), aid_id)
    raise web.HTTPSeeOther(f"/admin/aids/{aid_id}/usage?reset=1")
