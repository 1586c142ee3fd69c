"""The web app's pages. Each calls the service functions the API calls: search is the
Suggester's (GET /api/v1/search), an aid is read with the API's visibility check and the same
sanitising renderer (GET /api/v1/aids/{id}), mentors come from the pairings and the catalog as
suggest has them, questions and tips from the peer services, paths from server/paths."""

from __future__ import annotations

import asyncio
import json
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from auth.identity import Identity
from index.transcripts import Cue, TranscriptError, parse_transcript
from server import keys
from server.api.caller import audience_of
from server.api.public import readable_aid
from server.catalog import AidMeta
from server.console.csrf import safe_next
from server.errors import AidNotFound, InflowError, NotFound
from server.learn import signin
from server.learn.common import need, render, root
from server.learn.video import clock, video_at
from server.models import SLUG_RE
from server.paths import lrs, progress
from server.peer.pairings import mentor_by_id, my_mentors
from server.peer.people import person_key
from server.peer.questions import my_questions
from server.peer.tips import TipService
from server.websession import static_file

routes = web.RouteTableDef()
STATIC = Path(__file__).resolve().parent.parent / "static" / "learn"
STATIC_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
SEARCH_LIMIT = 20
MAX_CUES = 500


def _readable(request: web.Request, aid_id: str) -> AidMeta | None:
    try:
        return readable_aid(request.config_dict[keys.LIBRARY].catalog, aid_id, audience_of(request))
    except AidNotFound:
        return None


def _published(request: web.Request, ids: list[str] | tuple[str, ...]) -> list[AidMeta]:
    """The aids of `ids` the caller may read and that are published (lists show no drafts,
    even to admins, who may still open one by its link)."""
    found = (_readable(request, i) for i in ids)
    return [m for m in found if m is not None and m.status == "published"]


# -- home, search ---------------------------------------------------------------------------------


async def home(request: web.Request) -> web.Response:
    session, identity = need(request)
    recent_ids = await request.config_dict[keys.LEARN_SESSIONS].recent(session)
    return render(
        request,
        "home.html",
        {
            "title": "Home",
            "paths": await _my_paths(request, identity),
            "recent": _published(request, recent_ids),
            "apps": _app_choices(request),
        },
    )


routes.get("/learn/")(home)


@routes.get("/learn")
async def home_without_slash(request: web.Request) -> web.Response:
    """/learn is the home page's short name; the page itself is /learn/, inside the service
    worker's scope."""
    raise web.HTTPFound("/learn/")


def _app_choices(request: web.Request) -> list[tuple[str, str]]:
    catalog = request.config_dict[keys.LIBRARY].catalog
    return sorted(((a.id, a.name) for a in catalog.apps.values()), key=lambda p: p[1].lower())


@routes.get("/learn/search")
async def search(request: web.Request) -> web.Response:
    need(request)
    q = request.query.get("q", "").strip()
    app = request.query.get("app", "").strip()
    cursor = request.query.get("cursor") or None
    context: dict[str, Any] = {"title": "Search", "q": q, "app": app}
    context["apps"] = _app_choices(request)
    if app and not SLUG_RE.match(app):
        context["error"] = "Choose an app from the list."
        return render(request, "search.html", context, 422)
    if not q:
        return render(request, "search.html", context)
    try:
        result = await request.config_dict[keys.SUGGESTER].search(
            request.config_dict[keys.LIBRARY].catalog,
            q,
            app=app or None,
            aid_type=None,
            audience=audience_of(request),
            limit=SEARCH_LIMIT,
            cursor=cursor,
        )
    except InflowError as exc:
        return render(request, "search.html", {**context, "error": exc.detail}, exc.status)
    for hit in result["results"]:
        cue = hit.get("cue")
        if cue:
            hit["cue_href"] = video_at(cue.get("source") or "", cue["start"])
            hit["cue_time"] = clock(cue["start"])
    return render(request, "search.html", {**context, "result": result})


# -- apps and aids --------------------------------------------------------------------------------


@routes.get("/learn/apps")
async def apps(request: web.Request) -> web.Response:
    need(request)
    catalog = request.config_dict[keys.LIBRARY].catalog
    shown = []
    for app in sorted(catalog.apps.values(), key=lambda a: a.name.lower()):
        count = len(_published(request, catalog.app_aids.get(app.id, ())))
        shown.append({"app": app, "count": count})
    return render(request, "apps.html", {"title": "Apps", "apps": shown})


@routes.get("/learn/apps/{id}")
async def app_page(request: web.Request) -> web.Response:
    need(request)
    catalog = request.config_dict[keys.LIBRARY].catalog
    app = catalog.apps.get(request.match_info["id"])
    if app is None:
        raise NotFound(f"There is no app {request.match_info['id']!r}.")
    aids = _published(request, catalog.app_aids.get(app.id, ()))
    return render(request, "app.html", {"title": app.name, "app": app, "aids": aids})


