"""App templates in the admin API: list them, preview an app made from one for a tenant, create it.

GET  /api/v1/admin/app-templates                        (app_template.read)
GET  /api/v1/admin/app-templates/{template_id}?tenant=  (app_template.read): with a preview
POST /api/v1/admin/app-templates/{template_id}/apply    (app_template.apply): {tenant, app_id?,
     name?} creates the app

The templates (content/app-templates/, setting `app_templates_dir`) are read and checked once at
start-up, in a worker thread (`templates_ctx`). An app made from a template is created through the
admin service like any other (`AdminService.create_app`: the same validation, conflicts, rule
warnings and audit log entry). The console's pages (server/console/templates.py) use the same
functions. docs/app-templates.md describes the format.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field

from auth.identity import Identity
from server import keys
from server.admin.common import app_json, compile_app_rules, field_errors
from server.admin.service import AdminService, app_etag
from server.api.validation import known_query
from server.app_templates import AppTemplate, TemplateError, instantiate, load_templates
from server.body import read_json
from server.errors import Forbidden, NotFound, ValidationFailed
from server.models import CONFIG, App, FieldErrors, adapter, dump, validate
from server.responses import json_response
from server.schemas import ref
from server.security import requires_op

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
PATH = "/api/v1/admin/app-templates"


@dataclass(frozen=True)
class TemplateApply:
    """An app made from a template: the customer's tenant (as the template's tenant field asks
    for it), and optionally an app id and name other than the template's."""

    __pydantic_config__ = CONFIG

    tenant: Annotated[str, Field(max_length=100)]  # a host label, a host or a path segment
    app_id: Annotated[str, Field(max_length=64)] | None = None
    name: Annotated[str, Field(max_length=200)] | None = None


# -- start-up ------------------------------------------------------------------------------------


