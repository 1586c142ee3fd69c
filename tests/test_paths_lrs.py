"""Course steps ticked from the LMS's statements in a real LRS (ralph; the fixture is in
tests/test_analytics_xapi.py), and path progress going out as xAPI to the same LRS.

Each test mints its own activity ids and learners: ralph is shared by the session's LRS tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.paths import lrs
from server.paths.models import (
    Enrolment,
    LearningPath,
    PathAssignment,
    PathStep,
    StepCompletion,
)
from server.settings import Settings
from tests.keycloak import access_token
from tests.test_analytics_xapi import (
    HEADERS,
    PASSWORD,
    USER,
    Ralph,
    lrs_settings,
    ralph,
    wait_drained,
)
from tests.test_paths_progress import add_path
from tests.tokens import TokenMaker

__all__ = ["ralph"]  # the LRS fixture, shared with tests/test_analytics_xapi.py

ADL = "http://adlnet.gov/expapi/verbs"


def course_path(tag: str, *extra: PathStep) -> tuple[LearningPath, str]:
    activity = f"https://lms.mill-{tag}.example/courses/loader-safety"
    steps = (
        PathStep(
            id="loader-course",
            kind="course",
            title="Loader safety (LMS)",
            url=activity,
            activity_id=activity,
        ),
        *extra,
    )
    return LearningPath(id=f"mill-{tag}", title="Mill loader operator", steps=steps), activity


def statement(
    email: str, activity: str, verb: str = "completed", at: str = "", **actor: Any
) -> dict[str, Any]:
    who = actor or {"mbox": f"mailto:{email}"}
    return {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", **who},
        "verb": {"id": f"{ADL}/{verb}", "display": {"en-US": verb}},
        "object": {"objectType": "Activity", "id": activity},
        "timestamp": at or dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
    }


async def post_to_lrs(ralph: Ralph, *statements: dict[str, Any]) -> None:
    """What the LMS does: POST its statements to the LRS."""
    headers = {**HEADERS, "Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{ralph.url}/statements", json=list(statements), headers=headers) as resp,
    ):
        assert resp.status == 200, await resp.text()


async def lrs_client(
    aiohttp_client: Any, make_settings: Callable[..., Settings], ralph: Ralph, **kw: Any
) -> TestClient:
    settings = lrs_settings(make_settings, ralph.url, paths_lrs_minutes=0, **kw)
    client: TestClient = await aiohttp_client(create_app(settings))
    return client


def mill_hand(tokens: TokenMaker, sub: str, tag: str, **kw: Any) -> dict[str, str]:
    claims: dict[str, Any] = {
        "sub": sub,
        "roles": ("learner",),
        "groups": (f"mill-{tag}",),
        "email": f"{sub}@mill-{tag}.example",
        **kw,
    }
    return tokens.auth(**claims)


async def my_path(client: TestClient, headers: dict[str, str], path_id: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/paths/{path_id}", headers=headers)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def sync_mine(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    resp = await client.post("/api/v1/paths/mine/sync", headers=headers)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def evidence(app: web.Application, path_id: str, step_id: str) -> dict[str, str]:
    """person key -> the statement id a course step was ticked on."""
    rows = await app[keys.PEER].list(StepCompletion, path_id=path_id, step_id=step_id)
    return {c.person_key: c.evidence for c in rows if c.how == "lrs"}


async def test_a_completed_statement_ticks_the_course_step_after_a_sync(
    aiohttp_client: Any, make_settings: Callable[..., Settings], ralph: Ralph, tokens: TokenMaker
) -> None:
    tag = uuid.uuid4().hex[:8]
    client = await lrs_client(aiohttp_client, make_settings, ralph)
    app = client.server.app
    path, activity = course_path(tag)
    await add_path(app, path, PathAssignment(path_id=path.id, group=f"mill-{tag}"))
    ana, ben = mill_hand(tokens, "ana", tag), mill_hand(tokens, "ben", tag)
    for who in (ana, ben):  # both seen (enrolled) with the step to do
        assert (await my_path(client, who, path.id))["done"] == 0

    done = statement(f"ana@mill-{tag}.example", activity, at="2026-11-20T08:30:00.000+00:00")
    await post_to_lrs(
        ralph,
        done,
        # none of these may tick anything
        statement(f"ana@mill-{tag}.example", activity, verb="attempted"),
        statement(f"ana@mill-{tag}.example", activity + "-advanced"),
        statement(f"carla@mill-{tag}.example", activity),
    )
    result = await sync_mine(client, ana)
    assert result["lrs"] is True and result["errors"] == []
    assert (result["checked"], result["ticked"]) == (1, 1)
    shown = next(p for p in result["paths"] if p["path"]["id"] == path.id)
    step = shown["steps"][0]
    assert (step["done"], step["how"]) == (True, "lrs")
    assert step["done_at"] == "2026-11-20T08:30:00Z"  # when the LMS says the course was done
    assert shown["completed"] is True  # the path's only step
    ana_key = app[keys.LIBRARY].storage.pseudonymize(tokens.issuer, "ana")
    assert await evidence(app, path.id, "loader-course") == {ana_key: done["id"]}

    # Ben's sync finds nothing of his: another learner's and another activity's statements
    result = await sync_mine(client, ben)
    assert (result["checked"], result["ticked"]) == (1, 0)
    assert (await my_path(client, ben, path.id))["done"] == 0


async def test_passed_counts_too_and_the_job_syncs_everyone(
    aiohttp_client: Any, make_settings: Callable[..., Settings], ralph: Ralph, tokens: TokenMaker
) -> None:
    tag = uuid.uuid4().hex[:8]
    client = await lrs_client(aiohttp_client, make_settings, ralph)
    app = client.server.app
    path, activity = course_path(tag)
    await add_path(app, path, PathAssignment(path_id=path.id, group=f"mill-{tag}"))
    people = {sub: mill_hand(tokens, sub, tag) for sub in ("dora", "emil", "fay")}
    for who in people.values():
        await my_path(client, who, path.id)
    await post_to_lrs(
        ralph,
        statement(f"dora@mill-{tag}.example", activity, verb="passed"),
        statement(f"emil@mill-{tag}.example", activity, verb="failed"),
    )
    jobs = app[keys.JOBS]
    assert lrs.JOB in jobs.names()
    assert await jobs.run_now(lrs.JOB)
    await jobs.wait(lrs.JOB)
    state = jobs.state(lrs.JOB)
    assert state["last_error"] == "" and state["runs"] == 1
    done = {sub: (await my_path(client, who, path.id))["done"] for sub, who in people.items()}
    assert done == {"dora": 1, "emil": 0, "fay": 0}


async def test_every_page_of_statements_is_read_and_the_first_completion_counts(
    aiohttp_client: Any, make_settings: Callable[..., Settings], ralph: Ralph, tokens: TokenMaker
) -> None:
    """The LRS pages its answers (`more`): the course was completed five times (retakes); the
    step's date is the first time, which the LRS returns on the last page."""
    tag = uuid.uuid4().hex[:8]
    client = await lrs_client(aiohttp_client, make_settings, ralph)
    app = client.server.app
    path, activity = course_path(tag)
    await add_path(app, path, PathAssignment(path_id=path.id, group=f"mill-{tag}"))
    gus = mill_hand(tokens, "gus", tag)
    await my_path(client, gus, path.id)
    retakes = [
        statement(f"gus@mill-{tag}.example", activity, at=f"2026-11-0{day}T09:00:00.000+00:00")
        for day in (5, 1, 7, 3, 9)
    ]
    for st in retakes:  # one by one: the LRS stores them in this order
        await post_to_lrs(ralph, st)
    reader = app[keys.PATHS_LRS]
    reader.page_size = 2
    agent = {"objectType": "Agent", "mbox": f"mailto:gus@mill-{tag}.example"}
    found = await reader.statements(agent, activity, lrs.COMPLETED)
    assert sorted(s["id"] for s in found) == sorted(s["id"] for s in retakes)
    before = reader.requests
    result = await sync_mine(client, gus)
    assert result["ticked"] == 1
    assert reader.requests - before >= 3  # five statements, two a page (and `passed`)
    step = (await my_path(client, gus, path.id))["steps"][0]
    assert step["done_at"] == "2026-11-01T09:00:00Z"
    gus_key = app[keys.LIBRARY].storage.pseudonymize(tokens.issuer, "gus")
    assert (await evidence(app, path.id, "loader-course"))[gus_key] == retakes[1]["id"]


