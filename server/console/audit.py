"""The audit log: who changed what, filtered, newest first, 50 a page; each entry in words
("ana sent the aid Expense limits back to draft", the changed fields listed, the reviewer's
comment quoted), never as raw JSON (server/console/words.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from server import keys
from server.console.common import need, render, svc
from server.console.words import ACTIONS, audit_comment, audit_details, audit_sentence

routes = web.RouteTableDef()
FILTERS = ("actor", "action", "target_type", "target_id")
KINDS = ("aid", "app", "mentor", "archive")


def names_of(request: web.Request) -> dict[str, str]:
    """`kind:id` -> the name people know it by (aid titles, app and mentor names)."""
    catalog = request.config_dict[keys.LIBRARY].catalog
    names = {f"aid:{a.id}": a.title for a in catalog.aids.values()}
    names.update({f"app:{a.id}": a.name for a in catalog.apps.values()})
    return names


def link_of(entry: Mapping[str, Any]) -> str:
    """Where the entry's resource is shown in the console ('' when it has no page)."""
    kind, target = entry.get("target_type"), str(entry.get("target_id") or "")
    if not target or str(entry.get("action", "")).endswith(".delete"):
        return ""
    base = {"aid": "/admin/aids/", "app": "/admin/apps/", "mentor": "/admin/mentors/"}.get(
        str(kind)
    )
    return f"{base}{quote(target)}" if base else ""


def readable(entries: list[dict[str, Any]], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each entry with `sentence`, `details` (phrases), `comment` and `link` added."""
    for e in entries:
        e["sentence"] = audit_sentence(e, names)
        e["details"] = audit_details(e)
        e["comment"] = audit_comment(e)
        e["link"] = link_of(e)
    return entries


@routes.get("/admin/audit")
async def audit_page(request: web.Request) -> web.Response:
    need(request, "audit.read")
    filters = {k: request.query.get(k, "").strip()[:200] for k in FILTERS}
    chosen = {k: v for k, v in filters.items() if v}
    entries, nxt = await svc(request).audit(chosen, request.query.get("cursor"), 50)
    next_query = urlencode({**chosen, "cursor": nxt}) if nxt else ""
    actions = {code: pattern.format(what="…") for code, pattern in ACTIONS.items()}
    return render(
        request,
        "audit.html",
        {
            "entries": readable(entries, names_of(request)),
            "filters": filters,
            "next_query": next_query,
            "actions": actions,
            "kinds": KINDS,
        },
    )
