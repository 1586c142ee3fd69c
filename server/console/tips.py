"""The tip moderation queue at /admin/tips: tips from colleagues waiting for a moderator, with
their app and page, the body rendered sanitised, the author's name only when they chose to show
it, reported tips flagged (how many reports, the reasons); approve, edit, reject with a reason the
author reads, hide at once, delete. Filters by app and status (pending by default).

Who: reviewers and admins (`tip.moderate`) for every app; an app's owners (their e-mail in the
app's `owners`) for that app's tips, whatever their other roles, so this page does not ask the
console's usual author/reviewer role. The service (server/peer/tips.py) checks each tip again.
Works without JavaScript: each action posts (with the session's CSRF token) and comes back here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from server import keys
from server.console import Denied
from server.console.common import render, session_of, text
from server.console.limits import limits_of
from server.console.session import ConsoleSession
from server.errors import InflowError
from server.peer import people
from server.peer.models import TIP_MAX, TIP_STATUSES
from server.peer.tips import ModeratorEdit, Rejection, TipService, parse
from server.permissions import may

routes = web.RouteTableDef()
# The forms' limits, from the declarations of the bodies they send (server/peer/tips.py).
FORM_LIMITS = {**limits_of(ModeratorEdit), **limits_of(Rejection)}
BASE = "/admin/tips"
NOTICES = {
    "approved": "Approved: learners on its page see it now.",
    "rejected": "Rejected: the author sees your reason.",
    "hidden": "Hidden: nobody but its author sees it now.",
    "edited": "Saved your edit.",
    "deleted": "Deleted.",
}
STATUS_WORDS = {
    "pending": "waiting",
    "approved": "approved",
    "rejected": "rejected",
    "hidden": "hidden",
}


def moderator(request: web.Request) -> ConsoleSession:
    """The session of someone who moderates tips: a reviewer or admin, or an app's owner."""
    session = session_of(request)
    if session is None:
        target = request.path_qs if request.method == "GET" else BASE
        raise web.HTTPSeeOther(f"/admin/login?{urlencode({'next': target})}")
    identity = session.identity()
    if may(identity.roles, "tip.moderate"):
        return session
    apps = request.config_dict[keys.LIBRARY].catalog.apps.values()
    if any(people.owns_app(identity, a) for a in apps):
        return session
    raise Denied(
        "Moderating tips is for reviewers, admins and the owners of an app. Your account is "
        "none of these."
    )


def _service(request: web.Request) -> TipService:
    """The service over the root app (the console is a sub-app; the peer store, the renderer
    and the library hang off the root)."""
    return TipService(request.match_info.apps[0])


def _filters(values: Any) -> dict[str, str]:
    """The queue's filters from a query or a form (`status` pending unless said otherwise;
    `status=any` for every status)."""
    status = str(values.get("status", "pending") or "pending")[:20]
    app = str(values.get("app", "") or "")[:64]
    return {"status": status, "app": app}


def _queue_url(filters: dict[str, str], notice: str = "") -> str:
    query = {k: v for k, v in filters.items() if v}
    if notice:
        query["notice"] = notice
    return f"{BASE}?{urlencode(query)}"


async def _page(
    request: web.Request, filters: dict[str, str], error: str = "", status: int = 200
) -> web.Response:
    session = moderator(request)
    identity = session.identity()
    service = _service(request)
    catalog = service.catalog
    shown_status = "" if filters["status"] == "any" else filters["status"]
    try:
        tips = await service.queue(identity, shown_status, filters["app"])
    except InflowError as exc:
        tips, error, status = [], error or exc.detail, exc.status if status == 200 else status
    apps = [
        a
        for a in sorted(catalog.apps.values(), key=lambda a: a.name.lower())
        if may(identity.roles, "tip.moderate") or people.owns_app(identity, a)
    ]
    context: dict[str, Any] = {
        "tips": tips,
        "apps": apps,
        "filters": filters,
        "statuses": TIP_STATUSES,
        "status_words": STATUS_WORDS,
        "tip_max": TIP_MAX,
        "form_limits": FORM_LIMITS,
        "back": _queue_url(filters),
        "error": error,
    }
    notice = NOTICES.get(request.query.get("notice", ""))
    if notice:
        context["notice"] = notice
    return render(request, "tips.html", context, status)


@routes.get(BASE)
async def tips_page(request: web.Request) -> web.Response:
    return await _page(request, _filters(request.query))


async def _act(request: web.Request, form: MultiDictProxy[Any], action: str) -> str:
    """Run one moderation action; the notice to come back with."""
    service = _service(request)
    identity = moderator(request).identity()
    tip_id = request.match_info["id"]
    if action == "approve":
        await service.approve(identity, tip_id)
        return "approved"
    if action == "reject":
        await service.reject(identity, tip_id, text(form, "reason"))
        return "rejected"
    if action == "hide":
        await service.hide(identity, tip_id)
        return "hidden"
    if action == "edit":
        await service.edit(identity, tip_id, parse(ModeratorEdit, {"body": text(form, "body")}))
        return "edited"
    await service.delete(identity, tip_id)
    return "deleted"


def _action_route(action: str) -> None:
    async def post(request: web.Request) -> web.StreamResponse:
        moderator(request)
        form = await request.post()
        filters = _filters(form)
        try:
            notice = await _act(request, form, action)
        except InflowError as exc:
            # The queue again, saying what was wrong (a reason left empty, a tip gone).
            return await _page(request, filters, exc.detail, exc.status)
        raise web.HTTPSeeOther(_queue_url(filters, notice))

    routes.post(BASE + "/{id}/" + action)(post)


for _name in ("approve", "reject", "hide", "edit", "delete"):
    _action_route(_name)


__all__ = ["moderator", "routes"]
