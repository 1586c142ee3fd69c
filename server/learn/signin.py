"""Sign-in to the web app (Keycloak authorization code + PKCE, the console's client and
checks), sign-out (which also tells the browser to drop the offline copies), the signed-out page."""

from __future__ import annotations

import logging

from aiohttp import web

from server import keys
from server.console.csrf import safe_next
from server.learn import Refused
from server.learn.common import HOME, render, session_of
from server.permissions import describe, may
from server.websession import finish_login, sign_out, signed_in, start_login

log = logging.getLogger("inflow.learn")
routes = web.RouteTableDef()

# Any Inflow role may use the web app: the learner-facing operations.
LEARN_OPERATION = "search"


def _next(raw: str | None) -> str:
    target = safe_next(raw, HOME)
    return target if target == "/learn" or target.startswith(HOME) else HOME


@routes.get("/learn/login")
async def login(request: web.Request) -> web.Response:
    target = _next(request.query.get("next"))
    if session_of(request) is not None:
        raise web.HTTPSeeOther(target)
    config = request.config_dict
    await start_login(
        request, config[keys.LEARN_SESSIONS], config[keys.LEARN_OIDC], "/learn/login", target
    )


@routes.get("/learn/callback")
async def callback(request: web.Request) -> web.Response:
    store, oidc = request.config_dict[keys.LEARN_SESSIONS], request.config_dict[keys.LEARN_OIDC]
    identity, tokens, pending = await finish_login(request, store, oidc, Refused)
    if not may(identity.roles, LEARN_OPERATION):
        await oidc.logout(tokens.get("refresh_token", ""))
        raise Refused(
            f"Inflow is for people with {describe(LEARN_OPERATION)}; your account has none."
        )
    await signed_in(store, identity, tokens, _next(pending.get("next")))


@routes.post("/learn/logout")
async def logout(request: web.Request) -> web.Response:
    store = request.config_dict[keys.LEARN_SESSIONS]
    await sign_out(store, request.config_dict[keys.LEARN_OIDC], session_of(request), log)
    response = web.HTTPSeeOther("/learn/signed-out")
    store.clear_cookie(response)
    # The offline copies and the service worker go with the session (docs/learn.md); the
    # signed-out page's script clears them too where the header is not supported.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    raise response


@routes.get("/learn/signed-out")
async def signed_out(request: web.Request) -> web.Response:
    return render(request, "signed_out.html", {"title": "Signed out"})