async def test_an_lms_that_knows_people_by_account(
    aiohttp_client: Any, make_settings: Callable[..., Settings], ralph: Ralph, tokens: TokenMaker
) -> None:
    """INFLOW_LRS_ACCOUNT_HOMEPAGE: the LMS names learners by their Keycloak username."""
    tag = uuid.uuid4().hex[:8]
    home = f"https://sso.mill-{tag}.example"
    client = await lrs_client(aiohttp_client, make_settings, ralph, lrs_account_homepage=home)
    app = client.server.app
    path, activity = course_path(tag)
    await add_path(app, path, PathAssignment(path_id=path.id, group=f"mill-{tag}"))
    hal = mill_hand(tokens, "hal-sub", tag, preferred_username="hal", email=None)
    await my_path(client, hal, path.id)
    await post_to_lrs(
        ralph,
        statement("", activity, account={"homePage": home, "name": "someone-else"}),
        statement("", activity, account={"homePage": "https://other.example", "name": "hal"}),
    )
    assert (await sync_mine(client, hal))["ticked"] == 0
    await post_to_lrs(ralph, statement("", activity, account={"homePage": home, "name": "hal"}))
    assert (await sync_mine(client, hal))["ticked"] == 1


async def test_steps_and_paths_completed_go_out_as_xapi(
    aiohttp_client: Any, make_settings: Callable[..., Settings], ralph: Ralph, tokens: TokenMaker
) -> None:
    tag = uuid.uuid4().hex[:8]
    client = await lrs_client(aiohttp_client, make_settings, ralph)
    app = client.server.app
    aid_step = PathStep(id="read-guide", kind="aid", title="Read the loader guide", aid_id="guide")
    path, activity = course_path(tag, aid_step)
    await add_path(app, path, PathAssignment(path_id=path.id, group=f"mill-{tag}"))
    ida = mill_hand(tokens, "ida", tag)
    resp = await client.post(
        f"/api/v1/paths/{path.id}/steps/read-guide/done", json={"how": "aid_finished"}, headers=ida
    )
    assert resp.status == 200
    await post_to_lrs(ralph, statement(f"ida@mill-{tag}.example", activity))
    assert (await sync_mine(client, ida))["ticked"] == 1
    await wait_drained(app)

    base = app[keys.SETTINGS].base_url
    key = app[keys.LIBRARY].storage.pseudonymize(tokens.issuer, "ida")
    mine = [
        s
        for s in (await asyncio.to_thread(ralph.statements)).values()
        if s["actor"].get("account", {}).get("name") == key
        and s["object"]["id"].startswith(f"{base}/paths/{path.id}")
    ]
    by_object = {s["object"]["id"]: s for s in mine}
    path_iri = f"{base}/paths/{path.id}"
    assert set(by_object) == {
        f"{path_iri}/steps/read-guide",
        f"{path_iri}/steps/loader-course",
        path_iri,
    }
    for st in mine:
        assert st["verb"]["id"] == f"{ADL}/completed"
        assert st["actor"]["account"]["homePage"] == base
        assert "ida" not in str(st)  # the pseudonym, never the username or the address
    step = by_object[f"{path_iri}/steps/read-guide"]
    assert step["context"]["contextActivities"]["parent"][0]["id"] == path_iri
    assert step["object"]["definition"]["name"]["en-US"] == "Read the loader guide"
    assert (
        by_object[f"{path_iri}/steps/loader-course"]["context"]["extensions"][
            f"{base}/xapi/extensions/how"
        ]
        == "lrs"
    )


