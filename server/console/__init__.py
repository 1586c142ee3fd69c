"""The admin console at /admin: server-rendered pages (aiohttp-jinja2), Keycloak sign-in,
server-side sessions, CSRF tokens. See docs/admin.md.

`setup_console(app)` adds the routes, the static files, the session middleware (innermost, after
the bearer-token middleware, which leaves /admin alone) and the cleanup context.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from server import keys
from server.console.csrf import FIELD, HEADER, CsrfFailed, check_csrf
from server.console.oidc import AdminOidc
from server.console.session import ConsoleSession, SessionStore
from server.errors import Handler, InflowError

log = logging.getLogger("inflow.console")

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
PREFIX = "/admin"
# POSTs that check the token themselves (multipart uploads read the token from the stream).
SELF_CHECKED = frozenset({"/admin/import"})
REFRESH_MARGIN = 30.0


class Denied(Exception):
    """A console page the signed-in user may not see: rendered as an HTML 403 page."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


async def console_ctx(app: web.Application) -> AsyncIterator[None]:
    app[keys.ADMIN_SESSIONS] = SessionStore(app[keys.LIBRARY].storage, app[keys.SETTINGS])
    oidc = AdminOidc(app[keys.SETTINGS])
    app[keys.ADMIN_OIDC] = oidc
    try:
        yield
    finally:
        await oidc.aclose()


async def load_session(request: web.Request) -> ConsoleSession | None:
    """The session of the cookie; refreshes the access token when it is about to expire."""
    store = request.app[keys.ADMIN_SESSIONS]
    session = await store.get(request.cookies.get(store.cookie_name))
    if session is None:
        return None
    if session.access_expires_at - REFRESH_MARGIN > time.time():
        return session
    try:
        tokens = await request.app[keys.ADMIN_OIDC].refresh(session.refresh_token)
        identity = await request.app[keys.AUTHENTICATOR].authenticate(tokens["access_token"])
    except Exception as exc:  # any failure (Keycloak down, token refused) ends the session
        log.info("console session ended: refresh failed (%s)", type(exc).__name__)
        await store.delete(session)
        return None
    session.update(identity, tokens)
    await store.save(session)
    return session


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: https:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "private, no-store",
}


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[keys.CONSOLE_SESSION] = None
    if not (request.path == PREFIX or request.path.startswith(PREFIX + "/")):
        return await handler(request)
    if request.path.startswith(PREFIX + "/static/"):
        return await handler(request)
    session = await load_session(request)
    request[keys.CONSOLE_SESSION] = session
    if session is not None:
        request[keys.IDENTITY] = session.identity()
    try:
        if request.method == "POST" and request.path not in SELF_CHECKED and session is not None:
            sent = request.headers.get(HEADER)
            if sent is None and request.content_type in {
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            }:
                form = await request.post()
                value = form.get(FIELD)
                sent = value if isinstance(value, str) else None
            check_csrf(session.csrf, sent)
        response = await handler(request)
    except CsrfFailed:
        raise
    except Denied as exc:
        response = await _error_page(request, exc.status, "Not allowed", exc.message)
    except InflowError as exc:
        response = await _error_page(request, exc.status, exc.title, exc.detail)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def _error_page(request: web.Request, status: int, title: str, detail: str) -> web.Response:
    from server.console.views import page_context

    response = aiohttp_jinja2.render_template(
        "admin/error.html",
        request,
        {**page_context(request), "title": title, "detail": detail, "status": status},
    )
    response.set_status(status)
    return response


def setup_console(app: web.Application) -> None:
    from server.console.views import routes

    if aiohttp_jinja2.APP_KEY not in app:
        aiohttp_jinja2.setup(
            app,
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=jinja2.select_autoescape(["html", "xml"], default_for_string=True),
        )
    app.middlewares.append(console_middleware)
    app.cleanup_ctx.append(console_ctx)
    app.router.add_routes(routes)


__all__ = ["Denied", "setup_console"]
