"""Browser sign-in and sessions, shared by the admin console (/admin) and the learner web app
(/learn): Keycloak authorization code + PKCE with a state cookie, the callback's checks, the
session of the cookie (refreshed before its access token expires), sign-out, the CSRF check of
a form POST, the security headers and the static files.

Each app passes its own session store (cookies, row kinds, callback path: server/console/
session.py), Keycloak client (redirect URI: server/console/oidc.py), paths and error type; what
it does with a signed-in identity (which roles may enter, where they land) stays in the app.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import aiohttp_jinja2
import jwt
from aiohttp import web
from yarl import URL

from auth.identity import Identity
from auth.service import AuthUnavailable
from auth.verifier import InvalidToken
from server import keys
from server.console.csrf import FIELD, HEADER, check_csrf
from server.console.oidc import AdminOidc, pkce_pair
from server.console.session import ConsoleSession, SessionStore

# A session whose access token expires within this many seconds is refreshed first.
REFRESH_MARGIN = 30.0
# What both apps' pages allow; an app adds its own directives (the web app's service worker).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

S = TypeVar("S", bound=SessionStore)
C = TypeVar("C", bound=AdminOidc)
# An app's error for a refused sign-in: (message, HTTP status) -> its HTML error page.
Fail = Callable[[str, int], Exception]


def sessions_ctx(
    store_key: web.AppKey[S], store: type[S], oidc_key: web.AppKey[C], oidc: type[C]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context putting an app's session store and Keycloak client on the root app
    (they need its library and settings) and closing the client at shutdown."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[store_key] = store(app[keys.LIBRARY].storage, app[keys.SETTINGS])
        client = app[oidc_key] = oidc(app[keys.SETTINGS])
        try:
            yield
        finally:
            await client.aclose()

    return ctx


def security_headers(csp_extra: str = "", cache: str = "private, no-store") -> dict[str, str]:
    """The headers every page of an app gets (set unless the handler set them)."""
    return {
        "Content-Security-Policy": CSP + csp_extra,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": cache,
    }


async def start_login(
    request: web.Request, store: SessionStore, oidc: AdminOidc, login_path: str, target: str
) -> NoReturn:
    """Redirect to Keycloak, with a pending sign-in (PKCE verifier, nonce, `target`) stored
    under a fresh state that a cookie binds to this browser."""
    base = URL(request.config_dict[keys.SETTINGS].base_url)
    if request.url.host != base.host and "moved" not in request.query:
        # Keycloak sends the browser back to base_url: start on that host, so the state cookie
        # set below is sent to the callback (e.g. opened on localhost, base_url on 127.0.0.1).
        # Hosts only (cookies ignore ports and TLS may end at a proxy); `moved` stops a loop
        # behind a proxy that rewrites Host.
        there = base.origin().with_path(login_path).with_query(next=target, moved="1")
        raise web.HTTPSeeOther(str(there))
    verifier, challenge = pkce_pair()
    nonce = secrets.token_urlsafe(24)
    state = await store.start_login({"verifier": verifier, "nonce": nonce, "next": target})
    response = web.HTTPSeeOther(await oidc.auth_url(state, nonce, challenge))
    store.set_state_cookie(response, state)  # a callback with someone else's state is refused
    raise response


async def finish_login(
    request: web.Request, store: SessionStore, oidc: AdminOidc, fail: Fail
) -> tuple[Identity, dict[str, Any], dict[str, str]]:
    """The callback's checks: (identity, tokens, pending sign-in), or `fail(message, 400)`."""
    state = request.query.get("state", "")
    cookie_state = request.cookies.get(store.state_cookie, "")
    if request.query.get("error"):
        raise fail(f"Keycloak refused the sign-in: {request.query.get('error')}.", 400)
    if not state or not secrets.compare_digest(state.encode(), cookie_state.encode()):
        raise fail("This sign-in did not start in this browser. Sign in again.", 400)
    pending = await store.finish_login(state)
    if pending is None:
        raise fail("This sign-in expired or was used already. Sign in again.", 400)
    try:
        tokens = await oidc.exchange(request.query.get("code", ""), pending["verifier"])
    except Exception as exc:  # python-keycloak raises many kinds
        raise fail(f"The sign-in could not be completed ({type(exc).__name__}).", 400) from exc
    try:
        # Straight from the token endpoint over the back channel: the nonce is what matters here
        # (OIDC Core 3.1.3.7); the access token is fully verified below.
        id_claims = jwt.decode(tokens.get("id_token", ""), options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise fail("Keycloak sent no usable ID token.", 400) from exc
    if id_claims.get("nonce") != pending["nonce"]:
        raise fail("The sign-in answer does not belong to this request.", 400)
    try:
        identity = await request.config_dict[keys.AUTHENTICATOR].authenticate(
            tokens["access_token"]
        )
    except (InvalidToken, AuthUnavailable) as exc:
        raise fail(f"The access token was refused: {exc}", 400) from exc
    return identity, tokens, pending


async def signed_in(
    store: SessionStore, identity: Identity, tokens: dict[str, Any], target: str
) -> NoReturn:
    """A new session for `identity`: its cookie set, the state cookie dropped, off to `target`."""
    sid, _ = await store.create(identity, tokens)
    response = web.HTTPSeeOther(target)
    store.set_cookie(response, sid)
    store.clear_state_cookie(response)
    raise response


async def sign_out(
    store: SessionStore, oidc: AdminOidc, session: ConsoleSession | None, log: logging.Logger
) -> None:
    """End the Keycloak session and the local one (the local one ends even when Keycloak fails)."""
    if session is None:
        return
    try:
        await oidc.logout(session.refresh_token)
    except Exception as exc:  # the local session ends anyway
        log.warning("Keycloak logout failed: %s", type(exc).__name__)
    await store.delete(session)


async def load_session(
    request: web.Request, store: SessionStore, oidc: AdminOidc, log: logging.Logger
) -> ConsoleSession | None:
    """The session of the cookie; refreshes the access token when it is about to expire (a
    failed refresh ends the session: the person signs in again)."""
    session = await store.get(request.cookies.get(store.cookie_name))
    if session is None:
        return None
    if session.access_expires_at - REFRESH_MARGIN > time.time():
        return session
    try:
        tokens = await oidc.refresh(session.refresh_token)
        identity = await request.config_dict[keys.AUTHENTICATOR].authenticate(
            tokens["access_token"]
        )
    except Exception as exc:  # any failure (Keycloak down, token refused) ends the session
        log.info("session ended: refresh failed (%s)", type(exc).__name__)
        await store.delete(session)
        return None
    session.update(identity, tokens)
    await store.save(session)
    return session


async def check_post(
    request: web.Request, session: ConsoleSession, form_types: frozenset[str]
) -> None:
    """A POST's CSRF token, from the header or (for `form_types` bodies) the form field;
    CsrfFailed (problem+json 403) when it is missing or wrong."""
    sent = request.headers.get(HEADER)
    if sent is None and request.content_type in form_types:
        value = (await request.post()).get(FIELD)
        sent = value if isinstance(value, str) else None
    check_csrf(session.csrf, sent)


def static_file(directory: Path, name: str, types: Mapping[str, str]) -> web.FileResponse:
    """`directory/name` when it is a plain file of one of `types` (suffix -> Content-Type)."""
    path = directory / name
    if "/" in name or name.startswith(".") or path.suffix not in types or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(
        path, headers={"Content-Type": types[path.suffix], "Cache-Control": "no-cache"}
    )


def render_page(
    request: web.Request, template: str, context: Mapping[str, Any], status: int = 200
) -> web.Response:
    """`template` rendered with `context` (the app's page context and the page's own)."""
    response = aiohttp_jinja2.render_template(template, request, context)
    response.set_status(status)
    return response
