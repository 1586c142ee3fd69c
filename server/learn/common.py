"""What every web app page shares: the session, the signed-in person, rendering."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from auth.identity import Identity
from server import keys
from server.console.csrf import FIELD
from server.console.session import ConsoleSession
from server.websession import render_page

# The home page: /learn/, inside the service worker's scope (/learn/), which /learn is not.
HOME = "/learn/"
NOTICES = {
    "done": "Marked done.",
    "synced": "Your course progress was read from the learning system.",
    "synced-none": "Checked: the learning system reports no newly completed course.",
    "signed-out": "You are signed out.",
}
# The main navigation: (path, label).
NAV = (
    (HOME, "Home"),
    ("/learn/search", "Search"),
    ("/learn/apps", "Apps"),
    ("/learn/paths", "Paths"),
    ("/learn/mentors", "Mentors"),
    ("/learn/questions", "Questions"),
    ("/learn/tips", "Tips"),
)


def session_of(request: web.Request) -> ConsoleSession | None:
    return request.get(keys.LEARN_SESSION)


def root(request: web.Request) -> web.Application:
    """The root app: the services (peer learning, paths) take it."""
    return request.config_dict[keys.LEARN_ROOT_APP]


def current(path: str, link: str) -> bool:
    return path == link or (link != HOME and path.startswith(link + "/"))


def page_context(request: web.Request) -> dict[str, Any]:
    session = session_of(request)
    return {
        "me": session.identity() if session else None,
        "csrf_field": FIELD,
        "csrf_token": session.csrf if session else "",
        "notice": NOTICES.get(request.query.get("notice", "")),
        "path": request.path,
        "nav": [(link, label, current(request.path, link)) for link, label in NAV],
    }


def need(request: web.Request) -> tuple[ConsoleSession, Identity]:
    """The session and its identity, or a redirect to sign in (back here afterwards)."""
    session = session_of(request)
    if session is None:
        target = request.path_qs if request.method == "GET" else HOME
        raise web.HTTPSeeOther(f"/learn/login?{urlencode({'next': target})}")
    return session, session.identity()


def render(
    request: web.Request, template: str, context: Mapping[str, Any], status: int = 200
) -> web.Response:
    return render_page(request, f"learn/{template}", {**page_context(request), **context}, status)
