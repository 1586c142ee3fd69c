"""New app from a template (ServiceNow, Salesforce...): pick a template, enter the tenant, see the
hosts and pages (contexts) the app will have, create it. The same functions as the admin API
(server/admin/templates_api.py); the app is created by the admin service like any other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from server.admin.templates_api import (
    TemplateApply,
    apply,
    contexts_preview,
    preview,
    samples,
    summary,
    template_of,
    templates_of,
)
from server.console.common import (
    FormState,
    add_form,
    field_messages,
    need,
    render,
    see_other,
    svc,
    text,
)
from server.console.limits import limits_of
from server.console.session import ConsoleSession
from server.errors import InflowError

routes = web.RouteTableDef()
BASE = "/admin/app-templates"
FIELDS = ("tenant", "app_id", "name")
# The form's limits, from the declaration of the API's body (no limit typed in the template).
FORM_LIMITS = limits_of(TemplateApply)


@routes.get(BASE)
async def templates_page(request: web.Request) -> web.Response:
    need(request, "app_template.read")
    cards = [summary(t) for t in templates_of(request.config_dict)]
    return render(request, "app_templates.html", {"templates": cards})


async def _template_page(request: web.Request, state: FormState | None = None) -> web.Response:
    """One template: the tenant form (GET: a preview), the preview and the create button; after
    a refused create (`state`), the form as typed with the service's message."""
    template = template_of(request.config_dict, request.match_info["id"])
    typed: Mapping[str, Any] = state.values if state else request.query
    f = {name: str(typed.get(name, "")).strip() for name in FIELDS}
    errors: dict[str, str] = dict(state.errors) if state else {}
    error = state.error if state else ""
    status = state.status if state else 200
    shown: dict[str, Any] | None = None
    if f["tenant"]:
        try:
            shown = await preview(svc(request), template, f["tenant"], f["app_id"], f["name"])
        except InflowError as exc:
            errors = {**field_messages(exc, f), **errors}
            error = error or exc.detail
            status = status if state else exc.status
    context = {
        "t": summary(template),
        "samples": samples(template),
        "f": f,
        "fl": FORM_LIMITS,
        "f_errors": errors,
        "error": error,
        "shown": shown,
        "contexts": contexts_preview(template, shown["app"]) if shown else [],
    }
    return render(request, "app_template.html", context, status)


@routes.get(BASE + "/{id}")
async def template_page(request: web.Request) -> web.Response:
    need(request, "app_template.read")
    return await _template_page(request)


async def _create(
    request: web.Request, session: ConsoleSession, form: MultiDictProxy[Any]
) -> web.StreamResponse:
    template = template_of(request.config_dict, request.match_info["id"])
    app, _ = await apply(
        svc(request),
        session.identity(),
        template,
        text(form, "tenant"),
        text(form, "app_id") or None,
        text(form, "name") or None,
    )
    raise see_other(f"/admin/apps/{quote(app.id)}", "from-template")


add_form(routes, BASE + "/{id}", "app_template.apply", _create, _template_page)
