"""Apps, their URL rules, their contexts (pages) with pinned aids (the rule tester: tester.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from server import keys
from server.admin.service import AdminService, app_etag, context_etag
from server.console.common import (
    FormState,
    add_delete,
    add_form,
    need,
    render_form,
    see_other,
    svc,
    text,
    whole_number,
)
from server.console.session import ConsoleSession

routes = web.RouteTableDef()


def parse_rules(raw: str) -> list[dict[str, Any]]:
    """One rule per line; an optional priority after the last space: `*://h/p/** 10`."""
    rules = []
    for line in raw.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pattern, _, last = line.rpartition(" ")
        if pattern and last.lstrip("-").isdigit():
            rules.append({"pattern": pattern.strip(), "priority": int(last)})
        else:
            rules.append({"pattern": line, "priority": 0})
    return rules


def rules_text(rules: Any) -> str:
    return "\n".join(f"{r.pattern} {r.priority}" if r.priority else r.pattern for r in rules)


def _app_data(form: MultiDictProxy[Any], *, new: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": text(form, "name"),
        "description": text(form, "description"),
        "rules": parse_rules(text(form, "rules")),
    }
    if "owners" in form:  # e-mail addresses, one a line (or separated by commas or spaces)
        data["owners"] = text(form, "owners").replace(",", " ").split()
    if new:
        data["id"] = text(form, "id")
    return data


def _context_data(form: MultiDictProxy[Any], *, new: bool) -> dict[str, Any]:
    """The context form: its URL rules one per line (as the app's); a form of the older shape
    (one `rule` and a `priority` field) is read too."""
    data: dict[str, Any] = {
        "name": text(form, "name"),
        "title_pattern": text(form, "title_pattern"),
        "selector": text(form, "selector"),
        "fallback": text(form, "fallback") == "1",
        "exclusive": text(form, "exclusive") == "1",
    }
    if "rules" in form or "rule" not in form:
        data["rules"] = parse_rules(text(form, "rules"))
    else:
        priority = whole_number(form, "priority", "0", "Priority must be a whole number.")
        data["rule"] = {"pattern": text(form, "rule"), "priority": priority}
    if new:
        data["id"] = text(form, "id")
    return data


# -- apps ----------------------------------------------------------------------------------------


async def _apps_page(request: web.Request, state: FormState | None = None) -> web.Response:
    catalog = request.config_dict[keys.LIBRARY].catalog
    context = {"apps": await svc(request).list_apps(), "app_aids": catalog.app_aids, "f": {}}
    return render_form(request, "apps.html", context, state)


async def _app_page(
    request: web.Request,
    state: FormState | None = None,
    *,
    key: str = "f",
    app_id: str = "",
    warnings: list[dict[str, Any]] | None = None,
    notice: str = "",
) -> web.Response:
    """The app editor and its "new context" form (`key` "cf" when that form was refused)."""
    service = svc(request)
    app = await service.get_app(app_id or request.match_info["id"])
    context = {
        "app": app,
        "etag": app_etag(app),
        "f": {
            "name": app.name,
            "description": app.description,
            "rules": rules_text(app.rules),
            "owners": "\n".join(app.owners),
        },
        "cf": {},
        "warnings": warnings if warnings is not None else service.warnings_for(app),
        "saved_notice": notice,
        "mapped": request.config_dict[keys.LIBRARY].catalog.app_aids.get(app.id, ()),
    }
    return render_form(request, "app_edit.html", context, state, key=key)


@routes.get("/admin/apps")
async def apps_page(request: web.Request) -> web.Response:
    need(request, "app.read")
    return await _apps_page(request)


async def _create_app(
    request: web.Request, session: ConsoleSession, form: MultiDictProxy[Any]
) -> web.StreamResponse:
    app, warnings = await svc(request).create_app(session.identity(), _app_data(form, new=True))
    if warnings:
        return await _app_page(
            request, app_id=app.id, warnings=warnings, notice="Created, with warnings."
        )
    raise see_other(f"/admin/apps/{quote(app.id)}", "created")


async def _save_app(
    request: web.Request, session: ConsoleSession, form: MultiDictProxy[Any]
) -> web.StreamResponse:
    app_id, data = request.match_info["id"], _app_data(form, new=False)
    # what the form does not edit is kept (a PUT replaces it): the app's wrapped targets
    data["wrapped_targets"] = list((await svc(request).get_app(app_id)).wrapped_targets)
    _, warnings = await svc(request).update_app(
        session.identity(), app_id, data, text(form, "etag")
    )
    return await _app_page(request, warnings=warnings, notice="Saved.")


@routes.get("/admin/apps/{id}")
async def app_page(request: web.Request) -> web.Response:
    need(request, "app.read")
    return await _app_page(request)


add_form(routes, "/admin/apps", "app.write", _create_app, _apps_page)
add_form(routes, "/admin/apps/{id}", "app.write", _save_app, _app_page)
add_delete(routes, "/admin/apps", "app.write", AdminService.delete_app, "/admin/apps")


# -- contexts ------------------------------------------------------------------------------------


async def _context_page(
    request: web.Request,
    state: FormState | None = None,
    *,
    key: str = "f",
    warnings: list[dict[str, Any]] | None = None,
) -> web.Response:
    ctx = await svc(request).get_context(request.match_info["id"])
    catalog = request.config_dict[keys.LIBRARY].catalog
    pinned = [catalog.aids.get(a) for a in ctx.aids]
    others = sorted(
        (m for m in catalog.aids.values() if m.id not in ctx.aids), key=lambda m: m.title.lower()
    )
    stored = {
        "name": ctx.name,
        "rules": rules_text(ctx.rules),
        "fallback": ctx.fallback,
        "exclusive": ctx.exclusive,
        "title_pattern": ctx.title_pattern,
        "selector": ctx.selector,
    }
    context = {
        "ctx": ctx,
        "app": catalog.apps.get(ctx.app_id),
        "etag": context_etag(ctx),
        "f": stored,
        "pinned": list(zip(ctx.aids, pinned, strict=True)),
        "others": others,
        "warnings": warnings or [],
    }
    return render_form(request, "context_edit.html", context, state, key=key)


async def _create_context(
    request: web.Request, session: ConsoleSession, form: MultiDictProxy[Any]
) -> web.StreamResponse:
    app_id, data = request.match_info["id"], _context_data(form, new=True)
    ctx, warnings = await svc(request).create_context(session.identity(), app_id, data)
    if warnings:
        return await _app_page(request, warnings=warnings, notice="Context added.")
    raise see_other(f"/admin/contexts/{quote(ctx.id)}", "created")


async def _new_context_again(request: web.Request, state: FormState | None) -> web.Response:
    return await _app_page(request, state, key="cf")


async def _save_context(
    request: web.Request, session: ConsoleSession, form: MultiDictProxy[Any]
) -> web.StreamResponse:
    ctx_id, data = request.match_info["id"], _context_data(form, new=False)
    _, warnings = await svc(request).update_context(
        session.identity(), ctx_id, data, text(form, "etag")
    )
    if warnings:
        return await _context_page(request, warnings=warnings)
    raise see_other(f"/admin/contexts/{quote(ctx_id)}", "saved")


async def _move_pin(
    request: web.Request, session: ConsoleSession, form: MultiDictProxy[Any]
) -> web.StreamResponse:
    ctx_id, aid, move = request.match_info["id"], text(form, "aid"), text(form, "move")
    await svc(request).move_pin(session.identity(), ctx_id, aid, move, text(form, "etag"))
    raise web.HTTPSeeOther(f"/admin/contexts/{quote(ctx_id)}?notice=moved#pins")


async def _context_page_pins(request: web.Request, state: FormState | None) -> web.Response:
    # The pin buttons keep no typed text: the editor's own form stays as stored.
    return await _context_page(request, state, key="pins")


@routes.get("/admin/contexts/{id}")
async def context_page(request: web.Request) -> web.Response:
    need(request, "app.read")
    return await _context_page(request)


add_form(routes, "/admin/apps/{id}/contexts", "context.write", _create_context, _new_context_again)
add_form(routes, "/admin/contexts/{id}", "context.write", _save_context, _context_page)
add_form(routes, "/admin/contexts/{id}/pins", "context.write", _move_pin, _context_page_pins)


async def _app_of_context(request: web.Request, ctx_id: str) -> str:
    ctx = await svc(request).get_context(ctx_id)
    return f"/admin/apps/{quote(ctx.app_id)}"


add_delete(routes, "/admin/contexts", "context.write", AdminService.delete_context, _app_of_context)
