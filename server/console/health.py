"""Link and rule health in the console (/admin/health, docs/health.md): the last link check's
results grouped by the aid's owner (failing and redirected links first, with since when), the
link-check job's state and "Check now", and each app's rule health (unused app and contexts in
the last N days, rule warnings).

Who sees it: `health.read` (authors, reviewers, admins) every app; an app's owners their apps
(server/health/service.py `scope`), whatever their roles; "Check now" is `health.check`.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from server import keys
from server.console import Denied
from server.console.common import render, session_of
from server.console.session import ConsoleSession
from server.errors import InflowError
from server.health.api import days_of, link_filters
from server.health.models import FAILING, LINK_STATUSES
from server.health.service import (
    JOB,
    PROBLEMS,
    by_owner,
    job_state,
    link_report,
    rules_report,
    scope,
)
from server.permissions import may

routes = web.RouteTableDef()
PATH = "/admin/health"
NOTICES = {
    "started": "Link check started: this page follows its progress.",
    "running": "A link check is already running.",
}


def viewer(request: web.Request) -> tuple[ConsoleSession, frozenset[str] | None]:
    """The session of someone who may see health, and the apps they see (None: all)."""
    session = session_of(request)
    if session is None:
        target = request.path_qs if request.method == "GET" else PATH
        raise web.HTTPSeeOther(f"/admin/login?{urlencode({'next': target})}")
    seen = scope(session.identity(), request.config_dict[keys.LIBRARY].catalog)
    if seen is not None and not seen:
        raise Denied(
            "Link and rule health is for authors, reviewers, admins and the owners of an app. "
            "Your account is none of these."
        )
    return session, seen


@routes.get(PATH)
async def health_page(request: web.Request) -> web.Response:
    _, seen = viewer(request)
    config = request.config_dict
    raw = {k: request.query.get(k, "")[:200] for k in ("status", "app", "owner", "days")}
    error = ""
    try:
        filters = link_filters(raw)
        days = days_of(raw["days"], config[keys.SETTINGS].rule_health_days)
    except InflowError as exc:
        filters, days, error = {"app": "", "status": "", "owner": ""}, 30, exc.detail
    # unless a status is picked: what needs a look
    report = await link_report(config[keys.PEER], seen, **filters, statuses=PROBLEMS)
    links = report["links"]
    rules = await rules_report(request.match_info.apps[0], seen, days)
    catalog = config[keys.LIBRARY].catalog
    apps = sorted(
        (a for a in catalog.apps.values() if seen is None or a.id in seen),
        key=lambda a: a.name.lower(),
    )
    return render(
        request,
        "health.html",
        {
            "groups": by_owner(links),
            "counts": report["counts"],
            "checked_at": report["checked_at"],
            "truncated": report["truncated"],
            "filters": {**filters, "days": str(days)},
            "statuses": LINK_STATUSES,
            "failing": FAILING,
            "apps": apps,
            "rules": rules,
            "job": job_state(request.match_info.apps[0]),
            "done": NOTICES.get(request.query.get("done", "")),
            "error": error,
        },
    )


@routes.post(PATH + "/check")
async def health_check(request: web.Request) -> web.StreamResponse:
    session, _ = viewer(request)
    if not may(frozenset(session.roles), "health.check"):
        raise Denied("Starting a link check needs the role of 'health.check'.")
    started = await request.match_info.apps[0][keys.JOBS].run_now(JOB)
    raise web.HTTPSeeOther(f"{PATH}?{urlencode({'done': 'started' if started else 'running'})}")
