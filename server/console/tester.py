"""The rule tester page: paste a URL (and optionally the page's title, headings and selection),
see every rule tried with why it matched or not, the contexts in effect, the sidebar a person with
a chosen role and groups gets, and the rule warnings of the app. A GET form, so a result is a
link an admin can share."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import keys
from server.api.validation import page_url
from server.console.common import csv_list, need, render, svc
from server.errors import InflowError

routes = web.RouteTableDef()
TEST_ROLES = ("learner", "author", "mentor", "reviewer", "admin")
MAX_HEADINGS = 50


@routes.get("/admin/tester")
async def tester(request: web.Request) -> web.Response:
    need(request, "rules.test")
    q = request.query
    url, title, selection = (q.get(k, "").strip() for k in ("url", "title", "selection"))
    role = q.get("role", "learner")
    role = role if role in TEST_ROLES else "learner"
    lines = [h.strip()[:300] for h in q.get("headings", "").splitlines()]
    headings = tuple(h for h in lines if h)[:MAX_HEADINGS]
    groups = tuple(g[:64] for g in csv_list(q.get("groups", "")))[:20]
    result: dict[str, Any] | None = None
    error = ""
    if url:
        try:
            checked = page_url(url, request.config_dict[keys.SETTINGS].max_url_bytes)
            result = await svc(request).test_rules(
                checked,
                title[:500],
                role,
                groups,
                10,
                headings=headings,
                selection=selection[:2000],
            )
        except InflowError as exc:
            error = exc.detail
    return render(
        request,
        "tester.html",
        {
            "url": url,
            "title": title,
            "headings": "\n".join(headings),
            "selection": selection,
            "role": role,
            "groups": ", ".join(groups),
            "roles": TEST_ROLES,
            "result": result,
            "error": error,
            "warnings": result["warnings"] if result else [],
        },
    )
