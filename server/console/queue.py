"""The authoring queue in the console (/admin/queue): the items with filters (status, kind,
assignee, app, "mine"), where each one leads (the page in the rule tester, the aid, the question),
and per item a small form: reviewers and admins (`queue.write`) assign it to an author and set its
status and note; an author moves an item assigned to them. "Refresh now" (`queue.refresh`) runs
the refresh at once. The same service as the API (server/queue/service.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from server import keys
from server.admin.common import field_errors
from server.console.common import need, render, text
from server.console.limits import limits_of
from server.errors import InflowError
from server.models import FieldErrors, validate
from server.queue.models import KINDS, STATUSES, QueueChange, QueueItem
from server.queue.service import QueueService, figures_of, item_json, validate_filters

routes = web.RouteTableDef()
PATH = "/admin/queue"
KIND_WORDS = {
    "unpinned_context": "page without an aid",
    "low_helpful": "unhelpful aids",
    "zero_results": "search finds nothing",
    "unanswered_question": "unanswered question",
    "review_due": "review due",
    "broken_link": "broken link",
}
STATUS_WORDS = {
    "open": "open",
    "assigned": "assigned",
    "in_progress": "in progress",
    "done": "done",
    "dismissed": "dismissed",
}
NOTICES = {
    "saved": "Saved (recorded in the audit log).",
    "refreshed": "The queue is up to date.",
}


# The item form's limits (assignee, note), from the declaration: never typed in the template.
FORM_LIMITS = limits_of(QueueItem)


def figures_line(kind: str, f: dict[str, Any]) -> str:
    """The numbers behind an item, in words."""
    if kind == "unpinned_context":
        return (
            f"{f.get('panel_opens')} panel opens by {f.get('people')} people, {f.get('days')} days"
        )
    if kind == "low_helpful":
        return (
            f"{f.get('panel_opens')} panel opens; {f.get('not_helpful')} of {f.get('votes')} votes "
            "not helpful"
        )
    if kind == "zero_results":
        return (
            f"{f.get('zero_results')} of {f.get('searches')} searches without results, "
            f"{f.get('people')} people"
        )
    if kind == "unanswered_question":
        return f"waiting {f.get('days')} days" + (
            " (answered, none accepted)" if f.get("answered") else ""
        )
    if kind == "review_due":
        days = f.get("days_overdue")
        return f"due {f.get('due')}, {days} days ago" if days is not None else "never verified"
    if kind == "broken_link":
        status = f.get("http_status")
        return f"{f.get('url')}" + (f" (HTTP {status})" if status else "")
    return ""


def _service(request: web.Request) -> QueueService:
    return request.config_dict[keys.QUEUE]


@routes.get(PATH)
async def queue_page(request: web.Request) -> web.Response:
    session = need(request, "queue.read")
    me = (session.identity().username or "").lower()
    raw = {k: request.query.get(k, "")[:255] for k in ("status", "kind", "assignee", "app")}
    if request.query.get("mine") and me:
        raw["assignee"] = me
    raw.setdefault("status", "active")
    raw["status"] = raw["status"] or "active"
    error = ""
    try:
        filters = validate_filters({k: v for k, v in raw.items() if v})
    except InflowError as exc:
        filters, error = {"status": "active"}, exc.detail
    svc = _service(request)
    items = await svc.list(filters)
    catalog = request.config_dict[keys.LIBRARY].catalog
    rows = []
    for item in items:
        figures = figures_of(item)
        rows.append(
            {
                **item_json(item),
                "kind_words": KIND_WORDS.get(item.kind, item.kind),
                "status_words": STATUS_WORDS.get(item.status, item.status),
                "figures_line": figures_line(item.kind, figures),
                "cleared": bool(figures.get("cleared_at")),
                "reopened": bool(figures.get("reopened_at")),
                "app_name": catalog.apps[item.app_id].name if item.app_id in catalog.apps else "",
                "mine": bool(me) and item.assignee == me,
            }
        )
    assignees = sorted({i.assignee for i in items if i.assignee} | ({me} if me else set()))
    return render(
        request,
        "queue.html",
        {
            "items": rows,
            "filters": filters,
            "mine": bool(request.query.get("mine")),
            "kinds": [(k, KIND_WORDS[k]) for k in KINDS],
            "statuses": [(s, STATUS_WORDS[s]) for s in STATUSES],
            "apps": sorted(catalog.apps.values(), key=lambda a: a.name.lower()),
            "assignees": assignees,
            "last_refresh": svc.last_refresh,
            "back": request.path_qs,
            "error": error,
            "done": NOTICES.get(request.query.get("done", "")),
            "form_limits": FORM_LIMITS,
        },
    )


def _back(form: Any) -> str:
    back = text(form, "back")
    return back if back.startswith(PATH) and "//" not in back else PATH


def _with_done(back: str, done: str) -> str:
    path, _, query = back.partition("?")
    parts = [p for p in query.split("&") if p and not p.startswith("done=")]
    return f"{path}?{'&'.join([*parts, urlencode({'done': done})])}"


@routes.post(PATH + "/refresh")
async def queue_refresh(request: web.Request) -> web.StreamResponse:
    need(request, "queue.refresh")
    form = await request.post()
    await _service(request).refresh()
    raise web.HTTPSeeOther(_with_done(_back(form), "refreshed"))


@routes.post(PATH + "/{id}")
async def queue_change(request: web.Request) -> web.StreamResponse:
    session = need(request, "queue.read")
    form = await request.post()
    svc = _service(request)
    item = await svc.get(request.match_info["id"])
    data: dict[str, Any] = {}
    for name in ("status", "assignee", "note"):
        # what the form sends unchanged is no change (a status left as it was lets assigning
        # move an open item to assigned)
        if name in form and text(form, name) != getattr(item, name):
            data[name] = text(form, name)
    try:
        body = validate(QueueChange, data)
    except FieldErrors as exc:
        raise field_errors(exc) from exc
    await svc.change(session.identity(), item.id, body)
    raise web.HTTPSeeOther(_with_done(_back(form), "saved") + f"#item-{request.match_info['id']}")


__all__ = ["figures_line", "routes"]
