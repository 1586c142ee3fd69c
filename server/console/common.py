"""What every console page shares: the session and what its roles may do (from the permission
table, server/permissions.py), rendering, and the one helper that re-renders a form with its
errors (`FormState`, `render_form`, `submit_form`).

Handlers read app state through `request.config_dict`, so they work the same whether the console
is mounted on the main app or as a sub-app.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from multidict import MultiDictProxy

from auth.identity import Identity
from server import keys
from server.admin.service import AdminService
from server.console import Denied
from server.console.csrf import FIELD
from server.console.limits import LIMITS
from server.console.session import ConsoleSession
from server.errors import InflowError, ValidationFailed
from server.peer.people import owned_apps
from server.permissions import PERMISSIONS, describe, may
from server.websession import render_page

# Entering the console at all: the roles that may read what it shows.
CONSOLE_OPERATION = "aid.read"
# Mentors may enter for the questions inbox only (server/console/questions.py).
QUESTIONS_OPERATION = "question.read"
NOTICES = {
    "saved": "Saved.",
    "created": "Created.",
    "deleted": "Deleted.",
    "moved": "Order saved.",
    "review": "Submitted for review.",
    "published": "Published: learners see it now.",
    "archived": "Archived.",
    "draft": "Sent back to draft, with your comment for the author.",
    "verified": "Marked verified today.",
    "rolled-back": "Rolled back: the old content is now the newest version.",
    "signed-out": "You are signed out.",
    "vetted": "Vetted: learners on the mentor's apps see them now (when active).",
    "unvetted": "No longer vetted: learners do not see this mentor.",
    "from-template": "Created from the template, with its pages (contexts): pin aids to them.",
}
# Form fields sent once per checked box: kept as lists when a form is shown again.
MULTI_FIELDS = frozenset({"apps"})
# A text field whose declaration allows at least this many characters is long text: the form
# shows it as a textarea (an app's description). Patterns and URLs stay one line whatever their
# length: they are one line of text by nature.
LONG_TEXT_CHARS = 1000
SINGLE_LINE = frozenset({"rule", "pattern", "title_pattern", "selector", "source", "url"})
_MAXLENGTH = re.compile(r'maxlength="(\d+)"')


def long_text_fields(limits: Mapping[str, Mapping[str, str]]) -> dict[str, frozenset[str]]:
    """resource -> its long text fields, from the declared max lengths (`limits`)."""
    out: dict[str, frozenset[str]] = {}
    for res, fields in limits.items():
        found = set()
        for name, attrs in fields.items():
            m = _MAXLENGTH.search(str(attrs))
            if m and int(m.group(1)) >= LONG_TEXT_CHARS and name not in SINGLE_LINE:
                found.add(name)
        out[res] = frozenset(found)
    return out


LONG_TEXT = long_text_fields(LIMITS)


def session_of(request: web.Request) -> ConsoleSession | None:
    return request.get(keys.CONSOLE_SESSION)


def allowed(roles: frozenset[str] | set[str] | tuple[str, ...]) -> dict[str, bool]:
    """operation -> may these roles perform it: what the templates read to show an action."""
    return {op: may(roles, op) for op in PERMISSIONS}


def page_context(request: web.Request) -> dict[str, Any]:
    session = session_of(request)
    identity = session.identity() if session else None
    roles = identity.roles if identity else frozenset()
    # the brand link: the dashboard, or the questions inbox for those who may open only that
    # (mentors, app owners) and would meet a 403 page on the dashboard
    home = "/admin" if identity is None or may(roles, CONSOLE_OPERATION) else "/admin/questions"
    if home == "/admin/questions" and may(roles, "path.report"):
        home = "/admin/path-reports"  # a manager: the path reports are all they may open
    return {
        "home": home,
        "me": identity,
        "can": allowed(roles),
        "csrf_field": FIELD,
        "csrf_token": session.csrf if session else "",
        "limits": LIMITS,
        "long_text": LONG_TEXT,
        "notice": NOTICES.get(request.query.get("notice", "")),
        "path": request.path,
        # apps whose owners include the caller (they moderate those apps' tips): the nav's Tips
        "owned_apps": owned_apps(identity, request.config_dict[keys.LIBRARY].catalog),
    }


def need(request: web.Request, operation: str = CONSOLE_OPERATION) -> ConsoleSession:
    """The session, or a redirect to sign in; Denied (403 page) when the permission table does
    not give the session's roles `operation` (a hidden button's POST sent by hand included)."""
    session = session_of(request)
    if session is None:
        target = request.path_qs if request.method == "GET" else "/admin"
        raise web.HTTPSeeOther(f"/admin/login?{urlencode({'next': target})}")
    roles = frozenset(session.roles)
    if not may(roles, CONSOLE_OPERATION):
        if may(roles, QUESTIONS_OPERATION) and request.method == "GET":
            raise web.HTTPSeeOther("/admin/questions")  # a mentor: the questions inbox
        raise Denied(
            "The admin console is for authors, reviewers and admins. Your account has none of "
            "these roles."
        )
    if not may(roles, operation):
        raise Denied(f"This needs the role {describe(operation)} ({operation!r}).")
    return session


def svc(request: web.Request) -> AdminService:
    config = request.config_dict
    return AdminService(config[keys.SETTINGS], config[keys.LIBRARY], config[keys.SUGGESTER])


def render(
    request: web.Request, template: str, context: Mapping[str, Any], status: int = 200
) -> web.Response:
    return render_page(request, f"admin/{template}", {**page_context(request), **context}, status)


def see_other(path: str, notice: str = "") -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{path}?notice={notice}" if notice else path)


def text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def csv_list(value: str) -> list[str]:
    return [v.strip() for v in value.replace("\n", ",").split(",") if v.strip()]


def whole_number(form: Mapping[str, Any], name: str, default: str, message: str) -> int:
    value = text(form, name) or default
    if not value.lstrip("-").isdigit():
        raise ValidationFailed(message, fields=[name])
    return int(value)


# -- forms: shown, sent, refused, shown again with what the user typed ---------------------------


_INDEX = re.compile(r"\[\d+\]")


@dataclass(frozen=True)
class FormState:
    """A refused form: what the user typed, field -> message, the message for the whole form."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    error: str = ""
    status: int = 422

    @classmethod
    def typed(cls, form: MultiDictProxy[Any], status: int = 200) -> FormState:
        """The form as the user typed it (a preview shows it again as it is)."""
        values: dict[str, Any] = {}
        for name in form:
            if name == FIELD or name in values:
                continue
            sent = [v for v in form.getall(name) if isinstance(v, str)]
            values[name] = sent if name in MULTI_FIELDS else (sent[0] if sent else "")
        return cls(values, status=status)

    @classmethod
    def refused(cls, form: MultiDictProxy[Any], exc: InflowError) -> FormState:
        values = cls.typed(form).values
        return cls(values, field_messages(exc, values), exc.detail, exc.status)


