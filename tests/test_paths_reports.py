"""A path's progress report (server/paths/reports.py): per step, per group, where people stall,
under the analytics privacy rules (minimum group size; learners named to admins only).

A bakery chain's path of its own; learners enrol by being seen (GET /api/v1/paths/mine), their
progress is real completions in the database, some of them backdated to make a stall.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from aiohttp.test_utils import TestClient

from server import keys
from server.paths.models import Enrolment, LearningPath, PathAssignment, PathStep, StepCompletion
from server.peer.store import PeerTx
from tests.test_paths_progress import add_path
from tests.tokens import TokenMaker

PATH = LearningPath(
    id="oven-shift",
    title="Oven shift lead",
    steps=(
        PathStep(id="read-hygiene", kind="aid", title="Read the hygiene rules", aid_id="hygiene"),
        PathStep(
            id="check-oven", kind="practice", title="Check an oven", checklist=("Temperature",)
        ),
        PathStep(id="meet-baker", kind="mentor", title="Meet the head baker", app_id="bakery"),
    ),
)
REPORT = "/api/v1/admin/paths/oven-shift/report"
LINE_A = [f"baker-a{i}" for i in range(6)]
LINE_B = ["baker-b0", "baker-b1"]


def _who(tokens: TokenMaker, sub: str, group: str) -> dict[str, str]:
    return tokens.auth(sub=sub, roles=("learner",), groups=(group,), email=f"{sub}@bakery.example")


async def _setup(client: TestClient, tokens: TokenMaker) -> None:
    app = client.server.app
    await add_path(
        app,
        PATH,
        PathAssignment(path_id="oven-shift", group="line-a"),
        PathAssignment(path_id="oven-shift", group="line-b"),
    )
    for sub in LINE_A + LINE_B:
        group = "line-a" if sub in LINE_A else "line-b"
        resp = await client.get("/api/v1/paths/mine", headers=_who(tokens, sub, group))
        assert resp.status == 200
    # a0..a3 read the hygiene rules twelve days ago and have done nothing since (stalled before
    # "Check an oven"); a4 finished everything today; a5 and line B only just started
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=12)
    stamp = old.isoformat(timespec="seconds").replace("+00:00", "Z")
    storage = app[keys.LIBRARY].storage

    def key(sub: str) -> str:
        return storage.pseudonymize(tokens.issuer, sub)

    def backdate(tx: PeerTx) -> None:
        for e in tx.list(Enrolment, path_id="oven-shift"):
            if e.person_key in {key(s) for s in LINE_A[:4]}:
                tx.update(dataclasses.replace(e, started_at=stamp))
        for sub in LINE_A[:4]:
            tx.add(
                StepCompletion(
                    path_id="oven-shift",
                    step_id="read-hygiene",
                    person_key=key(sub),
                    how="aid_finished",
                    completed_at=stamp,
                )
            )

    await app[keys.PEER].transaction(backdate)
    a4 = _who(tokens, "baker-a4", "line-a")
    for step, body in (
        ("read-hygiene", {"how": "aid_finished"}),
        ("check-oven", {"how": "practice_confirmed", "checked": ["Temperature"]}),
        ("meet-baker", {"how": "mentor_confirmed"}),
    ):
        resp = await client.post(
            f"/api/v1/paths/oven-shift/steps/{step}/done", json=body, headers=a4
        )
        assert resp.status == 200, await resp.text()


async def _report(client: TestClient, headers: dict[str, str], query: str = "") -> Any:
    resp = await client.get(REPORT + query, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_a_manager_sees_counts_per_step_and_group_and_where_people_stall(
    client: TestClient, tokens: TokenMaker
) -> None:
    await _setup(client, tokens)
    manager = tokens.auth(sub="boss", roles=("manager",), groups=("managers",))
    report = await _report(client, manager)
    assert report["hidden"] is False
    assert (report["enrolled"], report["completed"]) == (8, 1)
    steps = {s["id"]: (s["enrolled"], s["done"]) for s in report["steps"]}
    assert steps == {"read-hygiene": (8, 5), "check-oven": (8, 1), "meet-baker": (8, 1)}
    assert report["steps"][0]["rate"] == 0.625
    # line B has two people: fewer than the minimum group (5), so no row of its own
    assert report["groups"] == [{"group": "line-a", "enrolled": 6, "completed": 1, "rate": 0.167}]
    assert report["groups_hidden"] == 1
    # four people did the first step twelve days ago and stopped before the second
    assert report["stall"] == {"step_id": "check-oven", "title": "Check an oven", "learners": 4}
    assert report["stalls"] == [report["stall"]]
    # counts only: no learner is named to a manager
    assert "learners" not in report
    text = str(report)
    assert "baker-" not in text and "@bakery" not in text


async def test_a_small_group_is_hidden_and_only_admins_see_names(
    client: TestClient, tokens: TokenMaker
) -> None:
    await _setup(client, tokens)
    manager = tokens.auth(sub="boss", roles=("manager",))
    small = await _report(client, manager, "?group=line-b")
    assert small["hidden"] is True
    assert small["enrolled"] is None and small["steps"] == [] and small["stall"] is None
    line_a = await _report(client, manager, "?group=line-a")
    assert (line_a["hidden"], line_a["enrolled"]) == (False, 6)
    assert line_a["stall"]["learners"] == 4

    admin = tokens.auth(sub="lnd-admin", roles=("admin",))
    full = await _report(client, admin)
    rows = {r["username"]: r for r in full["learners"]}
    assert sorted(rows) == sorted(LINE_A + LINE_B)
    assert rows["baker-a0"]["next_step"] == "check-oven" and rows["baker-a0"]["idle_days"] >= 12
    assert rows["baker-a4"]["completed_at"] and rows["baker-a4"]["next_step"] is None
    # an admin's view of a small group still gives no figures, only the people
    small = await _report(client, admin, "?group=line-b")
    assert small["hidden"] is True and sorted(r["username"] for r in small["learners"]) == LINE_B


async def test_learners_and_authors_may_not_read_reports(
    client: TestClient, tokens: TokenMaker
) -> None:
    await _setup(client, tokens)
    for roles in (("learner",), ("author",), ("mentor",)):
        resp = await client.get(REPORT, headers=tokens.auth(sub="nosy", roles=roles))
        assert resp.status == 403, roles
        assert resp.content_type == "application/problem+json"
    reviewer = tokens.auth(sub="lnd", roles=("reviewer",))
    assert "learners" not in await _report(client, reviewer)
    resp = await client.get("/api/v1/admin/paths/no-such-path/report", headers=reviewer)
    assert resp.status == 404 and resp.content_type == "application/problem+json"
    resp = await client.get(REPORT + "?team=x", headers=reviewer)
    assert resp.status == 422
