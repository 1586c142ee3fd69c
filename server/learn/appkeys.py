"""The learner web app's typed keys. They live here rather than in server/keys.py because the
web app is one self-contained part (server/learn) mounted by one line in server/app.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from server.console.session import ConsoleSession
    from server.learn.session import LearnOidc, LearnSessionStore

# On the root app, opened and closed by learn_ctx.
LEARN_SESSIONS: web.AppKey[LearnSessionStore] = web.AppKey("learn_sessions")
LEARN_OIDC: web.AppKey[LearnOidc] = web.AppKey("learn_oidc")
# On the /learn sub-app: the root app, whose services take a web.Application.
ROOT_APP: web.AppKey[web.Application] = web.AppKey("learn_root_app")
# Request key: the web app session of this request, if any.
LEARN_SESSION: web.RequestKey[ConsoleSession | None] = web.RequestKey("learn_session")

__all__ = ["LEARN_OIDC", "LEARN_SESSION", "LEARN_SESSIONS", "ROOT_APP"]
