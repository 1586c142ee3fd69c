"""Bulk re-map and re-tag from the aids list: tick aids (or "all on this page"), say what to add
or remove, confirm with the counts, see what changed. Works without JavaScript.

POST /admin/aids-bulk with `step=confirm` (the list's form) shows the confirmation; with
`step=apply` (the confirmation's form) it writes, all or nothing (server/admin/bulk.py). (Not
/admin/aids/bulk: that is the editor's address of an aid with the id `bulk`.)
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from server.admin.bulk import BulkOps, parse_bulk
from server.console.common import csv_list, need, render
from server.errors import InflowError, ValidationFailed

routes = web.RouteTableDef()
CHANGE_FIELDS = ("add_apps", "remove_apps", "add_tags", "remove_tags")


def _values(form: MultiDictProxy[Any], name: str) -> list[str]:
    """A field sent once per ticked box or chosen option, or as comma-separated text."""
    out: list[str] = []
    for value in form.getall(name, []):
        if isinstance(value, str):
            out.extend(csv_list(value))
    return list(dict.fromkeys(out))


def _ops(request: web.Request) -> BulkOps:
    from server.console.common import svc  # the admin service's settings, library, suggester

    service = svc(request)
    return BulkOps(service.settings, service.library, service.suggester)


@routes.post("/admin/aids-bulk")
async def bulk_post(request: web.Request) -> web.Response:
    session = need(request, "aid.bulk")
    form = await request.post()
    ids = _values(form, "page_ids" if form.get("all_on_page") == "1" else "ids")
    data: dict[str, Any] = {"ids": ids, **{n: _values(form, n) for n in CHANGE_FIELDS}}
    context: dict[str, Any] = {"data": data, "back": _back(form)}
    try:
        if not ids:
            raise ValidationFailed("Tick the aids to change first (or 'all on this page').")
        body = parse_bulk(data)
        ops = _ops(request)
        if form.get("step") != "apply":
            return render(request, "bulk.html", {**context, "preview": ops.preview(body)})
        result = await ops.bulk_aids(session.identity(), body)
    except InflowError as exc:
        errors = exc.extra.get("errors") or []
        context.update(error=exc.detail, errors=errors)
        return render(request, "bulk.html", context, exc.status)
    return render(request, "bulk.html", {**context, "result": result})


def _back(form: MultiDictProxy[Any]) -> str:
    """The aids list the form came from (its filters), never another site."""
    value = form.get("back")
    if isinstance(value, str) and value.startswith("/admin/aids") and "//" not in value:
        return value
    return "/admin/aids"


__all__ = ["routes"]
