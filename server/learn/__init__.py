"""The learner web app at /learn: server-rendered pages for phones and any browser, signed in
through Keycloak with a server-side session (server/learn/session.py), installable as a PWA whose
service worker keeps the last aids read for offline use. See docs/learn.md.

`setup_learn(app)` mounts it as a sub-app with its own middleware (session, CSRF, HTML error
pages, security headers); the root app's middleware leaves paths outside /api alone.
Every page calls the same service functions as the API (search, aid visibility and rendering,
peer learning, paths progress): no second implementation.
"""

from __future__ import annotations

import logging

from aiohttp import web

from server import keys, websession
from server.console import setup_template_env, sub_app
from server.console.csrf import CsrfFailed
from server.console.session import ConsoleSession
from server.db.errors import DatabaseUnavailable
from server.errors import DATABASE_UNAVAILABLE, Handler, InflowError, retry_after
from server.learn.session import LearnOidc, LearnSessionStore

log = logging.getLogger("inflow.learn")

PREFIX = "/learn"
# Served without a session: sign-in, the offline shell and what the browser fetches by itself.
OPEN_PATHS = frozenset(
    {
        "/learn/login",
        "/learn/callback",
        "/learn/signed-out",
        "/learn/offline",
        "/learn/sw.js",
        "/learn/manifest.webmanifest",
    }
)
# The service worker and the manifest are the web app's own; cached pages are revalidated.
SECURITY_HEADERS = websession.security_headers(
    "; worker-src 'self'; manifest-src 'self'", cache="private, no-cache"
)
FORM_TYPES = frozenset({"application/x-www-form-urlencoded"})


class Refused(Exception):
    """A web app page this person may not see, or a sign-in that failed: an HTML error page."""

    def __init__(self, message: str, status: int = 403, title: str = "Not allowed") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.title = title


learn_ctx = websession.sessions_ctx(
    keys.LEARN_SESSIONS, LearnSessionStore, keys.LEARN_OIDC, LearnOidc
)


async def load_session(request: web.Request) -> ConsoleSession | None:
    """The session of the cookie, refreshed when its access token is about to expire (a failed
    refresh ends the session: the person signs in again)."""
    config = request.config_dict
    return await websession.load_session(
        request, config[keys.LEARN_SESSIONS], config[keys.LEARN_OIDC], log
    )


@web.middleware
async def learn_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[keys.LEARN_SESSION] = None
    static = request.path.startswith(PREFIX + "/static/")
    try:
        session = None if static else await load_session(request)  # (a database read)
        request[keys.LEARN_SESSION] = session
        if session is not None:
            request[keys.IDENTITY] = session.identity()
        if request.method == "POST" and session is not None:
            await websession.check_post(request, session, FORM_TYPES)
        response = await handler(request)
    except CsrfFailed:
        raise  # problem+json 403, like the console
    except Refused as exc:
        response = await error_page(request, exc.status, exc.title, exc.message)
    except InflowError as exc:
        response = await error_page(request, exc.status, exc.title, exc.detail)
    except DatabaseUnavailable:  # PostgreSQL restarting or down: a page, not a crash
        response = await error_page(request, 503, "Database unavailable", DATABASE_UNAVAILABLE)
        response.headers["Retry-After"] = retry_after(request)
    except web.HTTPNotFound:
        response = await error_page(
            request, 404, "Not found", f"There is no page at {request.path}."
        )
    except web.HTTPMethodNotAllowed:
        response = await error_page(
            request, 405, "Not allowed", f"{request.method} is not how this page is used."
        )
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def error_page(request: web.Request, status: int, title: str, detail: str) -> web.Response:
    from server.learn.common import page_context

    context = {**page_context(request), "title": title, "detail": detail, "status": status}
    return websession.render_page(request, "learn/error.html", context, status)


def setup_learn(app: web.Application) -> None:
    """Mount the web app at /learn (its resources on the root app, opened by learn_ctx)."""
    from server.learn.pages import all_routes

    setup_template_env(app)
    app.cleanup_ctx.append(learn_ctx)
    sub = sub_app(PREFIX, all_routes(), [learn_middleware])
    sub[keys.LEARN_ROOT_APP] = app
    app.add_subapp(PREFIX, sub)


__all__ = ["Refused", "learn_middleware", "setup_learn"]