def field_messages(exc: InflowError, names: Mapping[str, Any]) -> dict[str, str]:
    """field -> message from a domain error's `errors` (or `fields`), named as the form names
    them: `contexts[2].rule` on a form with a `rule` field is `rule`; otherwise `contexts`."""
    out: dict[str, str] = {}
    found = exc.extra.get("errors")
    pairs = (
        [(str(e.get("field", "")), str(e.get("message", ""))) for e in found if isinstance(e, dict)]
        if isinstance(found, list)
        else []
    )
    if not pairs:
        pairs = [(str(f), exc.detail) for f in exc.extra.get("fields") or ()]
    for path, message in pairs:
        parts = [p for p in _INDEX.sub("", path).split(".") if p]
        if not parts:
            continue
        name = next((p for p in reversed(parts) if p in names), parts[0])
        out.setdefault(name, message)
    return out


def render_form(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    state: FormState | None,
    *,
    key: str = "f",
) -> web.Response:
    """The one way a console form is shown: `context[key]` holds the stored values of the form
    named `key`; after a refusal (`state`) they are what the user typed, `{key}_errors` maps each
    field to its message, `error` says what went wrong, and the status is the refusal's (422 for
    invalid input, 412 for a stale ETag, 403 for a step the roles do not allow)."""
    if state is None:
        return render(request, template, context)
    return render(
        request,
        template,
        {**context, key: state.values, f"{key}_errors": state.errors, "error": state.error},
        state.status,
    )


