"""A learning path's progress report in the console (/admin/paths/{path_id}/report), and the
list of paths to report on (/admin/path-reports), for whoever holds `path.report`: L&D reviewers,
admins, and managers (realm role `manager`).

Managers hold no other console role: like mentors for the questions inbox, they may sign in for
these pages only (server/console/signin.py asks `is_report_page`); every other console page still
asks `aid.read`. The figures are the API's (server/paths/reports.py), under the same privacy
rules: too small a group is not shown, and only admins see learners' names.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from server import keys
from server.console import Denied
from server.console.common import render, session_of
from server.console.session import ConsoleSession
from server.paths import reports
from server.paths.models import LearningPath
from server.permissions import describe, may

routes = web.RouteTableDef()
LIST = "/admin/path-reports"
PAGE = "/admin/paths/{path_id}/report"
OPERATION = "path.report"
_REPORT_PAGE = re.compile(r"^/admin/paths/[a-z0-9][a-z0-9-]{0,63}/report(?:[?#]|$)")


def is_report_page(target: str) -> bool:
    """Is `target` (a path and query in the console) one of these pages?"""
    return target == LIST or target.startswith(LIST + "?") or bool(_REPORT_PAGE.match(target))


def need_report(request: web.Request) -> ConsoleSession:
    """The session, or a redirect to sign in; Denied unless the roles give `path.report`."""
    session = session_of(request)
    if session is None:
        target = request.path_qs if request.method == "GET" else LIST
        raise web.HTTPSeeOther(f"/admin/login?{urlencode({'next': target})}")
    if not may(frozenset(session.roles), OPERATION):
        raise Denied(f"Path reports are for {describe(OPERATION)}.")
    return session


@routes.get(LIST)
async def report_list(request: web.Request) -> web.Response:
    need_report(request)
    paths = await request.config_dict[keys.PEER].list(LearningPath)
    paths.sort(key=lambda p: (not p.active, p.title.lower(), p.id))
    return render(request, "path_report.html", {"paths": paths, "report": None})


def _percent(rate: Any) -> str:
    return f"{round(float(rate) * 100)}%" if isinstance(rate, int | float) else "—"


@routes.get(PAGE)
async def report_page(request: web.Request) -> web.Response:
    session = need_report(request)
    group = request.query.get("group", "")[:300]
    data = await reports.report(
        request.config_dict, session.identity(), request.match_info["path_id"], group
    )
    return render(
        request,
        "path_report.html",
        {"report": data, "percent": _percent, "group": data["group"], "paths": []},
    )


__all__ = ["LIST", "PAGE", "is_report_page", "need_report", "routes"]
