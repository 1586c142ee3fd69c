"""xAPI 1.0.3 statements from analytics events (the profile is docs/xapi-profile.md).

A statement is built once, when its event is stored, and kept as JSON in the outbox: a retry
sends the very same bytes, and its id is the event's UUID, so the LRS stores it once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from server.analytics.events import Event

XAPI_VERSION = "1.0.3"
LANG = "en-US"

VERBS: dict[str, tuple[str, str]] = {
    "panel_opened": ("http://adlnet.gov/expapi/verbs/launched", "launched"),
    "suggestions_shown": ("http://id.tincanapi.com/verb/viewed", "viewed"),
    "aid_opened": ("http://adlnet.gov/expapi/verbs/experienced", "experienced"),
    "aid_rated": ("http://id.tincanapi.com/verb/rated", "rated"),
    "search": ("https://w3id.org/xapi/acrossx/verbs/searched", "searched"),
    "link_followed": ("http://adlnet.gov/expapi/verbs/launched", "launched"),
    "signed_in": ("https://w3id.org/xapi/adl/verbs/logged-in", "logged in"),
}

TYPE_APPLICATION = "http://activitystrea.ms/schema/1.0/application"
TYPE_PAGE = "http://activitystrea.ms/schema/1.0/page"
TYPE_AID = "http://id.tincanapi.com/activitytype/resource"
TYPE_LINK = "http://adlnet.gov/expapi/activities/link"
TYPE_INTERACTION = "http://adlnet.gov/expapi/activities/interaction"


class StatementBuilder:
    """Statements for one server: activity ids live under `base_url`."""

    def __init__(
        self,
        base_url: str,
        app_name: Callable[[str], str | None],
        context_name: Callable[[str], str | None],
        aid_title: Callable[[str], str | None],
    ) -> None:
        self.base = base_url.rstrip("/")
        self.root = f"{self.base}/xapi/activities"
        self.ext = f"{self.base}/xapi/extensions"
        self._app_name = app_name
        self._context_name = context_name
        self._aid_title = aid_title

    def activity(self, kind: str, ident: str = "") -> str:
        return f"{self.root}/{kind}/{ident}" if ident else f"{self.root}/{kind}"

    def _act(self, aid_id: str, type_: str, name: str | None) -> dict[str, Any]:
        definition: dict[str, Any] = {"type": type_}
        if name:
            definition["name"] = {LANG: name}
        return {"objectType": "Activity", "id": aid_id, "definition": definition}

    def aid(self, aid_id: str) -> dict[str, Any]:
        return self._act(self.activity("aid", aid_id), TYPE_AID, self._aid_title(aid_id) or aid_id)

    def app(self, app_id: str) -> dict[str, Any]:
        return self._act(
            self.activity("app", app_id), TYPE_APPLICATION, self._app_name(app_id) or app_id
        )

    def page(self, app_id: str, context_id: str) -> dict[str, Any]:
        return self._act(
            self.activity("app", f"{app_id}/context/{context_id}"),
            TYPE_PAGE,
            self._context_name(context_id) or context_id,
        )

    def statement(self, e: Event, pseudonym: str) -> dict[str, Any]:
        verb_id, verb_name = VERBS[e.type]
        obj: dict[str, Any]
        result: dict[str, Any] | None = None
        if e.type in {"aid_opened", "aid_rated"}:
            obj = self.aid(e.aid)
        elif e.type == "panel_opened":
            obj = self._act(self.activity("panel"), TYPE_APPLICATION, "Inflow help panel")
        elif e.type == "suggestions_shown":
            obj = self._act(self.activity("suggestions"), TYPE_INTERACTION, "Suggested aids")
            result = {"extensions": {f"{self.ext}/aids": [self.activity("aid", a) for a in e.aids]}}
        elif e.type == "search":
            obj = self._act(self.activity("search"), TYPE_INTERACTION, "Inflow search")
            result = {
                "response": e.query,
                "extensions": {f"{self.ext}/result-count": e.result_count or 0},
            }
        elif e.type == "link_followed":
            obj = self._act(self.activity("link", e.url_host), TYPE_LINK, e.url_host)
        else:  # signed_in
            obj = self._act(self.activity("inflow"), TYPE_APPLICATION, "Inflow")
        if e.type == "aid_rated":
            result = {
                "success": bool(e.helpful),
                "score": {
                    "scaled": 1 if e.helpful else 0,
                    "raw": 1 if e.helpful else 0,
                    "min": 0,
                    "max": 1,
                },
            }
            if e.comment:
                result["response"] = e.comment
        context: dict[str, Any] = {"platform": "Inflow"}
        activities: dict[str, list[dict[str, Any]]] = {}
        if e.app:
            activities["grouping"] = [self.app(e.app)]
            if e.context:
                activities["parent"] = [self.page(e.app, e.context)]
        if e.type == "link_followed" and e.aid:
            activities.setdefault("other", []).append(self.aid(e.aid))
        if activities:
            context["contextActivities"] = activities
        statement: dict[str, Any] = {
            "id": e.id,
            "actor": {
                "objectType": "Agent",
                "account": {"homePage": self.base, "name": pseudonym},
            },
            "verb": {"id": verb_id, "display": {LANG: verb_name}},
            "object": obj,
            "context": context,
            "timestamp": e.at_iso,
        }
        if result is not None:
            statement["result"] = result
        return statement

    def statement_json(self, e: Event, pseudonym: str) -> str:
        return json.dumps(self.statement(e, pseudonym), separators=(",", ":"), ensure_ascii=False)
