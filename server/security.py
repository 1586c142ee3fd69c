"""Who may call what: the bearer-token middleware and the access decorators.

Secure by default: every handler under `/api/` needs a signed-in caller with an Inflow role
(`learner`, `author`, `admin`, `mentor`, `reviewer`, or the API client roles `api` / `api-write`)
unless it says otherwise:

    @public                      no token needed (a valid token is still identified)
    @requires_op("aid.create")   the roles server/permissions.py gives the operation
    @requires("author")          any of the roles named; `admin` always passes

The middleware only identifies the caller (`request[keys.IDENTITY]`) and enforces those marks;
everything else (what an identity may see) is the handlers' business. Paths outside `/api/`
(demo pages, static files, /healthz, /readyz, /admin with its own session login) and CORS
preflights pass through untouched. Tokens are never logged, only the refusal reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import hdrs, web

from auth.identity import Identity
from auth.service import AuthUnavailable, TokenAuthenticator
from auth.verifier import InvalidToken
from server import keys
from server.errors import problem
from server.permissions import ADMIN_ROLE, INFLOW_ROLES, roles_for

log = logging.getLogger("inflow.auth")

ACCESS_ATTR = "__inflow_access__"
# INFLOW_ROLES (any one lets a caller use undecorated API handlers) and ADMIN_ROLE live in
# server/permissions.py with the operation table.
# Handlers without a mark (class-based views, web.static) are public only under these paths.
PUBLIC_PREFIXES = ("/demo/", "/static/")
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/api/v1/openapi.json"})
REALM = "inflow"

_T = TypeVar("_T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Access:
    """What a handler asks of its caller; stored on the handler under `ACCESS_ATTR`."""

    public: bool = False
    roles: frozenset[str] = frozenset()  # empty: any Inflow role
    operation: str = ""  # the server/permissions.py operation, when marked with requires_op


PUBLIC = Access(public=True)
SIGNED_IN = Access()


def public(handler: _T) -> _T:
    """Mark a handler (function or class-based view) as open to anonymous callers."""
    setattr(handler, ACCESS_ATTR, PUBLIC)
    return handler


def requires(*roles: str) -> Callable[[_T], _T]:
    """Mark a handler as needing any one of `roles` (`admin` always passes)."""
    if not roles or not all(isinstance(r, str) and r for r in roles):
        raise ValueError("requires() needs at least one role name")
    access = Access(roles=frozenset(roles))

    def mark(handler: _T) -> _T:
        setattr(handler, ACCESS_ATTR, access)
        return handler

    return mark


def requires_op(operation: str) -> Callable[[_T], _T]:
    """Mark a handler as performing `operation`: the roles come from server/permissions.py."""
    access = Access(roles=roles_for(operation), operation=operation)

    def mark(handler: _T) -> _T:
        setattr(handler, ACCESS_ATTR, access)
        return handler

    return mark


def access_of(handler: Any, path: str) -> Access:
    """The access a matched handler asks for; unmarked means signed-in, except on public paths."""
    access = getattr(handler, ACCESS_ATTR, None)
    if isinstance(access, Access):
        return access
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return PUBLIC
    return SIGNED_IN


def allows(identity: Identity, access: Access) -> bool:
    roles = identity.roles
    if ADMIN_ROLE in roles:
        return True
    wanted = access.roles or INFLOW_ROLES
    return not roles.isdisjoint(wanted)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[keys.IDENTITY] = None
    if request.method == hdrs.METH_OPTIONS or not request.path.startswith("/api/"):
        return await handler(request)
    match_info = request.match_info
    if match_info.http_exception is not None:
        return await handler(request)  # 404 / 405: nothing to protect
    access = access_of(match_info.handler, request.path)
    token = _bearer_token(request)
    # config_dict: API routes may live in a sub-application; the authenticator hangs off the root.
    authenticator = request.config_dict[keys.AUTHENTICATOR]

    if access.public:
        if token:
            request[keys.IDENTITY] = await _try_identify(authenticator, token)
        return await handler(request)

    if token is None:
        return _unauthorized(None)
    if token == "":
        return _unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    try:
        identity = await authenticator.authenticate(token)
    except InvalidToken as exc:
        log.info("refused bearer token for %s %s: %s", request.method, request.path, exc.reason)
        return _unauthorized(exc.reason)
    except AuthUnavailable as exc:
        log.warning("cannot check bearer tokens: %s", exc.reason)
        return _problem(
            503,
            "Service Unavailable",
            f"authentication is unavailable: {exc.reason}",
            headers={hdrs.RETRY_AFTER: "10"},
        )
    request[keys.IDENTITY] = identity
    if not allows(identity, access):
        needed = sorted(access.roles or INFLOW_ROLES)
        detail = f"this needs the role {' or '.join(repr(r) for r in needed)}"
        challenge = (
            f'Bearer realm="{REALM}", error="insufficient_scope", '
            f'error_description="{_header_safe(detail)}"'
        )
        return _problem(
            403,
            "Forbidden",
            detail,
            headers={hdrs.WWW_AUTHENTICATE: challenge},
            extra={"required_roles": needed},
        )
    return await handler(request)


async def _try_identify(authenticator: TokenAuthenticator, token: str) -> Identity | None:
    try:
        return await authenticator.authenticate(token)
    except (InvalidToken, AuthUnavailable):
        return None


def _bearer_token(request: web.Request) -> str | None:
    """The bearer token; None when no Bearer credentials were sent, "" when malformed."""
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    if not value or " " in value:
        return ""
    return value


_UNSAFE = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def _header_safe(text: str, limit: int = 200) -> str:
    """RFC 6750 error_description characters only (no quotes, backslashes or controls)."""
    cleaned = _UNSAFE.sub("?", text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def _unauthorized(reason: str | None) -> web.Response:
    if reason is None:
        return _problem(
            401,
            "Unauthorized",
            "this needs a bearer token (Authorization: Bearer <access token>)",
            headers={hdrs.WWW_AUTHENTICATE: f'Bearer realm="{REALM}"'},
        )
    challenge = (
        f'Bearer realm="{REALM}", error="invalid_token", error_description="{_header_safe(reason)}"'
    )
    return _problem(401, "Unauthorized", reason, headers={hdrs.WWW_AUTHENTICATE: challenge})


def _problem(
    status: int,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> web.Response:
    slug = {401: "unauthorized", 403: "forbidden", 503: "auth-unavailable"}.get(status, "")
    return problem(status, title, detail, slug, headers=headers, **(extra or {}))


__all__ = [
    "ACCESS_ATTR",
    "ADMIN_ROLE",
    "INFLOW_ROLES",
    "Access",
    "access_of",
    "allows",
    "auth_middleware",
    "public",
    "requires",
    "requires_op",
]
