"""Server-side console sessions and pending sign-ins, kept in SQLite (table `admin_sessions`).

The browser holds only a random session id (256 bits) in a cookie; the database stores its SHA-256,
so a copy of the database lets nobody hijack a session. The session keeps the identity, the tokens
(the refresh token never leaves the server) and the CSRF token of the session.

Cookie: `__Host-inflow_session` (HttpOnly, SameSite=Lax, Path=/, Secure) when the server runs on
https; in plain-http development browsers refuse `__Host-` cookies without Secure, so the name is
`inflow_session` without Secure (settings.admin_cookie_secure, docs/admin.md).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from auth.identity import Identity
from server.settings import Settings
from server.storage import Storage

SECURE_COOKIE = "__Host-inflow_session"
DEV_COOKIE = "inflow_session"
LOGIN_SECONDS = 600


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class ConsoleSession:
    key_hash: str
    issuer: str
    subject: str
    username: str
    roles: list[str]
    groups: list[str]
    client_id: str
    access_token: str
    refresh_token: str
    id_token: str
    access_expires_at: float
    csrf: str
    expires_at: float
    created_at: float = field(default_factory=time.time)
    email: str = ""  # the token's claims (peer learning: app owners, display names)
    name: str = ""

    def identity(self) -> Identity:
        return Identity(
            issuer=self.issuer,
            subject=self.subject,
            username=self.username or None,
            roles=frozenset(self.roles),
            groups=frozenset(self.groups),
            client_id=self.client_id or None,
            expires_at=self.access_expires_at,
            email=self.email or None,
            name=self.name or None,
        )

    def update(self, identity: Identity, tokens: dict[str, Any]) -> None:
        self.issuer, self.subject = identity.issuer, identity.subject
        self.username = identity.username or ""
        self.roles, self.groups = sorted(identity.roles), sorted(identity.groups)
        self.client_id = identity.client_id or ""
        self.email, self.name = identity.email or "", identity.name or ""
        self.access_token = str(tokens.get("access_token", ""))
        self.refresh_token = str(tokens.get("refresh_token", self.refresh_token))
        self.id_token = str(tokens.get("id_token", self.id_token))
        self.access_expires_at = identity.expires_at


class SessionStore:
    """The console's sessions; a subclass changes the cookies, row kinds and callback path (the
    learner web app's, server/learn/session.py), so one app's session never opens the other."""

    secure_cookie = SECURE_COOKIE
    dev_cookie = DEV_COOKIE
    session_kind = "session"
    login_kind = "login"
    # Binds a pending sign-in to the browser that started it; sent only to the callback.
    state_cookie = "inflow_login_state"
    callback_path = "/admin/callback"

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.storage = storage
        self.settings = settings

    @property
    def secure(self) -> bool:
        return self.settings.admin_cookie_is_secure

    @property
    def cookie_name(self) -> str:
        return self.secure_cookie if self.secure else self.dev_cookie

    @property
    def lifetime(self) -> float:
        return self.settings.admin_session_hours * 3600.0

    async def create(
        self, identity: Identity, tokens: dict[str, Any]
    ) -> tuple[str, ConsoleSession]:
        sid = secrets.token_urlsafe(32)
        now = time.time()
        session = ConsoleSession(
            key_hash=_hash(sid),
            issuer="",
            subject="",
            username="",
            roles=[],
            groups=[],
            client_id="",
            access_token="",
            refresh_token="",
            id_token="",
            access_expires_at=0.0,
            csrf=secrets.token_urlsafe(32),
            expires_at=now + self.lifetime,
        )
        session.update(identity, tokens)
        await self.save(session)
        await self.storage.call(self.storage.kv_purge_sync, now)
        return sid, session

    async def save(self, session: ConsoleSession) -> None:
        await self.storage.call(
            self.storage.kv_put_sync,
            session.key_hash,
            self.session_kind,
            json.dumps(asdict(session)),
            session.expires_at,
        )

    async def get(self, sid: str | None) -> ConsoleSession | None:
        if not sid or len(sid) > 100:
            return None
        raw = await self.storage.call(
            self.storage.kv_get_sync, _hash(sid), self.session_kind, time.time()
        )
        if raw is None:
            return None
        try:
            return ConsoleSession(**json.loads(raw))
        except (TypeError, ValueError):
            return None

    async def delete(self, session: ConsoleSession) -> None:
        await self.storage.call(
            self.storage.kv_pop_sync, session.key_hash, self.session_kind, time.time()
        )

    # -- pending sign-ins: state -> PKCE verifier, nonce, next --------------------------------
    async def start_login(self, data: dict[str, str]) -> str:
        state = secrets.token_urlsafe(32)
        await self.storage.call(
            self.storage.kv_put_sync,
            _hash(state),
            self.login_kind,
            json.dumps(data),
            time.time() + LOGIN_SECONDS,
        )
        return state

    async def finish_login(self, state: str) -> dict[str, str] | None:
        """The pending sign-in for `state`, once (it is deleted as it is read)."""
        if not state or len(state) > 100:
            return None
        raw = await self.storage.call(
            self.storage.kv_pop_sync, _hash(state), self.login_kind, time.time()
        )
        if raw is None:
            return None
        data: dict[str, str] = json.loads(raw)
        return data

    # -- cookies ------------------------------------------------------------------------------
    def set_cookie(self, response: web.StreamResponse, sid: str) -> None:
        response.set_cookie(
            self.cookie_name,
            sid,
            max_age=int(self.lifetime),
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="Lax",
        )

    def clear_cookie(self, response: web.StreamResponse) -> None:
        response.del_cookie(
            self.cookie_name, path="/", secure=self.secure, httponly=True, samesite="Lax"
        )

    def set_state_cookie(self, response: web.StreamResponse, state: str) -> None:
        response.set_cookie(
            self.state_cookie,
            state,
            max_age=LOGIN_SECONDS,
            path=self.callback_path,
            httponly=True,
            samesite="Lax",
            secure=self.secure,
        )

    def clear_state_cookie(self, response: web.StreamResponse) -> None:
        response.del_cookie(self.state_cookie, path=self.callback_path)
