"""The peer loop in analytics: figures from the peer tables, under the dashboards' privacy rules.

Rows are written straight into the real peer tables (the store the features use), with times
relative to now, then read through the API, the CSV export and the dashboard page.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from server import keys
from server.analytics.reports import Filters
from server.app import create_app
from server.peer import stats
from server.peer.models import Answer, Pairing, Question, Tip
from server.settings import Settings
from tests.tokens import TokenMaker

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _at(days_ago: float, hours: float = 0) -> str:
    when = NOW - dt.timedelta(days=days_ago) + dt.timedelta(hours=hours)
    return when.isoformat().replace("+00:00", "Z")


def _tip(n: str, app: str, author: str, status: str, after_hours: float | None) -> Tip:
    return Tip(
        id=f"tip-{n}",
        app_id=app,
        body=f"tip {n} SECRET-BODY",
        author_key=author,
        status=status,
        moderated_by="reviewer" if after_hours is not None else "",
        moderated_at=_at(3, after_hours) if after_hours is not None else "",
        created_at=_at(3),
    )


def _question(n: str, asker: str, context: str, **kw: Any) -> Question:
    return Question(
        id=f"q-{n}",
        app_id="crm",
        context_id=context,
        body=f"question {n} SECRET-BODY",
        asker_key=asker,
        created_at=_at(2),
        **kw,
    )


async def _seed(app: Any) -> None:
    """crm: 4 authors' tips (approved after 2 h and 4 h, rejected after 9 h, one pending); one
    expenses tip (approved after 1 h) by one person; an old tip out of range. crm questions by 5
    askers: two answered by María (1 h, 3 h; the first accepted and turned into an aid), three open
    (one on the new-opportunity page, two on no page). María has one mentee, not seen yet."""
    peer = app[keys.PEER]
    for tip in (
        _tip("1", "crm", "a1", "approved", 2),
        _tip("2", "crm", "a2", "approved", 4),
        _tip("3", "crm", "a3", "rejected", 9),
        _tip("4", "crm", "a4", "pending", None),
        _tip("5", "expenses", "b1", "approved", 1),
    ):
        await peer.add(tip)
    old = _tip("old", "crm", "a9", "approved", 1)
    await peer.add(Tip(**{**old.__dict__, "created_at": _at(60), "moderated_at": _at(59)}))
    page = "crm-opportunity-new"
    await peer.add(
        _question(
            "1",
            "c1",
            page,
            status="answered",
            first_answer_at=_at(2, 1),
            accepted_answer_id="ans-1",
            aid_id="crm-create-opportunity",
        )
    )
    await peer.add(_question("2", "c2", page, status="answered", first_answer_at=_at(2, 3)))
    await peer.add(_question("3", "c3", page))
    await peer.add(_question("4", "c4", ""))
    await peer.add(_question("5", "c5", ""))
    for n in ("1", "2"):
        await peer.add(
            Answer(
                id=f"ans-{n}",
                question_id=f"q-{n}",
                body="answer SECRET-BODY",
                author_key="m-maria",
                mentor_id="maria-lopez",
                accepted=n == "1",
                created_at=_at(2, 1),
            )
        )
    today = NOW.date()
    await peer.add(
        Pairing(
            learner_username="newbie",
            mentor_id="maria-lopez",
            app_id="crm",
            starts_on=(today - dt.timedelta(days=5)).isoformat(),
            ends_on=(today + dt.timedelta(days=25)).isoformat(),
        )
    )
    await peer.add(  # ended: not a mentee any more
        Pairing(
            learner_username="alumnus",
            mentor_id="maria-lopez",
            app_id="crm",
            starts_on=(today - dt.timedelta(days=90)).isoformat(),
            ends_on=(today - dt.timedelta(days=60)).isoformat(),
        )
    )


async def _client(
    aiohttp_client: Any, make_settings: Callable[..., Settings], min_group: int
) -> TestClient:
    client: TestClient = await aiohttp_client(
        create_app(make_settings(analytics_min_group=min_group))
    )
    await _seed(client.server.app)
    return client


def _by(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in rows}


async def test_figures_of_the_loop(
    aiohttp_client: Any, make_settings: Callable[..., Settings], admin: dict[str, str]
) -> None:
    client = await _client(aiohttp_client, make_settings, min_group=3)
    resp = await client.get("/api/v1/analytics/peer", headers=admin)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["report"] == "peer" and body["filters"]["min_group"] == 3
    tables = {name: t["rows"] for name, t in body["tables"].items()}
    assert list(tables) == list(stats.TABLES)

    summary = {r["figure"]: r["value"] for r in tables["summary"]}
    assert summary == {
        "tips_submitted": 5,  # the old one is out of range
        "tips_approved": 3,
        "tips_rejected": 1,
        "tips_pending": 1,
        "median_hours_to_moderate": 3.0,  # of 1, 2, 4 and 9 hours
        "questions_asked": 5,
        "questions_answered": 2,
        "questions_unanswered": 3,
        "median_hours_to_first_answer": 2.0,  # of 1 and 3 hours
        "answers_accepted": 1,
        "answers_to_aids": 1,
        "peer_people": 10,
    }

    tips = _by(tables["tips_by_app"], "name")
    crm = tips["Northwind CRM"]
    assert (crm["submitted"], crm["approved"], crm["rejected"], crm["pending"]) == (4, 2, 1, 1)
    assert crm["median_hours_to_moderate"] == 4.0 and crm["people"] == 4
    # one person's tips on Expensely: merged into "(other)", itself too small, so withheld
    other = tips["(other) (1)"]
    assert other["suppressed"] is True and other["submitted"] is None and other["people"] is None
    assert "Expensely" not in tips

    questions = _by(tables["questions_by_app"], "name")["Northwind CRM"]
    assert (questions["asked"], questions["answered"], questions["unanswered"]) == (5, 2, 3)
    assert questions["median_hours_to_first_answer"] == 2.0 and questions["to_aids"] == 1

    # unanswered: 1 person on the page, 2 on no page: each too small, together 3 people
    unanswered = tables["unanswered"]
    assert len(unanswered) == 1
    assert unanswered[0]["page"] == "(other) (2)" and unanswered[0]["unanswered"] == 3

    load = _by(tables["mentor_load"], "mentor")
    maria = load["María López"]  # an admin sees names
    assert maria["open_questions"] == 3 and maria["mentees"] == 1 and maria["answers"] == 2
    assert load["Dev Patel"]["open_questions"] == 3 and load["Dev Patel"]["mentees"] == 0
    assert "Sam Okafor" not in load  # not vetted
    assert load["Ana Costa"]["open_questions"] == 0  # nobody counted: nothing to hide

    aids = tables["to_aids"]
    assert [(a["aid"], a["title"], a["page"]) for a in aids] == [
        ("crm-create-opportunity", "Create a new opportunity", "New opportunity")
    ]
    text = json.dumps(body)
    assert "SECRET-BODY" not in text and '"a1"' not in text and '"c3"' not in text


async def test_app_filter_and_range(
    aiohttp_client: Any, make_settings: Callable[..., Settings], admin: dict[str, str]
) -> None:
    client = await _client(aiohttp_client, make_settings, min_group=1)
    resp = await client.get("/api/v1/analytics/peer?app=expenses", headers=admin)
    body = await resp.json()
    summary = {r["figure"]: r["value"] for r in body["tables"]["summary"]["rows"]}
    assert summary["tips_submitted"] == 1 and summary["questions_asked"] == 0
    load = {r["mentor"] for r in body["tables"]["mentor_load"]["rows"]}
    assert load == {"Ana Costa", "Tom Becker"}  # the mentors of Expensely

    old = (NOW.date() - dt.timedelta(days=60)).isoformat()
    resp = await client.get(f"/api/v1/analytics/peer?from={old}&to={old}", headers=admin)
    summary = {r["figure"]: r["value"] for r in (await resp.json())["tables"]["summary"]["rows"]}
    assert summary["tips_submitted"] == 1 and summary["tips_approved"] == 1


async def test_too_few_people_withholds_everything(
    aiohttp_client: Any, make_settings: Callable[..., Settings], admin: dict[str, str]
) -> None:
    """The production threshold (5) with one learner's tip: no figure may describe them."""
    client: TestClient = await aiohttp_client(create_app(make_settings()))
    await client.server.app[keys.PEER].add(_tip("solo", "hr", "only-one", "approved", 5))
    body = await (await client.get("/api/v1/analytics/peer", headers=admin)).json()
    summary = body["tables"]["summary"]
    assert all(r["value"] is None for r in summary["rows"])
    assert "withheld" in summary["note"]
    (row,) = body["tables"]["tips_by_app"]["rows"]
    assert row["suppressed"] is True and row["submitted"] is None


