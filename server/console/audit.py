"""The audit log: who changed what, filtered, newest first, 50 a page."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from aiohttp import web

from server.console.common import need, render, svc

routes = web.RouteTableDef()
FILTERS = ("actor", "action", "target_type", "target_id")


@routes.get("/admin/audit")
async def audit_page(request: web.Request) -> web.Response:
    need(request, "audit.read")
    filters = {k: request.query.get(k, "").strip()[:200] for k in FILTERS}
    chosen = {k: v for k, v in filters.items() if v}
    entries, nxt = await svc(request).audit(chosen, request.query.get("cursor"), 50)
    for e in entries:
        e["detail_text"] = json.dumps(e["detail"], ensure_ascii=False)[:500]
    next_query = urlencode({**chosen, "cursor": nxt}) if nxt else ""
    return render(
        request, "audit.html", {"entries": entries, "filters": filters, "next_query": next_query}
    )
