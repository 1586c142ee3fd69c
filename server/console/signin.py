"""Sign-in with Keycloak (authorization code + PKCE), sign-out, and the console's static files."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import jwt
from aiohttp import web
from yarl import URL

from auth.service import AuthUnavailable
from auth.verifier import InvalidToken
from server import keys
from server.console import Denied, path_report
from server.console.common import CONSOLE_OPERATION, QUESTIONS_OPERATION, render, session_of
from server.console.csrf import safe_next
from server.console.oidc import pkce_pair
from server.peer.people import owned_apps
from server.permissions import may

log = logging.getLogger("inflow.console")
routes = web.RouteTableDef()
STATIC = Path(__file__).resolve().parent.parent / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@routes.get("/admin/static/{name}")
async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(
        path, headers={"Content-Type": STATIC_TYPES[path.suffix], "Cache-Control": "no-cache"}
    )


@routes.get("/admin/login")
async def login(request: web.Request) -> web.Response:
    target = safe_next(request.query.get("next"))
    if session_of(request) is not None:
        raise web.HTTPSeeOther(target)
    base = URL(request.config_dict[keys.SETTINGS].base_url)
    if request.url.host != base.host and "moved" not in request.query:
        # Keycloak sends the browser back to base_url: start on that host, so the state cookie
        # set below is sent to the callback (e.g. opened on localhost, base_url on 127.0.0.1).
        # Hosts only (cookies ignore ports and TLS may end at a proxy); `moved` stops a loop
        # behind a proxy that rewrites Host.
        there = base.origin().with_path("/admin/login").with_query(next=target, moved="1")
        raise web.HTTPSeeOther(str(there))
    verifier, challenge = pkce_pair()
    nonce = secrets.token_urlsafe(24)
    store = request.config_dict[keys.ADMIN_SESSIONS]
    state = await store.start_login({"verifier": verifier, "nonce": nonce, "next": target})
    url = await request.config_dict[keys.ADMIN_OIDC].auth_url(state, nonce, challenge)
    response = web.HTTPSeeOther(url)
    # Binds the state to this browser: a callback with someone else's state is refused.
    response.set_cookie(
        "inflow_login_state",
        state,
        max_age=600,
        path="/admin/callback",
        httponly=True,
        samesite="Lax",
        secure=store.secure,
    )
    raise response


@routes.get("/admin/callback")
async def callback(request: web.Request) -> web.Response:
    store = request.config_dict[keys.ADMIN_SESSIONS]
    state = request.query.get("state", "")
    cookie_state = request.cookies.get("inflow_login_state", "")
    if request.query.get("error"):
        raise Denied(f"Keycloak refused the sign-in: {request.query.get('error')}.", 400)
    if not state or not secrets.compare_digest(state.encode(), cookie_state.encode()):
        raise Denied("This sign-in did not start in this browser. Sign in again.", 400)
    pending = await store.finish_login(state)
    if pending is None:
        raise Denied("This sign-in expired or was used already. Sign in again.", 400)
    code = request.query.get("code", "")
    oidc = request.config_dict[keys.ADMIN_OIDC]
    try:
        tokens = await oidc.exchange(code, pending["verifier"])
    except Exception as exc:  # python-keycloak raises many kinds
        raise Denied(f"The sign-in could not be completed ({type(exc).__name__}).", 400) from exc
    try:
        # Straight from the token endpoint over the back channel: the nonce is what matters here
        # (OIDC Core 3.1.3.7); the access token is fully verified below.
        id_claims = jwt.decode(tokens.get("id_token", ""), options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Denied("Keycloak sent no usable ID token.", 400) from exc
    if id_claims.get("nonce") != pending["nonce"]:
        raise Denied("The sign-in answer does not belong to this request.", 400)
    try:
        identity = await request.config_dict[keys.AUTHENTICATOR].authenticate(
            tokens["access_token"]
        )
    except (InvalidToken, AuthUnavailable) as exc:
        raise Denied(f"The access token was refused: {exc}", 400) from exc
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
    sid, _ = await store.create(identity, tokens)
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
    response = web.HTTPSeeOther(target)
    store.set_cookie(response, sid)
    response.del_cookie("inflow_login_state", path="/admin/callback")
    raise response


@routes.post("/admin/logout")
async def logout(request: web.Request) -> web.Response:
    session = session_of(request)
    store = request.config_dict[keys.ADMIN_SESSIONS]
    if session is not None:
        try:
            await request.config_dict[keys.ADMIN_OIDC].logout(session.refresh_token)
        except Exception as exc:  # the local session ends anyway
            log.warning("Keycloak logout failed: %s", type(exc).__name__)
        await store.delete(session)
    response = web.HTTPSeeOther("/admin/signed-out")
    store.clear_cookie(response)
    raise response


@routes.get("/admin/signed-out")
async def signed_out(request: web.Request) -> web.Response:
    return render(request, "signed_out.html", {})
