"""The peer loop as xAPI (asked, answered, shared a tip, endorsed) reaching a real LRS (ralph).

Statements go through the analytics outbox and its forwarder, like the events' statements
(tests/test_analytics_xapi.py has the LRS fixture); they are read back through ralph's xAPI API.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from auth.identity import Identity
from server import keys
from server.app import create_app
from server.peer import activity
from server.settings import Settings
from tests.test_analytics_xapi import (
    IGNORED,
    Ralph,
    _free_port,
    lrs_settings,
    ralph,
    wait_drained,
)
from tests.tokens import ISSUER

__all__ = ["ralph"]  # the LRS fixture, shared with tests/test_analytics_xapi.py


def _who(subject: str, *roles: str) -> Identity:
    return Identity(
        issuer=ISSUER,
        subject=subject,
        username=subject,
        roles=frozenset(roles or ("learner",)),
        groups=frozenset(),
        client_id="inflow-test",
        expires_at=time.time() + 300,
    )


QUESTION = {
    "id": "q-Xa81bc2d",
    "app_id": "crm",
    "context_id": "crm-opportunity-new",
    "body": "Which close date do I enter for a renewal? SECRET-QUESTION-TEXT",
    "asker_key": "k",
    "status": "open",
    "created_at": "2026-11-30T09:15:02+00:00",
}
ANSWER = {
    "id": "a-7Yc00d1e",
    "question_id": QUESTION["id"],
    "body": "The renewal date of the contract. SECRET-ANSWER-TEXT",
    "mentor_id": "maria-lopez",
    "created_at": "2026-11-30T10:01:30+00:00",
}
TIP = {
    "id": "t-Q0p9z8y7",
    "app_id": "expenses",
    "context_id": "",
    "body": "Photograph the receipt flat. SECRET-TIP-TEXT",
    "status": "approved",
    "endorsed_by": "ana-costa",
    "endorsed_at": "2026-11-30T11:00:00+00:00",
    "created_at": "2026-11-29T16:40:00+00:00",
}


async def test_each_peer_verb_reaches_the_lrs_as_built(
    aiohttp_client: Any, make_settings: Callable[..., Settings], ralph: Ralph
) -> None:
    settings = lrs_settings(make_settings, ralph.url)
    client = await aiohttp_client(create_app(settings))
    app = client.server.app
    learner, mentor = _who("peer-xapi-learner"), _who("peer-xapi-mentor", "mentor")
    actions = [
        (activity.ASKED, learner, QUESTION),
        (activity.ANSWERED, mentor, {"answer": ANSWER, "question": QUESTION}),
        ("shared a tip", learner, TIP),
        (activity.ENDORSED, mentor, TIP),
    ]
    for verb, who, obj in actions:
        assert await activity.record(app, verb, who, obj) is True
    await wait_drained(app)

    analytics = app[keys.ANALYTICS]
    assert analytics.builder is not None
    lrs = await asyncio.to_thread(ralph.statements)
    base = settings.base_url.rstrip("/")
    seen = {}
    for verb, who, obj in actions:
        pseudonym = analytics.pseudonym(who.issuer, who.subject)
        expected = activity.statement(analytics.builder, verb, pseudonym, obj)
        stored = lrs[expected["id"]]
        assert {k: v for k, v in stored.items() if k not in IGNORED} == expected
        text = json.dumps(stored)
        # no text a person wrote, no subject: only pseudonyms and ids reach the LRS
        assert "SECRET" not in text and who.subject not in text
        seen[expected["verb"]["display"]["en-US"]] = stored

    asked, answered = seen["asked"], seen["answered"]
    assert asked["verb"]["id"] == "http://adlnet.gov/expapi/verbs/asked"
    assert asked["object"]["id"] == f"{base}/xapi/activities/question/{QUESTION['id']}"
    assert asked["object"]["definition"]["name"] == {"en-US": "Question on New opportunity"}
    assert asked["context"]["contextActivities"]["grouping"][0]["id"].endswith("/app/crm")
    assert asked["timestamp"].startswith("2026-11-30T09:15:02")
    # the answer is about the same question, by someone else, told as the answer's activity
    assert answered["verb"]["id"] == "http://adlnet.gov/expapi/verbs/answered"
    assert answered["object"]["id"] == asked["object"]["id"]
    assert answered["actor"] != asked["actor"]
    assert answered["result"]["extensions"] == {
        f"{base}/xapi/extensions/answer": f"{base}/xapi/activities/answer/{ANSWER['id']}"
    }
    shared, endorsed = seen["shared"], seen["endorsed"]
    assert shared["verb"]["id"] == "http://adlnet.gov/expapi/verbs/shared"
    assert shared["object"]["definition"] == {
        "type": "http://activitystrea.ms/schema/1.0/note",
        "name": {"en-US": "Tip on Expensely"},
    }
    assert "parent" not in shared["context"]["contextActivities"]  # a tip for the whole app
    assert endorsed["verb"]["id"] == f"{base}/xapi/verbs/endorsed"
    assert endorsed["object"]["id"] == shared["object"]["id"]
    assert endorsed["context"]["extensions"] == {f"{base}/xapi/extensions/mentor": "ana-costa"}


async def test_the_same_action_recorded_twice_is_one_statement(
    aiohttp_client: Any, make_settings: Callable[..., Settings], ralph: Ralph
) -> None:
    """A retried request (or a feature calling record twice) must not count a question twice
    in the LMS: the statement id comes from the action, so the outbox holds it once, and a late
    resend after delivery is the same statement, which the LRS does not store again."""
    learner = _who("peer-xapi-twice")
    question = {**QUESTION, "id": "q-twice-0001"}
    # 1. the LRS is down: both recordings wait in the outbox, as one statement
    down = lrs_settings(make_settings, f"http://127.0.0.1:{_free_port()}/xAPI")
    client = await aiohttp_client(create_app(down))
    app = client.server.app
    assert await activity.record(app, activity.ASKED, learner, question) is True
    assert await activity.record(app, activity.ASKED, learner, question) is False
    store = app[keys.ANALYTICS].store
    assert await store.write(store.outbox_size_sync) == (1, 0)
    builder = app[keys.ANALYTICS].builder
    assert builder is not None
    pseudonym = app[keys.ANALYTICS].pseudonym(ISSUER, learner.subject)
    sid = activity.statement(builder, activity.ASKED, pseudonym, question)["id"]
    await client.close()

    # 2. the LRS is up: delivered once; recorded again after that: the LRS keeps one
    client = await aiohttp_client(create_app(lrs_settings(make_settings, ralph.url)))
    app = client.server.app
    await wait_drained(app)
    assert await activity.record(app, activity.ASKED, learner, question) is True
    await wait_drained(app)
    stored = [s["id"] for s in await asyncio.to_thread(ralph.stored_lines)]
    assert stored.count(sid) == 1
    assert sid in await asyncio.to_thread(ralph.statements)


async def test_without_an_lrs_nothing_is_queued(client: Any) -> None:
    app = client.server.app
    store = app[keys.ANALYTICS].store
    assert await activity.record(app, activity.ASKED, _who("no-lrs"), QUESTION) is False
    assert await store.write(store.outbox_size_sync) == (0, 0)


async def test_an_unknown_verb_fails_loudly(client: Any) -> None:
    with pytest.raises(activity.UnknownVerb):
        await activity.record(client.server.app, "liked", _who("typo"), QUESTION)


PAGE = {"url": "http://127.0.0.1:8080/demo/crm/opportunities/new", "title": "New Opportunity"}


async def test_the_loop_through_the_api_reaches_the_lrs_and_the_figures(
    aiohttp_client: Any, make_settings: Callable[..., Settings], ralph: Ralph, tokens: Any
) -> None:
    """A learner shares a tip, an admin approves it, María (a vetted mentor of the CRM) endorses
    it; a learner asks on the page and María answers: the four statements reach the LRS, each
    by its actor's pseudonym and about the stored tip or question, and the analytics count it."""
    settings = lrs_settings(make_settings, ralph.url, analytics_min_group=1)
    client = await aiohttp_client(create_app(settings))
    app = client.server.app
    learner = tokens.auth(sub="loop-learner", roles=("learner",), groups=("sales",))
    admin = tokens.auth(sub="loop-admin", roles=("learner", "admin", "reviewer"))
    maria = tokens.auth(sub="loop-maria", roles=("learner", "mentor"), preferred_username="mlopez")

    resp = await client.post(
        "/api/v1/peer/tips",
        json={**PAGE, "body": "Close date = month of signature. SECRET-TIP", "show_name": False},
        headers=learner,
    )
    assert resp.status == 201, await resp.text()
    tip_id = (await resp.json())["id"]
    resp = await client.post(f"/api/v1/admin/tips/{tip_id}/approve", json={}, headers=admin)
    assert resp.status == 200, await resp.text()
    resp = await client.post(f"/api/v1/peer/tips/{tip_id}/endorse", json={}, headers=maria)
    assert resp.status == 200, await resp.text()
    resp = await client.post(
        "/api/v1/peer/questions",
        json={**PAGE, "body": "Which stage for a renewal? SECRET-QUESTION", "show_name": False},
        headers=learner,
    )
    assert resp.status == 201, await resp.text()
    question_id = (await resp.json())["id"]
    resp = await client.post(
        f"/api/v1/peer/questions/{question_id}/answers",
        json={"body": "Proposal, until the PO arrives. SECRET-ANSWER"},
        headers=maria,
    )
    assert resp.status == 201, await resp.text()
    await wait_drained(app)

    pseudonym = app[keys.ANALYTICS].pseudonym
    learner_actor = pseudonym(ISSUER, "loop-learner")
    maria_actor = pseudonym(ISSUER, "loop-maria")
    base = settings.base_url.rstrip("/")
    lrs = await asyncio.to_thread(ralph.statements)
    mine = {
        (s["verb"]["display"]["en-US"], s["actor"]["account"]["name"], s["object"]["id"])
        for s in lrs.values()
        if s["actor"]["account"]["name"] in {learner_actor, maria_actor}
    }
    tip, question = f"{base}/xapi/activities/tip/{tip_id}", f"{base}/xapi/activities/question/"
    assert mine == {
        ("shared", learner_actor, tip),
        ("endorsed", maria_actor, tip),
        ("asked", learner_actor, question + question_id),
        ("answered", maria_actor, question + question_id),
    }
    assert "SECRET" not in json.dumps(list(lrs.values()))

    resp = await client.get("/api/v1/analytics/peer", headers=admin)
    summary = {r["figure"]: r["value"] for r in (await resp.json())["tables"]["summary"]["rows"]}
    assert (summary["tips_submitted"], summary["tips_approved"]) == (1, 1)
    assert (summary["questions_asked"], summary["questions_answered"]) == (1, 1)
    assert summary["median_hours_to_first_answer"] is not None
