"""Sign-in with Keycloak (authorization code + PKCE), sign-out, and the console's static files."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from server import keys
from server.console import Denied, path_report
from server.console.common import CONSOLE_OPERATION, QUESTIONS_OPERATION, render, session_of
from server.console.csrf import safe_next
from server.peer.people import owned_apps
from server.permissions import may
from server.websession import finish_login, sign_out, signed_in, start_login, static_file

log = logging.getLogger("inflow.console")
routes = web.RouteTableDef()
STATIC = Path(__file__).resolve().parent.parent / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@routes.get("/admin/static/{name}")
async def static(request: web.Request) -> web.StreamResponse:
    return static_file(STATIC, request.match_info["name"], STATIC_TYPES)


@routes.get("/admin/login")
async def login(request: web.Request) -> web.Response:
    target = safe_next(request.query.get("next"))
    if session_of(request) is not None:
        raise web.HTTPSeeOther(target)
    config = request.config_dict
    await start_login(
        request, config[keys.ADMIN_SESSIONS], config[keys.ADMIN_OIDC], "/admin/login", target
    )


@routes.get("/admin/callback")
async def callback(request: web.Request) -> web.Response:
    store, oidc = request.config_dict[keys.ADMIN_SESSIONS], request.config_dict[keys.ADMIN_OIDC]
    identity, tokens, pending = await finish_login(request, store, oidc, Denied)
    # Mentors (question.read without the console's aid.read) sign in for the questions inbox only;
    # an app's owners (their e-mail in its `owners`), whatever their roles, for its tip queue.
    mentor_only = not may(identity.roles, CONSOLE_OPERATION)
    owner = bool(owned_apps(identity, request.config_dict[keys.LIBRARY].catalog))
    # managers (path.report without aid.read) sign in for the path reports only
    reporter = may(identity.roles, path_report.OPERATION)
    if mentor_only and not may(identity.roles, QUESTIONS_OPERATION) and not owner and not reporter:
        await oidc.logout(tokens.get("refresh_token", ""))
        raise Denied(
            "The admin console is for authors, reviewers, admins, mentors and managers; your "
            "account has none of these roles."
        )
    target = safe_next(pending.get("next"))
    if mentor_only:
        questions = may(identity.roles, QUESTIONS_OPERATION)
        if reporter and path_report.is_report_page(target):
            pass  # a manager's link to a report
        elif (questions or owner) and target.startswith(("/admin/questions", "/admin/tips")):
            pass
        elif questions:
            target = "/admin/questions"
        elif owner:
            target = "/admin/tips"
        else:  # a manager: the path reports are all they may open
            target = path_report.LIST
    await signed_in(store, identity, tokens, target)


@routes.post("/admin/logout")
async def logout(request: web.Request) -> web.Response:
    store = request.config_dict[keys.ADMIN_SESSIONS]
    await sign_out(store, request.config_dict[keys.ADMIN_OIDC], session_of(request), log)
    response = web.HTTPSeeOther("/admin/signed-out")
    store.clear_cookie(response)
    raise response


@routes.get("/admin/signed-out")
async def signed_out(request: web.Request) -> web.Response:
    return render(request, "signed_out.html", {})
