"""The learner web app's sessions and Keycloak sign-in: the console's machinery
(server/console/session.py, oidc.py) with the web app's own cookie, its own kinds of stored rows
and its own redirect URI, so a /learn session is never a console session (or the reverse).

Cookie: `__Host-inflow-learn` (HttpOnly, SameSite=Lax, Path=/, Secure) on https, `inflow-learn`
in plain-http development (browsers refuse `__Host-` cookies without Secure). The browser holds a
random id; the database keeps its SHA-256, the identity and the tokens (docs/learn.md).

Besides the session, each session keeps the ids of the aids last read in it ("Recently read" on
the home page), in a row of its own that ends with the session or at sign-out.
"""

from __future__ import annotations

import hashlib
import json
import time

from server.console.oidc import AdminOidc
from server.console.session import ConsoleSession, SessionStore
from server.settings import Settings

SECURE_COOKIE = "__Host-inflow-learn"
DEV_COOKIE = "inflow-learn"
STATE_COOKIE = "inflow_learn_state"
SESSION_KIND = "learn-session"
LOGIN_KIND = "learn-login"
RECENT_KIND = "learn-recent"
RECENT_MAX = 10


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class LearnOidc(AdminOidc):
    """The confidential client `inflow-admin`, returning to /learn/callback (a redirect URI of
    its own in the realm: auth/realm-inflow.json)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.redirect_uri = f"{settings.base_url.rstrip('/')}/learn/callback"


class LearnSessionStore(SessionStore):
    """SessionStore with the web app's cookies, row kinds and callback; its sessions also keep
    the recently read aids."""

    secure_cookie = SECURE_COOKIE
    dev_cookie = DEV_COOKIE
    session_kind = SESSION_KIND
    login_kind = LOGIN_KIND
    state_cookie = STATE_COOKIE
    callback_path = "/learn/callback"

    async def delete(self, session: ConsoleSession) -> None:
        await super().delete(session)
        await self.storage.call(
            self.storage.kv_pop_sync, _hash(session.key_hash + ":recent"), RECENT_KIND, time.time()
        )

    # -- recently read -----------------------------------------------------------------------
    async def recent(self, session: ConsoleSession) -> list[str]:
        raw = await self.storage.call(
            self.storage.kv_get_sync, _hash(session.key_hash + ":recent"), RECENT_KIND, time.time()
        )
        try:
            found = json.loads(raw) if raw else []
        except ValueError:
            return []
        return [str(x) for x in found][:RECENT_MAX] if isinstance(found, list) else []

    async def add_recent(self, session: ConsoleSession, aid_id: str) -> None:
        ids = [aid_id, *(x for x in await self.recent(session) if x != aid_id)][:RECENT_MAX]
        await self.storage.call(
            self.storage.kv_put_sync,
            _hash(session.key_hash + ":recent"),
            RECENT_KIND,
            json.dumps(ids),
            session.expires_at,
        )
