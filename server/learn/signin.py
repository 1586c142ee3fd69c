"""Sign-in to the web app (Keycloak authorization code + PKCE, the console's client and
checks), sign-out (which also tells the browser to drop the offline copies), the signed-out page."""

from __future__ import annotations

import logging
import secrets

import jwt
from aiohttp import web
from yarl import URL

from auth.service import AuthUnavailable
from auth.verifier import InvalidToken
from server import keys
from server.console.csrf import safe_next
from server.console.oidc import pkce_pair
from server.learn import Refused
from server.learn.common import HOME, render, session_of
from server.learn.session import STATE_COOKIE
from server.permissions import describe, may

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
    base = URL(request.config_dict[keys.SETTINGS].base_url)
    if request.url.host != base.host and "moved" not in request.query:
        # Keycloak returns the browser to base_url: start on that host so the state cookie
        # reaches the callback (as the console does; `moved` stops a loop behind a proxy).
        there = base.origin().with_path("/learn/login").with_query(next=target, moved="1")
        raise web.HTTPSeeOther(str(there))
    verifier, challenge = pkce_pair()
    nonce = secrets.token_urlsafe(24)
    store = request.config_dict[keys.LEARN_SESSIONS]
    state = await store.start_login({"verifier": verifier, "nonce": nonce, "next": target})
    url = await request.config_dict[keys.LEARN_OIDC].auth_url(state, nonce, challenge)
    response = web.HTTPSeeOther(url)
    store.set_state_cookie(response, state)  # a callback with someone else's state is refused
    raise response


@routes.get("/learn/callback")
async def callback(request: web.Request) -> web.Response:
    store = request.config_dict[keys.LEARN_SESSIONS]
    state = request.query.get("state", "")
    cookie_state = request.cookies.get(STATE_COOKIE, "")
    if request.query.get("error"):
        raise Refused(f"Keycloak refused the sign-in: {request.query.get('error')}.", 400)
    if not state or not secrets.compare_digest(state.encode(), cookie_state.encode()):
        raise Refused("This sign-in did not start in this browser. Sign in again.", 400)
    pending = await store.finish_login(state)
    if pending is None:
        raise Refused("This sign-in expired or was used already. Sign in again.", 400)
    oidc = request.config_dict[keys.LEARN_OIDC]
    try:
        tokens = await oidc.exchange(request.query.get("code", ""), pending["verifier"])
    except Exception as exc:  # python-keycloak raises many kinds
        raise Refused(f"The sign-in could not be completed ({type(exc).__name__}).", 400) from exc
    try:
        # From the token endpoint over the back channel: the nonce is what matters here; the
        # access token is fully verified below.
        id_claims = jwt.decode(tokens.get("id_token", ""), options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Refused("Keycloak sent no usable ID token.", 400) from exc
    if id_claims.get("nonce") != pending["nonce"]:
        raise Refused("The sign-in answer does not belong to this request.", 400)
    try:
        identity = await request.config_dict[keys.AUTHENTICATOR].authenticate(
            tokens["access_token"]
        )
    except (InvalidToken, AuthUnavailable) as exc:
        raise Refused(f"The access token was refused: {exc}", 400) from exc
    if not may(identity.roles, LEARN_OPERATION):
        await oidc.logout(tokens.get("refresh_token", ""))
        raise Refused(
            f"Inflow is for people with {describe(LEARN_OPERATION)}; your account has none."
        )
    sid, _ = await store.create(identity, tokens)
    response = web.HTTPSeeOther(_next(pending.get("next")))
    store.set_cookie(response, sid)
    response.del_cookie(STATE_COOKIE, path="/learn/callback")
    raise response


@routes.post("/learn/logout")
async def logout(request: web.Request) -> web.Response:
    session = session_of(request)
    store = request.config_dict[keys.LEARN_SESSIONS]
    if session is not None:
        try:
            await request.config_dict[keys.LEARN_OIDC].logout(session.refresh_token)
        except Exception as exc:  # the local session ends anyway
            log.warning("Keycloak logout failed: %s", type(exc).__name__)
        await store.delete(session)
    response = web.HTTPSeeOther("/learn/signed-out")
    store.clear_cookie(response)
    # The offline copies and the service worker go with the session (docs/learn.md); the
    # signed-out page's script clears them too where the header is not supported.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    raise response


@routes.get("/learn/signed-out")
async def signed_out(request: web.Request) -> web.Response:
    return render(request, "signed_out.html", {"title": "Signed out"})