async def templates_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: read and check every template once, off the event loop. A broken template
    stops the start-up with a message naming its file and field (TemplateError)."""
    folder = app[keys.SETTINGS].app_templates_dir
    loop = asyncio.get_running_loop()
    app[keys.APP_TEMPLATES] = await loop.run_in_executor(None, load_templates, folder)
    log.info("app templates: %d from %s", len(app[keys.APP_TEMPLATES]), folder)
    yield


def setup_app_templates(app: web.Application) -> None:
    """Load the templates at start-up and serve their routes (called by server/app.py). They are
    read first, before the database and index open: a broken template stops the start-up with
    nothing to close."""
    app.cleanup_ctx.insert(0, templates_ctx)
    app.router.add_routes(routes)


# -- what the API and the console share ---------------------------------------------------------


def templates_of(config: Mapping[Any, Any]) -> list[AppTemplate]:
    found: dict[str, AppTemplate] = config[keys.APP_TEMPLATES]
    return sorted(found.values(), key=lambda t: t.name.lower())


def template_of(config: Mapping[Any, Any], template_id: str) -> AppTemplate:
    found: dict[str, AppTemplate] = config[keys.APP_TEMPLATES]
    template = found.get(template_id)
    if template is None:
        known = ", ".join(sorted(found)) or "none"
        raise NotFound(f"No app template with id {template_id!r}. Known: {known}.")
    return template


def hosts_of(patterns: list[str]) -> list[str]:
    """The hosts (with port) the URL rules name, in order, each once; regex rules name none."""
    hosts: list[str] = []
    for pattern in patterns:
        if pattern.startswith("re:") or "://" not in pattern:
            continue
        host = re.split(r"[/?#]", pattern.partition("://")[2], maxsplit=1)[0]
        if host and host not in hosts:
            hosts.append(host)
    return hosts


def _patterns(rules: Any) -> list[str]:
    """The patterns of rules as a template writes them (strings or {pattern, priority})."""
    out: list[str] = []
    for rule in rules or ():
        pattern = rule.get("pattern") if isinstance(rule, dict) else rule
        if isinstance(pattern, str):
            out.append(pattern)
    return out


def _context_rules(context: Mapping[str, Any]) -> list[str]:
    return _patterns(context.get("rules") or ([context["rule"]] if "rule" in context else []))


def samples(template: AppTemplate) -> list[dict[str, Any]]:
    """The real URL shapes the template was checked against (with its example tenant): where
    each lands (`app`: the app's at all; `contexts`: its pages, best first, by name)."""
    names = {str(c.get("id")): str(c.get("name", "")) for c in template.app.get("contexts") or []}
    return [
        {
            "url": s.url,
            "app": s.app,
            "contexts": [{"id": c, "name": names.get(c, c)} for c in s.contexts],
        }
        for s in template.samples
    ]


def app_data(
    template: AppTemplate, tenant: str, app_id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    """The App input data of `template` for `tenant`. A tenant that does not fit is a 422 that
    says what it must look like (the template's label, example and pattern)."""
    try:
        template.check_tenant(tenant)
    except TemplateError as exc:
        raise ValidationFailed(
            str(exc), fields=["tenant"], errors=[{"field": "tenant", "message": str(exc)}]
        ) from None
    try:
        return instantiate(template, tenant, app_id or None, name or None)
    except TemplateError as exc:  # the app id: not a slug, or too long for the context ids
        raise ValidationFailed(
            f"{exc}.", fields=["app_id"], errors=[{"field": "app_id", "message": f"{exc}."}]
        ) from None


def summary(template: AppTemplate) -> dict[str, Any]:
    """A template as the list shows it: what it is, what the tenant is, the pages it knows."""
    example = instantiate(template, template.tenant_example)
    return {
        "id": template.id,
        "name": template.name,
        "description": template.description,
        "tenant": {
            "label": template.tenant_label,
            "example": template.tenant_example,
            "pattern": template.tenant_pattern,
        },
        "hosts": hosts_of(_patterns(example.get("rules"))),
        "contexts": [
            {"id": str(c.get("id", "")), "name": str(c.get("name", ""))}
            for c in template.app.get("contexts") or []
            if isinstance(c, dict)
        ],
    }


def _parse(data: dict[str, Any]) -> App:
    try:
        app = validate(App, data)
    except FieldErrors as exc:
        raise field_errors(exc) from exc
    compile_app_rules(app)
    return app


async def preview(
    service: AdminService,
    template: AppTemplate,
    tenant: str,
    app_id: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The app the template would create for `tenant`, what it would clash with (an existing
    app id or context id: the create would be a 409) and its rule warnings."""
    data = app_data(template, tenant, app_id, name)
    app = _parse(data)
    catalog = service.library.catalog
    conflicts = []
    if app.id in catalog.apps:
        conflicts.append(
            f"An app with id {app.id!r} exists already: choose another app id to create this one."
        )
    taken = sorted(
        c.id for c in app.contexts if c.id in catalog.contexts and app.id not in catalog.apps
    )
    if taken:
        conflicts.append(f"Context id(s) already used by another app: {', '.join(taken)}.")
    loop = asyncio.get_running_loop()
    warnings = await loop.run_in_executor(None, service.warnings_for, app)
    rules = [r.pattern for r in app.rules]
    return {
        "tenant": tenant.strip(),
        "hosts": hosts_of(rules),
        "app": dump(app),
        "conflicts": conflicts,
        "warnings": warnings,
    }


async def apply(
    service: AdminService,
    identity: Identity,
    template: AppTemplate,
    tenant: str,
    app_id: str | None = None,
    name: str | None = None,
) -> tuple[App, list[dict[str, Any]]]:
    """Create the app (with its contexts) through the admin service; its audit entry names the
    template and the tenant."""
    data = app_data(template, tenant, app_id, name)
    detail = {"template": template.id, "tenant": template.check_tenant(tenant)}
    return await service.create_app(identity, data, detail=detail)


def contexts_preview(template: AppTemplate, app: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The contexts of a previewed app, with their rules, for the console."""
    return [
        {
            "id": c.get("id", ""),
            "name": c.get("name", ""),
            "rules": _context_rules(c),
            "fallback": bool(c.get("fallback")),
            "exclusive": bool(c.get("exclusive")),
        }
        for c in app.get("contexts") or []
    ]


# -- routes --------------------------------------------------------------------------------------


def _service(request: web.Request) -> AdminService:
    config = request.config_dict
    return AdminService(config[keys.SETTINGS], config[keys.LIBRARY], config[keys.SUGGESTER])


@routes.get(PATH)
@requires_op("app_template.read")
async def list_templates(request: web.Request) -> web.Response:
    known_query(request, set())
    body = {"templates": [summary(t) for t in templates_of(request.config_dict)]}
    return json_response(body, no_store=True)


@routes.get(PATH + "/{template_id}")
@requires_op("app_template.read")
async def get_template(request: web.Request) -> web.Response:
    known_query(request, {"tenant", "app_id", "name"})
    template = template_of(request.config_dict, request.match_info["template_id"])
    q = request.query
    shown = await preview(
        _service(request),
        template,
        q.get("tenant", template.tenant_example),
        q.get("app_id"),
        q.get("name"),
    )
    body = {**summary(template), "samples": samples(template), "preview": shown}
    return json_response(body, no_store=True)


@routes.post(PATH + "/{template_id}/apply")
@requires_op("app_template.apply")
async def apply_template(request: web.Request) -> web.Response:
    identity = request[keys.IDENTITY]
    if identity is None:  # the middleware never lets an anonymous caller this far
        raise Forbidden("Sign in first.")
    template = template_of(request.config_dict, request.match_info["template_id"])
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.")
    try:
        body = validate(TemplateApply, data)
    except FieldErrors as exc:
        raise field_errors(exc) from exc
    app, warnings = await apply(
        _service(request), identity, template, body.tenant, body.app_id, body.name
    )
    return json_response(
        {**app_json(app), "warnings": warnings},
        201,
        etag=app_etag(app),
        no_store=True,
        headers={"Location": f"/api/v1/admin/apps/{app.id}"},
    )


# -- OpenAPI -------------------------------------------------------------------------------------


def template_paths() -> dict[str, Any]:
    """This module's part of the OpenAPI document (merged by server/openapi.py); the roles are
    written from the permission table there (`x-operation`)."""
    problem = {"$ref": "#/components/responses/Problem"}
    text = {"type": "string"}
    tenant = {
        "type": "object",
        "required": ["label", "example", "pattern"],
        "properties": {"label": text, "example": text, "pattern": text},
    }
    named = {
        "type": "object",
        "required": ["id", "name"],
        "properties": {"id": text, "name": text},
    }
    item = {
        "type": "object",
        "required": ["id", "name", "description", "tenant", "hosts", "contexts"],
        "properties": {
            "id": text,
            "name": text,
            "description": text,
            "tenant": tenant,
            "hosts": {"type": "array", "items": text},
            "contexts": {"type": "array", "items": named},
        },
    }
    detail = {
        "allOf": [item],
        "type": "object",
        "required": ["samples", "preview"],
        "properties": {
            "samples": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["url", "app", "contexts"],
                    "properties": {
                        "url": text,
                        "app": {"type": "boolean"},
                        "contexts": {"type": "array", "items": named},
                    },
                },
            },
            "preview": {
                "type": "object",
                "required": ["tenant", "hosts", "app", "conflicts", "warnings"],
                "properties": {
                    "tenant": text,
                    "hosts": {"type": "array", "items": text},
                    "app": ref("App"),
                    "conflicts": {"type": "array", "items": text},
                    "warnings": {"type": "array", "items": ref("RuleWarning")},
                },
            },
        },
    }
    body = adapter(TemplateApply).json_schema(mode="validation")

    def ok(desc: str, schema: dict[str, Any], status: str = "200") -> dict[str, Any]:
        return {status: {"description": desc, "content": {"application/json": {"schema": schema}}}}

    def errors(*codes: int) -> dict[str, Any]:
        return {str(c): problem for c in codes}

    template_id = {"name": "template_id", "in": "path", "required": True, "schema": text}
    query = [
        {"name": n, "in": "query", "required": False, "schema": text}
        for n in ("tenant", "app_id", "name")
    ]
    created = ok("Created: the app with its contexts, and rule warnings", ref("App"), "201")
    created["201"]["headers"] = {"ETag": {"schema": text}, "Location": {"schema": text}}
    return {
        PATH: {
            "get": {
                "summary": "App templates (ServiceNow, Salesforce, ...): each one's tenant field "
                "and the pages (contexts) it knows",
                "tags": ["admin"],
                "x-operation": "app_template.read",
                "parameters": [],
                "responses": {
                    **ok(
                        "Every template",
                        {
                            "type": "object",
                            "required": ["templates"],
                            "properties": {"templates": {"type": "array", "items": item}},
                        },
                    ),
                    **errors(401, 403, 422),
                },
            }
        },
        PATH + "/{template_id}": {
            "get": {
                "summary": "One template, with a preview of the app it makes for `tenant` "
                "(default: the template's example): hosts, contexts, conflicts, rule warnings",
                "tags": ["admin"],
                "x-operation": "app_template.read",
                "parameters": [template_id, *query],
                "responses": {
                    **ok("The template and the preview", detail),
                    **errors(401, 403, 404, 422),
                },
            }
        },
        PATH + "/{template_id}/apply": {
            "post": {
                "summary": "Create the app of a template for a tenant (as POST /apps would: an "
                "existing app id is a 409; a tenant that does not fit is a 422)",
                "tags": ["admin"],
                "x-operation": "app_template.apply",
                "parameters": [template_id],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
                "responses": {**created, **errors(400, 401, 403, 404, 409, 413, 415, 422)},
            }
        },
    }
