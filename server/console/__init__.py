"""The admin console at /admin: server-rendered pages (aiohttp-jinja2), Keycloak sign-in,
server-side sessions, CSRF tokens. See docs/admin.md.

`setup_console(app)` mounts the console as an aiohttp sub-app at /admin, with its own middleware
(sessions, CSRF, HTML error pages), so nothing of it runs for API requests; the root app's
middleware (CORS, problems, rate limits, bearer tokens, which leave /admin alone) runs first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.typedefs import Middleware

from server import keys, websession
from server.console.csrf import CsrfFailed
from server.console.oidc import AdminOidc
from server.console.session import ConsoleSession, SessionStore
from server.db.errors import DatabaseUnavailable
from server.errors import DATABASE_UNAVAILABLE, Handler, InflowError, retry_after

log = logging.getLogger("inflow.console")

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
PREFIX = "/admin"
# POSTs that check the token themselves (multipart uploads read the token from the stream).
SELF_CHECKED = frozenset({"/admin/import", "/admin/transcripts"})


class Denied(Exception):
    """A console page the signed-in user may not see: rendered as an HTML 403 page."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


console_ctx = websession.sessions_ctx(keys.ADMIN_SESSIONS, SessionStore, keys.ADMIN_OIDC, AdminOidc)


async def load_session(request: web.Request) -> ConsoleSession | None:
    """The session of the cookie, refreshed when its access token is about to expire."""
    config = request.config_dict
    return await websession.load_session(
        request, config[keys.ADMIN_SESSIONS], config[keys.ADMIN_OIDC], log
    )


SECURITY_HEADERS = websession.security_headers()
# Form bodies whose token field is read when the header is absent.
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[keys.CONSOLE_SESSION] = None
    if not (request.path == PREFIX or request.path.startswith(PREFIX + "/")):
        return await handler(request)
    if request.path.startswith(PREFIX + "/static/"):
        return await handler(request)
    try:
        session = await load_session(request)  # (a database read: inside, for the 503 page)
        request[keys.CONSOLE_SESSION] = session
        if session is not None:
            request[keys.IDENTITY] = session.identity()
        if request.method == "POST" and request.path not in SELF_CHECKED and session is not None:
            await websession.check_post(request, session, FORM_TYPES)
        response = await handler(request)
    except CsrfFailed:
        raise
    except Denied as exc:
        response = await _error_page(request, exc.status, "Not allowed", exc.message)
    except InflowError as exc:
        response = await _error_page(request, exc.status, exc.title, exc.detail)
    except DatabaseUnavailable:  # PostgreSQL restarting or down: a page, not a crash
        response = await _error_page(request, 503, "Database unavailable", DATABASE_UNAVAILABLE)
        response.headers["Retry-After"] = retry_after(request)
    except web.HTTPNotFound:
        # A console address that is no page (a mistyped link): people get the console's own
        # page; the API under /api keeps its problem+json (this middleware never sees it).
        response = await _error_page(
            request, 404, "Not found", f"There is no console page at {request.path}."
        )
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def _error_page(request: web.Request, status: int, title: str, detail: str) -> web.Response:
    from server.console.views import page_context

    context = {**page_context(request), "title": title, "detail": detail, "status": status}
    return websession.render_page(request, "admin/error.html", context, status)


def sub_app(
    prefix: str, routes: Iterable[web.AbstractRouteDef], middlewares: Iterable[Middleware]
) -> web.Application:
    """A sub-application for `app.add_subapp(prefix, ...)` serving `routes`, which are declared
    with their full paths (`/admin/aids`), with its own `middlewares` (after the root app's)."""
    sub = web.Application(middlewares=list(middlewares))
    for route in routes:
        if isinstance(route, web.RouteDef):
            path = route.path
        elif isinstance(route, web.StaticDef):
            path = route.prefix
        else:
            raise TypeError(f"cannot mount {route!r}")
        if not (path == prefix or path.startswith(prefix + "/")):
            raise ValueError(f"route {route!r} is not under {prefix}")
        if isinstance(route, web.RouteDef):
            sub.router.add_route(route.method, path[len(prefix) :], route.handler, **route.kwargs)
        else:
            sub.router.add_static(path[len(prefix) :], route.path, **route.kwargs)
    return sub


def setup_template_env(app: web.Application) -> None:
    """One Jinja environment on the root app; sub-apps find it through request.config_dict."""
    if aiohttp_jinja2.APP_KEY not in app:
        from server.console.words import setup_filters

        env = aiohttp_jinja2.setup(
            app,
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=jinja2.select_autoescape(["html", "xml"], default_for_string=True),
        )
        setup_filters(env)


def setup_console(app: web.Application) -> None:
    """Mount the console at /admin as a sub-app with its session/CSRF middleware.

    Its resources (session store, Keycloak client) hang off the root app, opened and closed by
    `console_ctx` there: they need the root's library, and the analytics dashboard (its own
    sub-app at /admin/analytics, server/analytics) reads the same sessions.
    """
    from server.console.views import routes

    setup_template_env(app)
    app.cleanup_ctx.append(console_ctx)
    app.add_subapp(PREFIX, sub_app(PREFIX, routes, [console_middleware]))


__all__ = ["Denied", "console_middleware", "setup_console", "setup_template_env", "sub_app"]