Page = Callable[[web.Request, FormState | None], Awaitable[web.Response]]
Action = Callable[[web.Request, ConsoleSession, MultiDictProxy[Any]], Awaitable[web.StreamResponse]]


async def submit_form(
    request: web.Request, operation: str, action: Action, page: Page
) -> web.StreamResponse:
    """Check `operation` against the permission table, run `action` (it parses the form, calls
    the service and answers, usually 303); a domain error shows `page` again with the form."""
    session = need(request, operation)
    form = await request.post()
    try:
        return await action(request, session, form)
    except InflowError as exc:
        return await page(request, FormState.refused(form, exc))


async def posted(
    request: web.Request, operation: str
) -> tuple[ConsoleSession, str, MultiDictProxy[Any]]:
    """A button's POST on one resource: the session (checked against `operation`), the id in
    the path and the form."""
    session = need(request, operation)
    return session, request.match_info["id"], await request.post()


Create = Callable[[AdminService, Identity, dict[str, Any]], Awaitable[Any]]
Update = Callable[..., Awaitable[Any]]


async def create_or_update(
    request: web.Request,
    session: ConsoleSession,
    form: MultiDictProxy[Any],
    data: dict[str, Any],
    base: str,
    create: Create,
    update: Update,
) -> web.StreamResponse:
    """Save an editor's form: a new resource (no id in the path) goes to its page as "created",
    a stored one is updated with the form's ETag ("saved"). Domain errors go to `submit_form`."""
    service, identity = svc(request), session.identity()
    target = request.match_info.get("id")
    if target is None:
        made = await create(service, identity, data)
        raise see_other(f"{base}/{quote(made.id)}", "created")
    await update(service, identity, target, data, text(form, "etag"), partial=True)
    raise see_other(f"{base}/{quote(target)}", "saved")


Delete = Callable[[AdminService, Identity, str, str | None], Awaitable[Any]]


def add_delete(
    routes: web.RouteTableDef,
    base: str,
    operation: str,
    delete: Delete,
    back: str | Callable[[web.Request, str], Awaitable[str]],
) -> None:
    """The delete button of a resource: POST `{base}/{id}/delete` checks `operation`, deletes
    with the form's ETag (`delete(service, identity, id, etag)`) and goes `back` (a path, or a
    function of the request and the id, asked before the resource is gone)."""

    async def delete_post(request: web.Request) -> web.StreamResponse:
        session, target, form = await posted(request, operation)
        to = back if isinstance(back, str) else await back(request, target)
        await delete(svc(request), session.identity(), target, text(form, "etag"))
        raise see_other(to, "deleted")

    routes.post(base + "/{id}/delete")(delete_post)


def add_form(
    routes: web.RouteTableDef, path: str, operation: str, action: Action, page: Page
) -> None:
    """POST `path`: a form checked against `operation`, handled by `action`, shown again by
    `page` with what was typed and its errors when the service refuses it."""

    async def form_post(request: web.Request) -> web.StreamResponse:
        return await submit_form(request, operation, action, page)

    routes.post(path)(form_post)


def add_editor(
    routes: web.RouteTableDef,
    base: str,
    operations: tuple[str, str],
    page: Page,
    save: Action,
) -> None:
    """The four routes of a resource's editor: GET and POST `{base}/new` (operations[0], create)
    and `{base}/{id}` (operations[1], update; anyone with the console's read access sees it).
    `page(request, state)` tells new from stored by the match info; `save` creates or updates."""
    create, update = operations

    async def new_page(request: web.Request) -> web.StreamResponse:
        need(request, create)
        return await page(request, None)

    async def stored_page(request: web.Request) -> web.StreamResponse:
        need(request)
        return await page(request, None)

    routes.get(f"{base}/new")(new_page)
    add_form(routes, f"{base}/new", create, save, page)
    routes.get(base + "/{id}")(stored_page)
    add_form(routes, base + "/{id}", update, save, page)