def _cues(text: str) -> list[Cue]:
    try:
        return parse_transcript(text)[:MAX_CUES]
    except TranscriptError:  # stored before a stricter parser: no cue list
        return []


@routes.get("/learn/aids/{id}")
async def aid_page(request: web.Request) -> web.Response:
    session, identity = need(request)
    aid_id = request.match_info["id"]
    library = request.config_dict[keys.LIBRARY]
    meta = readable_aid(library.catalog, aid_id, audience_of(request))
    aid = await library.storage.get_aid(aid_id)
    body_html = await request.config_dict[keys.RENDERER].render(aid.body)
    cues: list[dict[str, Any]] = []
    if aid.type == "video" and aid.transcript:
        found = await asyncio.get_running_loop().run_in_executor(None, _cues, aid.transcript)
        cues = [
            {"time": clock(c.start), "href": video_at(aid.source, c.start), "text": c.text}
            for c in found
        ]
    await request.config_dict[keys.LEARN_SESSIONS].add_recent(session, aid_id)
    apps = [library.catalog.apps[a] for a in meta.apps if a in library.catalog.apps]
    return render(
        request,
        "aid.html",
        {
            "title": aid.title,
            "aid": aid,
            "body_html": body_html,  # sanitised by server/render.py, as for the panel: |safe
            "source_href": aid.source if re.match(r"https?://", aid.source or "") else "",
            "cues": cues,
            "apps": apps,
            "steps": await _steps_of_aid(request, identity, aid_id),
        },
    )


# -- people ---------------------------------------------------------------------------------------


def contact_href(contact: str) -> str:
    if re.match(r"https?://", contact):
        return contact
    if re.fullmatch(r"[^@\s]+@[^@\s]+", contact):
        return "mailto:" + quote(contact, safe="@.+-_")
    return ""


@routes.get("/learn/mentors")
async def mentors(request: web.Request) -> web.Response:
    """My mentors: those paired with me (server/peer/pairings.py my_mentors), then the vetted,
    active mentors of each app that I may see, as suggest lists them."""
    _, identity = need(request)
    catalog = request.config_dict[keys.LIBRARY].catalog
    audience = audience_of(request)
    groups = []
    for app in sorted(catalog.apps.values(), key=lambda a: a.name.lower()):
        paired = await my_mentors(root(request), identity, app.id)
        ids = {m["id"] for m in paired}
        listed = [
            {"id": m.id, "name": m.name, "contact": m.contact, "can_help_with": m.can_help_with}
            for m in catalog.app_mentors.get(app.id, ())
            if m.listed
            and m.visible_to(audience)
            and m.id not in ids
            and m.subject != identity.subject  # not oneself, as in suggest
        ]
        people = [*paired, *listed]
        for person in people:
            person["href"] = contact_href(str(person.get("contact") or ""))
        if people:
            groups.append({"app": app, "mentors": people})
    return render(request, "mentors.html", {"title": "Mentors", "groups": groups})


@routes.get("/learn/questions")
async def questions(request: web.Request) -> web.Response:
    _, identity = need(request)
    found = await my_questions(root(request), identity)
    return render(request, "questions.html", {"title": "My questions", "questions": found})


@routes.get("/learn/tips")
async def tips(request: web.Request) -> web.Response:
    _, identity = need(request)
    found = await TipService(root(request)).mine(identity)
    return render(request, "tips.html", {"title": "My tips", "tips": found})


# -- paths ----------------------------------------------------------------------------------------


async def _my_paths(request: web.Request, identity: Identity) -> list[dict[str, Any]]:
    """The caller's paths as GET /api/v1/paths/mine serves them (server/paths/progress.py)."""
    return await progress.my_paths(root(request), identity)


async def _steps_of_aid(
    request: web.Request, identity: Identity, aid_id: str
) -> list[dict[str, Any]]:
    """The steps of the caller's paths that are this aid: its page offers "Done" for them."""
    found = []
    for p in await _my_paths(request, identity):
        for step in p["steps"]:
            if step["kind"] == "aid" and step["aid_id"] == aid_id:
                found.append({**step, "path_id": p["path"]["id"], "path_title": p["path"]["title"]})
    return found


@routes.get("/learn/paths")
async def paths(request: web.Request) -> web.Response:
    _, identity = need(request)
    found = await _my_paths(request, identity)
    return render(request, "paths.html", {"title": "My paths", "paths": found})