async def test_mentors_are_pseudonymous_unless_the_viewer_is_admin(
    aiohttp_client: Any, make_settings: Callable[..., Settings]
) -> None:
    client = await _client(aiohttp_client, make_settings, min_group=3)
    app = client.server.app
    f = Filters(NOW.date() - dt.timedelta(days=29), NOW.date())
    named = await stats.compute(app, f, show_mentor_names=True)
    hidden = await stats.compute(app, f, show_mentor_names=False)
    names = {r["mentor"] for r in named["mentor_load"].rows}
    labels = {r["mentor"] for r in hidden["mentor_load"].rows}
    assert "María López" in names
    assert all(label.startswith("Mentor ") for label in labels) and len(labels) == len(names)
    assert not any("López" in label or "maria" in label for label in labels)
    again = await stats.compute(app, f, show_mentor_names=False)
    assert {r["mentor"] for r in again["mentor_load"].rows} == labels  # stable


async def test_route_roles_errors_and_csv(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    admin: dict[str, str],
    learner: dict[str, str],
    tokens: TokenMaker,
) -> None:
    client = await _client(aiohttp_client, make_settings, min_group=1)
    resp = await client.get("/api/v1/analytics/peer", headers=learner)
    assert resp.status == 403 and resp.content_type == "application/problem+json"
    # reviewers moderate the loop: they see its figures, mentors under pseudonyms
    reviewer = tokens.auth(sub="rev-1", roles=("learner", "reviewer"))
    resp = await client.get("/api/v1/analytics/peer", headers=reviewer)
    assert resp.status == 200
    mentors = {r["mentor"] for r in (await resp.json())["tables"]["mentor_load"]["rows"]}
    assert mentors and all(m.startswith("Mentor ") for m in mentors)
    # the admin analytics API stays for admins
    resp = await client.get("/api/v1/admin/analytics/peer", headers=reviewer)
    assert resp.status == 403
    resp = await client.get("/api/v1/analytics/peer?from=yesterday", headers=admin)
    assert resp.status == 422 and resp.content_type == "application/problem+json"
    resp = await client.get("/api/v1/analytics/peer?app=nope", headers=admin)
    assert resp.status == 422
    # the same figures through the admin analytics API and its CSV export
    resp = await client.get("/api/v1/admin/analytics/peer", headers=admin)
    assert (await resp.json())["report"] == "peer"
    resp = await client.get("/api/v1/admin/analytics/peer/questions_by_app.csv", headers=admin)
    assert resp.status == 200
    lines = (await resp.text()).splitlines()
    assert lines[0].startswith("App,Questions asked,Answered,Unanswered")
    assert lines[1].startswith("Northwind CRM,5,2,3")


