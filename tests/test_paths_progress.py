"""Learners' progress on learning paths (server/paths/progress.py, learner_api.py): who has which
path, steps done by real signals, the next step, the path completed.

Paths are stored through the real content database (the generic store), with a company of its
own (a plant's maintenance crew), not the demo's paths.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from server import keys
from server.paths.models import Enrolment, LearningPath, PathAssignment, PathStep, StepCompletion
from server.peer.store import PeerTx
from tests.tokens import TokenMaker

CHECKLIST = ("Lock out the press", "Tag the breaker", "Try the start button")
STEPS = (
    PathStep(id="read-lockout", kind="aid", title="Read the lockout procedure", aid_id="lockout"),
    PathStep(
        id="safety-course",
        kind="course",
        title="Machine safety course",
        url="https://lms.plant.example/courses/safety-1",
        activity_id="https://lms.plant.example/courses/safety-1",
    ),
    PathStep(id="practise-lockout", kind="practice", title="Lock out a press", checklist=CHECKLIST),
    PathStep(id="talk-to-lead", kind="mentor", title="Talk to a shift lead", mentor_id="sam-lead"),
)


def plant_path(**kw: Any) -> LearningPath:
    fields: dict[str, Any] = {
        "id": "press-operator",
        "title": "Press operator basics",
        "description": "Everything a **new press operator** needs in week one.",
        "steps": STEPS,
        **kw,
    }
    return LearningPath(**fields)


async def add_path(app: web.Application, path: LearningPath, *assignments: PathAssignment) -> None:
    def write(tx: PeerTx) -> None:
        tx.add(path)
        for a in assignments:
            tx.add(a)

    await app[keys.PEER].transaction(write)


def crew(tokens: TokenMaker, sub: str = "op-1", **kw: Any) -> dict[str, str]:
    claims: dict[str, Any] = {
        "sub": sub,
        "roles": ("learner",),
        "groups": ("press-crew",),
        "preferred_username": sub,
        "email": f"{sub}@plant.example",
        **kw,
    }
    return tokens.auth(**claims)


async def mine(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/paths/mine", headers=headers)
    assert resp.status == 200, await resp.text()
    data: list[dict[str, Any]] = await resp.json()
    return [p for p in data if p["path"]["id"] in {"press-operator", "forklift", "old-path"}]


async def done(
    client: TestClient, headers: dict[str, str], step: str, how: str, **kw: Any
) -> tuple[int, dict[str, Any]]:
    resp = await client.post(
        f"/api/v1/paths/press-operator/steps/{step}/done", json={"how": how, **kw}, headers=headers
    )
    return resp.status, await resp.json()


async def test_a_group_assignment_gives_its_members_the_path(
    client: TestClient, tokens: TokenMaker
) -> None:
    app = client.server.app
    await add_path(
        app,
        plant_path(),
        PathAssignment(path_id="press-operator", group="press-crew", due_on="2026-12-20"),
    )
    await add_path(
        app,
        plant_path(id="forklift", title="Forklift licence", audience=("drivers",)),
        PathAssignment(path_id="forklift", group="press-crew"),
    )
    await add_path(
        app,
        plant_path(id="old-path", title="Old induction", active=False),
        PathAssignment(path_id="old-path", group="press-crew"),
    )
    member = crew(tokens)
    paths = await mine(client, member)
    # the forklift path is for drivers (audience), the old one inactive: neither is shown
    assert [p["path"]["id"] for p in paths] == ["press-operator"]
    mine_path = paths[0]
    assert mine_path["path"]["title"] == "Press operator basics"
    assert "<strong>new press operator</strong>" in mine_path["path"]["description_html"]
    assert mine_path["due_on"] == "2026-12-20"
    assert (mine_path["done"], mine_path["total"], mine_path["completed"]) == (0, 4, False)
    assert mine_path["next"]["id"] == "read-lockout"
    assert [s["kind"] for s in mine_path["steps"]] == ["aid", "course", "practice", "mentor"]
    assert mine_path["steps"][2]["checklist"] == list(CHECKLIST)

    # someone outside the group has no such path, and cannot open it by its address
    office = tokens.auth(sub="clerk-1", roles=("learner",), groups=("office",))
    assert await mine(client, office) == []
    resp = await client.get("/api/v1/paths/press-operator", headers=office)
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"

    # a driver in the crew sees the forklift path too (its audience)
    driver = crew(tokens, sub="op-2", groups=("press-crew", "drivers"))
    assert sorted(p["path"]["id"] for p in await mine(client, driver)) == [
        "forklift",
        "press-operator",
    ]

    # the member was enrolled when seen, with what the LRS sync matches on
    enrolments = await app[keys.PEER].list(Enrolment, path_id="press-operator")
    assert {(e.username, e.email, e.groups) for e in enrolments} == {
        ("op-1", "op-1@plant.example", ("press-crew",)),
        ("op-2", "op-2@plant.example", ("drivers", "press-crew")),
    }
    # seen again: still one enrolment each
    await mine(client, member)
    assert await app[keys.PEER].count(Enrolment, path_id="press-operator") == 2


async def test_a_personal_assignment_and_the_earliest_due_date(
    client: TestClient, tokens: TokenMaker
) -> None:
    app = client.server.app
    await add_path(
        app,
        plant_path(),
        PathAssignment(path_id="press-operator", group="press-crew", due_on="2026-12-20"),
        PathAssignment(path_id="press-operator", username="op-7", due_on="2026-12-10"),
    )
    alone = tokens.auth(sub="op-7-sub", roles=("learner",), preferred_username="op-7")
    paths = await mine(client, alone)
    assert [(p["path"]["id"], p["due_on"]) for p in paths] == [("press-operator", "2026-12-10")]
    both = crew(tokens, sub="op-7-sub", preferred_username="op-7")
    assert [p["due_on"] for p in await mine(client, both)] == ["2026-12-10"]


async def test_finishing_an_aid_ticks_its_step_and_moves_the_next_step_on(
    client: TestClient, tokens: TokenMaker
) -> None:
    app = client.server.app
    await add_path(app, plant_path(), PathAssignment(path_id="press-operator", group="press-crew"))
    member = crew(tokens)
    status, body = await done(client, member, "read-lockout", "aid_finished")
    assert status == 200, body
    assert (body["done"], body["total"]) == (1, 4)
    step = body["steps"][0]
    assert step["done"] is True and step["how"] == "aid_finished" and step["done_at"]
    assert body["next"]["id"] == "safety-course"
    # pressing Done again changes nothing (the first completion stays)
    status, again = await done(client, member, "read-lockout", "aid_finished")
    assert status == 200 and again["steps"][0]["done_at"] == step["done_at"]
    assert await app[keys.PEER].count(StepCompletion, person_key=_key(app, tokens, "op-1")) == 1
    # another crew member's progress is their own
    other = await mine(client, crew(tokens, sub="op-2"))
    assert other[0]["done"] == 0


def _key(app: web.Application, tokens: TokenMaker, sub: str) -> str:
    return app[keys.LIBRARY].storage.pseudonymize(tokens.issuer, sub)


async def test_a_practice_task_needs_every_checklist_line(
    client: TestClient, tokens: TokenMaker
) -> None:
    app = client.server.app
    await add_path(app, plant_path(), PathAssignment(path_id="press-operator", group="press-crew"))
    member = crew(tokens)
    status, body = await done(
        client, member, "practise-lockout", "practice_confirmed", checked=list(CHECKLIST[:2])
    )
    assert status == 422
    assert body["fields"] == ["checked"]
    assert "Try the start button" in body["detail"]
    assert body["missing"] == ["Try the start button"]
    assert (await mine(client, member))[0]["done"] == 0

    status, body = await done(
        client, member, "practise-lockout", "practice_confirmed", checked=list(CHECKLIST)
    )
    assert status == 200, body
    assert body["steps"][2]["how"] == "practice_confirmed"
    # done out of order: the next step is still the first one not done
    assert body["next"]["id"] == "read-lockout"


async def test_the_wrong_kind_of_signal_is_refused(client: TestClient, tokens: TokenMaker) -> None:
    app = client.server.app
    await add_path(app, plant_path(), PathAssignment(path_id="press-operator", group="press-crew"))
    member = crew(tokens)
    # an aid's "Done" cannot tick a practice task...
    status, body = await done(client, member, "practise-lockout", "aid_finished")
    assert status == 422 and body["fields"] == ["how"]
    assert "practice_confirmed" in body["detail"]
    # ...nor can a learner tick a course step: the LMS does
    status, body = await done(client, member, "safety-course", "aid_finished")
    assert status == 422 and "LMS" in body["detail"]
    # nor say the LRS or an admin did it
    for how in ("lrs", "manual", "finished"):
        status, body = await done(client, member, "read-lockout", how)
        assert status == 422 and body["fields"] == ["how"], (how, body)
    resp = await client.post(
        "/api/v1/paths/press-operator/steps/no-such-step/done",
        json={"how": "aid_finished"},
        headers=member,
    )
    assert resp.status == 404 and resp.content_type == "application/problem+json"
    assert (await mine(client, member))[0]["done"] == 0


async def test_the_last_step_completes_the_path(client: TestClient, tokens: TokenMaker) -> None:
    app = client.server.app
    short = plant_path(steps=(STEPS[0], STEPS[2], STEPS[3]))
    await add_path(app, short, PathAssignment(path_id="press-operator", group="press-crew"))
    member = crew(tokens)
    await done(client, member, "read-lockout", "aid_finished")
    await done(client, member, "practise-lockout", "practice_confirmed", checked=list(CHECKLIST))
    before = (await mine(client, member))[0]
    assert before["completed"] is False and before["completed_at"] is None
    status, body = await done(client, member, "talk-to-lead", "mentor_confirmed")
    assert status == 200
    assert (body["done"], body["total"], body["completed"]) == (3, 3, True)
    assert body["next"] is None and body["completed_at"]
    [enrolment] = await app[keys.PEER].list(Enrolment, path_id="press-operator")
    assert enrolment.completed_at == body["completed_at"]
    # the one path, by its address, in the same shape
    resp = await client.get("/api/v1/paths/press-operator", headers=member)
    assert resp.status == 200
    assert (await resp.json())["completed"] is True


async def test_anonymous_callers_are_refused(client: TestClient) -> None:
    for method, url in (
        ("GET", "/api/v1/paths/mine"),
        ("GET", "/api/v1/paths/press-operator"),
        ("POST", "/api/v1/paths/mine/sync"),
    ):
        resp = await client.request(method, url)
        assert resp.status == 401, url
        assert resp.content_type == "application/problem+json"


def _hows(node: Any) -> list[list[Any]]:
    """Every `how` property's enum in a JSON schema tree."""
    found: list[list[Any]] = []
    if isinstance(node, dict):
        how = node.get("properties", {}).get("how")
        if isinstance(how, dict) and "enum" in how:
            found.append(how["enum"])
        for value in node.values():
            found += _hows(value)
    elif isinstance(node, list):
        for value in node:
            found += _hows(value)
    return found


async def test_the_api_offers_only_the_ways_a_step_gets_done(client: TestClient) -> None:
    """A step's `how` listed `manual` in the API document ("an admin marked it done"), but no
    route or page ever set it: a client built a filter and a label for a value that never came.
    The document lists the four signals Inflow sets, and nothing else."""
    resp = await client.get("/api/v1/openapi.json")
    signals = {"aid_finished", "practice_confirmed", "lrs", "mentor_confirmed"}
    enums = [set(enum) - {None} for enum in _hows(await resp.json())]
    assert signals in enums  # a step's how in the learner's paths
    for enum in enums:  # and what a learner may send is a part of them
        assert enum <= signals, enum
