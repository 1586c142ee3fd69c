"""Peer learning as xAPI: asked, answered, shared a tip, endorsed (docs/xapi-profile.md).

The feature modules call `record(app, verb, identity, obj)` once the action is stored. It builds
one xAPI statement and queues it in the analytics outbox (the events database), which the existing
forwarder (server/analytics/outbox.py) delivers to the LRS with its retries and dead letters.
Nothing is queued when no LRS is configured.

Why no analytics *event* as well: the peer tables are the source of truth for the peer figures
(server/peer/stats.py reads them), and an event in the events store would also count its person as
an "active learner" of the adoption report (a mentor answering is not a learner using the panel).

Statements carry no text people wrote (no tip, question or answer body) and no name: the actor is
the analytics pseudonym, the object a tip or question activity under `{base}/xapi/activities`.
A statement's id is derived from the action (uuid5 of the verb and the object's id), and its
timestamp is the object's own, so recording the same action twice queues it once, and a resend
after delivery is the very same statement, which the LRS takes as a duplicate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from auth.identity import Identity
from server import keys
from server.analytics.store import EventStore
from server.analytics.xapi import LANG, StatementBuilder
from server.db import events_tables as t

log = logging.getLogger("inflow.peer.activity")

ASKED = "asked"
ANSWERED = "answered"
SHARED = "shared"  # shared a tip
ENDORSED = "endorsed"
# the four verbs of the peer loop; "shared a tip" is accepted as another name of "shared"
VERBS = (ASKED, ANSWERED, SHARED, ENDORSED)
_ALIASES = {"shared a tip": SHARED, "shared_tip": SHARED, "tip_shared": SHARED}

# ADL has asked, answered and shared; no registered vocabulary has "endorsed" (vouching for
# a colleague's tip), so it is Inflow's own verb, minted under the server's base like the
# activities and extensions are.
ADL = "http://adlnet.gov/expapi/verbs"
VERB_IRIS = {ASKED: f"{ADL}/asked", ANSWERED: f"{ADL}/answered", SHARED: f"{ADL}/shared"}
TYPE_QUESTION = "http://activitystrea.ms/schema/1.0/question"
TYPE_TIP = "http://activitystrea.ms/schema/1.0/note"
TYPE_ANSWER = "http://activitystrea.ms/schema/1.0/comment"
# statement ids: uuid5 in Inflow's namespace of "<base>|<verb>|<object id>"
NAMESPACE = uuid.UUID("6f1c0e5a-3b7d-4d2e-9a41-0c5e8b7f2d13")

__all__ = ["ANSWERED", "ASKED", "ENDORSED", "SHARED", "VERBS", "record", "statement"]


class UnknownVerb(ValueError):
    """A verb that is not one of VERBS: a typo must fail loudly in the tests of its caller."""


def _as_dict(obj: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"record() takes a peer resource or its dict, not {type(obj).__name__}")


def _timestamp(value: Any) -> dt.datetime:
    """The action's time from the object (ISO-8601), else now; always UTC."""
    if isinstance(value, str) and value:
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None:
            return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    return dt.datetime.now(dt.UTC)