async def test_syncing_is_rate_limited_and_says_when_no_lrs_is_set(
    client: TestClient, tokens: TokenMaker
) -> None:
    who = tokens.auth(sub="jo", roles=("learner",))
    for _ in range(3):
        resp = await client.post("/api/v1/paths/mine/sync", headers=who)
        assert resp.status == 200
        body = await resp.json()
        assert body["lrs"] is False and body["ticked"] == 0
    resp = await client.post("/api/v1/paths/mine/sync", headers=who)
    assert resp.status == 429
    assert resp.content_type == "application/problem+json"
    assert int(resp.headers["Retry-After"]) >= 1
    # someone else still may
    resp = await client.post("/api/v1/paths/mine/sync", headers=tokens.auth(sub="kim"))
    assert resp.status == 200


async def test_the_job_enrols_a_groups_members_from_keycloak(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    ralph: Ralph,
    tokens: TokenMaker,
    keycloak: Any,
) -> None:
    """A new hire who did the LMS course before ever opening Inflow: the job reads the assigned
    group's members from the real Keycloak, enrols them, and ticks the step from the LRS."""
    tag = uuid.uuid4().hex[:8]
    client = await lrs_client(aiohttp_client, make_settings, ralph)
    app = client.server.app
    path, activity = course_path(tag)
    await add_path(
        app, path, PathAssignment(path_id=path.id, group="new-hires", due_on="2026-12-31")
    )
    claims = jwt.decode(access_token("newhire"), options={"verify_signature": False})
    await post_to_lrs(ralph, statement(claims["email"], activity, verb="passed"))
    jobs = app[keys.JOBS]
    assert await jobs.run_now(lrs.JOB)
    await jobs.wait(lrs.JOB)
    assert jobs.state(lrs.JOB)["last_error"] == ""
    [enrolment] = await app[keys.PEER].list(Enrolment, path_id=path.id)
    assert (enrolment.username, enrolment.email) == ("newhire", claims["email"])
    assert (enrolment.groups, enrolment.due_on) == (("new-hires",), "2026-12-31")
    # when they open Inflow (the same person: the realm's issuer and their subject), it is done
    newhire = tokens.auth(
        sub=claims["sub"], roles=("learner",), groups=("new-hires", "sales"), email=claims["email"]
    )
    shown = await my_path(client, newhire, path.id)
    assert (shown["done"], shown["steps"][0]["how"]) == (1, "lrs")
    assert await app[keys.PEER].count(Enrolment, path_id=path.id) == 1