async def test_dashboard_has_a_peer_learning_section(
    aiohttp_client: Any, make_settings: Callable[..., Settings], admin: dict[str, str]
) -> None:
    client = await _client(aiohttp_client, make_settings, min_group=1)
    resp = await client.get("/admin/analytics", headers={**admin, "Accept": "text/html"})
    assert resp.status == 200
    html = await resp.text()
    assert '<h2 id="peer">Peer learning</h2>' in html
    for label in (
        "Median hours to first answer",
        "Tips waiting for moderation",
        "Accepted answers turned into aids",
        "Mentees now",
        "Unanswered questions by app and page",
    ):
        assert label in html, label
    assert 'id="chart-peer-questions-title"' in html
    assert "median_hours" not in html and "tips_submitted" not in html  # no raw keys
    assert "/admin/analytics/peer/mentor_load.csv" in html


async def test_an_answer_turned_into_an_aid_is_counted_with_the_aid_it_became(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tokens: TokenMaker
) -> None:
    """An author turns the accepted answer into a draft aid (the questions API): the figures
    count it and list the draft by its title and status."""
    client = await _client(aiohttp_client, make_settings, min_group=1)
    author = tokens.auth(sub="author-1", roles=("learner", "author"))
    resp = await client.post("/api/v1/admin/questions/q-1/draft-aid", json={}, headers=author)
    assert resp.status == 409  # q-1 was seeded as already turned into an aid
    peer = client.server.app[keys.PEER]
    q2 = await peer.get(Question, "q-2")
    await peer.update(dataclasses.replace(q2, accepted_answer_id="ans-2"))
    resp = await client.post("/api/v1/admin/questions/q-2/draft-aid", json={}, headers=author)
    assert resp.status == 201, await resp.text()
    aid_id = (await resp.json())["aid_id"]
    admin = tokens.auth(sub="admin-2", roles=("learner", "admin"))
    body = await (await client.get("/api/v1/analytics/peer", headers=admin)).json()
    summary = {r["figure"]: r["value"] for r in body["tables"]["summary"]["rows"]}
    assert summary["answers_to_aids"] == 2 and summary["answers_accepted"] == 2
    rows = {r["aid"]: r for r in body["tables"]["to_aids"]["rows"]}
    assert rows[aid_id]["aid_status"] == "draft" and rows[aid_id]["page"] == "New opportunity"