def _iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _flatten(verb: str, obj: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the object the statement is about, the answer for `answered`). An answer is given as
    `{"answer": ..., "question": ...}`, or as the answer's fields with the question's
    `app_id` and `context_id` added."""
    if verb == ANSWERED:
        if "answer" in obj:
            answer = _as_dict(obj["answer"])
            question = _as_dict(obj.get("question") or {})
        else:
            answer = obj
            question = {}
        question = {
            "id": question.get("id") or answer.get("question_id", ""),
            "app_id": question.get("app_id") or answer.get("app_id", ""),
            "context_id": question.get("context_id") or answer.get("context_id", ""),
        }
        return question, answer
    return obj, {}


def statement(
    builder: StatementBuilder, verb: str, pseudonym: str, obj: Mapping[str, Any] | Any
) -> dict[str, Any]:
    """The xAPI statement of one peer action (a pure function of its arguments)."""
    verb = _ALIASES.get(verb, verb)
    if verb not in VERBS:
        raise UnknownVerb(f"unknown peer verb {verb!r}; verbs: {', '.join(VERBS)}")
    target, answer = _flatten(verb, _as_dict(obj))
    app_id = str(target.get("app_id") or "")
    context_id = str(target.get("context_id") or "")
    place = (
        builder.page(app_id, context_id) if context_id else builder.app(app_id) if app_id else {}
    )
    where = place.get("definition", {}).get("name", {}).get(LANG, "")
    kind, type_, noun = (
        ("tip", TYPE_TIP, "Tip")
        if verb in {SHARED, ENDORSED}
        else ("question", TYPE_QUESTION, "Question")
    )
    object_id = str(target.get("id") or "")
    activity: dict[str, Any] = {
        "objectType": "Activity",
        "id": builder.activity(kind, object_id),
        "definition": {"type": type_, "name": {LANG: f"{noun} on {where}" if where else noun}},
    }
    result: dict[str, Any] | None = None
    context: dict[str, Any] = {"platform": "Inflow"}
    if verb in {ASKED, SHARED}:  # once per question or tip, when it was written
        when = _timestamp(target.get("created_at"))
        key = object_id
    elif verb == ENDORSED:
        when = _timestamp(target.get("endorsed_at"))
        key = f"{object_id}|{target.get('endorsed_by', '')}|{_iso(when)}"
        if target.get("endorsed_by"):
            context["extensions"] = {f"{builder.ext}/mentor": str(target["endorsed_by"])}
    else:  # answered: the object is the question, the answer is told in the result
        when = _timestamp(answer.get("created_at"))
        key = str(answer.get("id") or "")
        result = {"extensions": {f"{builder.ext}/answer": builder.activity("answer", key)}}
        context["extensions"] = {
            f"{builder.ext}/answered-as": "mentor" if answer.get("mentor_id") else "owner"
        }
    activities: dict[str, list[dict[str, Any]]] = {}
    if app_id:
        activities["grouping"] = [builder.app(app_id)]
        if context_id:
            activities["parent"] = [builder.page(app_id, context_id)]
    if activities:
        context["contextActivities"] = activities
    verb_iri = VERB_IRIS.get(verb) or f"{builder.base}/xapi/verbs/{verb}"
    out: dict[str, Any] = {
        "id": str(uuid.uuid5(NAMESPACE, f"{builder.base}|{verb}|{key}")),
        "actor": {"objectType": "Agent", "account": {"homePage": builder.base, "name": pseudonym}},
        "verb": {"id": verb_iri, "display": {LANG: verb}},
        "object": activity,
        "context": context,
        "timestamp": _iso(when),
    }
    if result is not None:
        out["result"] = result
    return out


def _queue_sync(store: EventStore, event_id: str, day: str, body: str) -> int:
    """Add one statement to the outbox (writer thread; one statement, so its own transaction).
    An id already waiting is left alone: the same action recorded twice is sent once."""
    conn = store.writer
    return int(
        conn.execute(
            t.insert_ignore(conn.dialect, t.outbox),
            {"event_id": event_id, "day": day, "statement": body},
        ).rowcount
        or 0
    )


async def record(app: web.Application, verb: str, identity: Identity, obj: Any) -> bool:
    """Queue the xAPI statement of a peer action done by `identity` (True when one was queued).

    `obj` is the resource the action is about, as stored (the dataclass or its dict):
    `asked` the question, `shared` the tip, `endorsed` the tip once endorsed (with `endorsed_by`
    and `endorsed_at`), `answered` `{"answer": answer, "question": question}`.
    Nothing happens without an LRS. A failure is logged, never raised: the action is done."""
    verb = _ALIASES.get(verb, verb)
    if verb not in VERBS:
        raise UnknownVerb(f"unknown peer verb {verb!r}; verbs: {', '.join(VERBS)}")
    analytics = app.get(keys.ANALYTICS)
    if analytics is None or analytics.builder is None:
        return False
    try:
        pseudonym = analytics.pseudonym(identity.issuer, identity.subject)
        st = statement(analytics.builder, verb, pseudonym, obj)
        body = json.dumps(st, separators=(",", ":"), ensure_ascii=False)
        queued = await analytics.store.write(
            _queue_sync, analytics.store, st["id"], st["timestamp"][:10], body
        )
    except (sa.exc.SQLAlchemyError, OSError, TypeError, ValueError):
        log.exception("could not queue the xAPI statement of a peer action (%s)", verb)
        return False
    if queued and analytics.forwarder is not None:
        analytics.forwarder.notify()
    return bool(queued)
