"""The panel's one request for peer learning: `POST /api/v1/peer/page` {url, title}.

It resolves the page as suggest does (`Catalog.resolve`) and answers, for this caller and this
page, everything the side panel shows (docs/peer.md "The panel"): approved tips, accepted answers
asked here, the caller's own questions, their paired mentors, mentors' recommendations, what the
panel may offer (`can`) and the name "show my name" shows (`me`). Each list comes from its
feature's module, which applies the audience and visibility rules; this module only assembles
them, so the panel and the feature APIs cannot disagree.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from auth.identity import Identity
from server import keys
from server.admin.openapi import _ok, _op
from server.api.caller import audience_of, identity_of
from server.api.validation import json_object, page_url, text_field
from server.catalog import Catalog
from server.errors import ValidationFailed
from server.models import App
from server.peer import people
from server.peer.pairings import my_mentors
from server.peer.questions import my_questions, page_answers
from server.peer.recommendations import page_recommendations
from server.peer.tips import may_moderate, page_tips
from server.permissions import may
from server.responses import json_response
from server.security import requires_op

routes = web.RouteTableDef()

# The page's title, as suggest takes it (server/models.py PageRequest: the same limit).
TITLE_MAX = 500


def abilities(identity: Identity, catalog: Catalog, app: App) -> dict[str, bool]:
    """What the panel offers this caller on a page of `app`. The features check again when the
    caller acts; this only keeps the panel from offering what would be refused."""
    roles = identity.roles
    mentor = people.mentor_of(identity, catalog) if may(roles, "question.answer") else None
    mentors_app = mentor is not None and app.id in mentor.apps
    recommender = people.mentor_of(identity, catalog) if may(roles, "aid.recommend") else None
    endorser = people.mentor_of(identity, catalog) if may(roles, "tip.endorse") else None
    flagger = people.mentor_of(identity, catalog) if may(roles, "aid.flag") else None
    return {
        "tip": may(roles, "tip.write"),
        "ask": may(roles, "question.ask"),
        # Vetted mentors of the app answer; so do its owners, whatever their roles.
        "answer": mentors_app or people.owns_app(identity, app),
        "moderate": may_moderate(identity, app),
        "recommend": recommender is not None and app.id in recommender.apps,
        # Vetted mentors of the app endorse its approved tips and flag its aids.
        "endorse": endorser is not None and app.id in endorser.apps,
        "flag": flagger is not None and app.id in flagger.apps,
        # Mentors see their mentees (GET /api/v1/peer/mentees).
        "mentees": may(roles, "mentee.read") and people.mentor_of(identity, catalog) is not None,
    }


@routes.post("/api/v1/peer/page")
@requires_op("peer.read")
async def peer_page(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    data = await json_object(request, {"url", "title"}, {"url"})
    url = page_url(data.get("url"), settings.max_url_bytes)
    title = text_field(data, "title", TITLE_MAX)
    identity = identity_of(request)
    assert identity is not None  # requires_op: signed in
    catalog = request.app[keys.LIBRARY].catalog
    place = catalog.resolve(url, title or None)
    app = place.app
    if app is None:
        raise ValidationFailed(
            "This page is not a mapped app: Inflow knows no app at this URL.",
            fields=["url"],
            errors=[{"field": "url", "message": "not a mapped app"}],
        )
    context = place.contexts[0] if place.contexts else None
    context_id = context.id if context else ""
    mentor = people.mentor_of(identity, catalog)
    tags = audience_of(request)  # None: an admin sees every audience
    tips, answers, mine, mentors, recs = await asyncio.gather(
        page_tips(request.app, identity, app.id, context_id, tags),
        page_answers(request.app, identity, app.id, context_id, tags),
        my_questions(request.app, identity, app.id),
        my_mentors(request.app, identity, app.id),
        page_recommendations(request.app, identity, app.id, context_id, tags),
    )
    body: dict[str, Any] = {
        "app": {"id": app.id, "name": app.name},
        "context": {"id": context.id, "name": context.name} if context else None,
        "tips": tips,
        "answers": answers,
        "my_questions": mine,
        "my_mentors": mentors,
        "recommendations": recs,
        "can": abilities(identity, catalog, app),
        # The name "show my name" would show (the `name` claim, else the username).
        # The caller's mentor id ("" when none): the panel says "Endorsed by you" by it.
        "me": {"name": people.display_name(identity), "mentor_id": mentor.id if mentor else ""},
    }
    return json_response(body, headers={"Cache-Control": "private, no-store"})


_LIST = {"type": "array", "items": {"type": "object"}}
_PLACE = {
    "type": "object",
    "required": ["id", "name"],
    "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
}
_CAN = ("tip", "ask", "answer", "moderate", "recommend", "endorse", "flag", "mentees")


def page_paths() -> dict[str, Any]:
    """This module's part of the OpenAPI document (merged by server/openapi.py)."""
    request = {
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "format": "uri", "description": "The page's URL"},
            "title": {"type": "string", "maxLength": TITLE_MAX},
        },
    }
    response = {
        "type": "object",
        "required": [
            "app",
            "context",
            "tips",
            "answers",
            "my_questions",
            "my_mentors",
            "recommendations",
            "can",
            "me",
        ],
        "properties": {
            "app": _PLACE,
            "context": {**_PLACE, "type": ["object", "null"]},
            "tips": {**_LIST, "description": "Approved tips the caller may see (page_tips)"},
            "answers": {**_LIST, "description": "Accepted answers to questions asked here"},
            "my_questions": {**_LIST, "description": "The caller's questions of this app"},
            "my_mentors": {**_LIST, "description": "The caller's paired mentors for this app"},
            "recommendations": {**_LIST, "description": "Aids mentors recommend here"},
            "can": {
                "type": "object",
                "required": list(_CAN),
                "properties": {k: {"type": "boolean"} for k in _CAN},
                "description": "What the panel offers this caller on this page",
            },
            "me": {
                "type": "object",
                "required": ["name", "mentor_id"],
                "properties": {"name": {"type": "string"}, "mentor_id": {"type": "string"}},
                "description": "The name shown when the caller ticks 'show my name', and the "
                "caller's mentor id ('' when none)",
            },
        },
    }
    op = _op(
        "Peer learning on a page, for the side panel: tips, answers, my questions, my mentors, "
        "recommendations and what the panel offers",
        "peer.read",
        body=request,
        response=_ok(schema=response),
        errors=(400, 401, 403, 413, 422),
        note=" A page of no mapped app: 422.",
    )
    op["tags"] = ["peer"]
    return {"/api/v1/peer/page": {"post": op}}


__all__ = ["abilities", "page_paths", "peer_page", "routes"]