async def _path_page(
    request: web.Request, identity: Identity, error: str = "", status: int = 200
) -> web.Response:
    app = root(request)
    standing = await progress.my_path(app, identity, request.match_info["id"])
    shown = await progress.standing_json(app, standing)
    catalog = request.config_dict[keys.LIBRARY].catalog
    for step in shown["steps"]:
        if step["kind"] == "aid":
            step["readable"] = _readable(request, step["aid_id"] or "") is not None
        elif step["kind"] == "mentor":
            mentor = mentor_by_id(catalog, step["mentor_id"]) if step["mentor_id"] else None
            app_of = catalog.apps.get(step["app_id"]) if step["app_id"] else None
            listed = mentor if mentor is not None and mentor.listed else None
            step["mentor"] = listed
            step["mentor_href"] = contact_href(listed.contact) if listed else ""
            step["app_name"] = app_of.name if app_of else ""
        elif step["kind"] == "course":
            step["safe_url"] = step["url"] if re.match(r"https?://", step["url"] or "") else ""
    context = {"title": shown["path"]["title"], "p": shown, "error": error}
    return render(request, "path.html", context, status)


@routes.get("/learn/paths/{id}")
async def path_page(request: web.Request) -> web.Response:
    _, identity = need(request)
    return await _path_page(request, identity)


@routes.post("/learn/paths/{id}/steps/{step}/done")
async def step_done(request: web.Request) -> web.StreamResponse:
    """A step's "Done" (aid, mentor) or a practice checklist sent: the learner API's
    mark_done, then back to the page the form was on."""
    _, identity = need(request)
    form = await request.post()
    path_id, step_id = request.match_info["id"], request.match_info["step"]
    data = {
        "how": str(form.get("how", "")),
        "checked": [str(v) for v in form.getall("checked", []) if isinstance(v, str)],
    }
    try:
        await progress.mark_done(root(request), identity, path_id, step_id, data)
    except InflowError as exc:
        if exc.status != 422:
            raise
        return await _path_page(request, identity, exc.detail, 422)
    default = f"/learn/paths/{quote(path_id)}"
    target = safe_next(str(form.get("back", "")), default)
    if not target.startswith("/learn/") or "?" in target or "#" in target:
        target = default
    raise web.HTTPSeeOther(f"{target}?notice=done#step-{quote(step_id)}")


@routes.post("/learn/paths/{id}/sync")
async def sync_path(request: web.Request) -> web.StreamResponse:
    """ "Check my course progress now": the learner API's sync (POST /api/v1/paths/mine/sync),
    with its per-person rate limit: the LRS is read for the caller, then back to the path."""
    _, identity = need(request)
    app = root(request)
    path_id = request.match_info["id"]
    buckets = app.get(keys.PATHS_SYNCS)
    wait = buckets.take(identity.key) if buckets is not None else 0.0
    if wait:
        message = f"Your progress was read a moment ago; try again in {max(1, math.ceil(wait))} s."
        return await _path_page(request, identity, message, 429)
    await progress.my_path(app, identity, path_id)  # 404 when not theirs; enrols a new learner
    result = await lrs.sync(app, person_key(app, identity))
    if result.errors:
        return await _path_page(
            request, identity, "Your course progress could not be read: " + result.errors[0], 503
        )
    notice = "synced" if result.ticked else "synced-none"
    raise web.HTTPSeeOther(f"/learn/paths/{quote(path_id)}?notice={notice}")


# -- the PWA: offline page, service worker, manifest, static files --------------------------------


@routes.get("/learn/offline")
async def offline(request: web.Request) -> web.Response:
    """The page the service worker shows for a page it has no copy of (no personal data: it
    is cached for everyone who uses this browser until sign-out)."""
    response = render(request, "offline.html", {"title": "Offline", "me": None})
    return response


MANIFEST = {
    "name": "Inflow",
    "short_name": "Inflow",
    "description": "Job aids, learning paths and mentors for your work apps.",
    "id": "/learn/",
    "start_url": "/learn/",
    "scope": "/learn/",
    "display": "standalone",
    "background_color": "#ffffff",
    "theme_color": "#1f5fbf",
    "icons": [
        {"src": "/learn/static/icon.svg", "sizes": "any", "type": "image/svg+xml"},
        {"src": "/learn/static/icon-192.png", "sizes": "192x192", "type": "image/png"},
        {"src": "/learn/static/icon-512.png", "sizes": "512x512", "type": "image/png"},
    ],
}


@routes.get("/learn/manifest.webmanifest")
async def manifest(request: web.Request) -> web.Response:
    return web.Response(
        text=json.dumps(MANIFEST, indent=2),
        content_type="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )


@routes.get("/learn/sw.js")
async def service_worker(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        STATIC / "sw.js",
        headers={"Content-Type": "text/javascript", "Cache-Control": "no-cache"},
    )


@routes.get("/learn/static/{name}")
async def static(request: web.Request) -> web.StreamResponse:
    return static_file(STATIC, request.match_info["name"], STATIC_TYPES)


async def no_such_page(request: web.Request) -> web.Response:
    raise NotFound(f"There is no page at {request.path}.")


def all_routes() -> list[web.AbstractRouteDef]:
    """Every route of the web app; last, what no route answers (the web app's 404 page)."""
    return [
        *signin.routes,
        *routes,
        web.route("GET", "/learn/{rest:.*}", no_such_page),
    ]
