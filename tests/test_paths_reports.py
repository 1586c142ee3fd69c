"""A path's progress report (server/paths/reports.py): per step, per group, where people stall,
under the analytics privacy rules (minimum group size; learners named to admins only).

A bakery chain's path of its own; learners enrol by being seen (GET /api/v1/paths/mine), their
progress is real completions in the database, some of them backdated to make a stall.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.paths.models import Enrolment, LearningPath, PathAssignment, PathStep, StepCompletion
from server.peer.store import PeerTx
from server.settings import Settings
from tests.test_admin_keycloak import _keycloak_login, free_port, kc_settings
from tests.test_paths_progress import add_path
from tests.tokens import TokenMaker

__all__ = ["kc_settings"]  # the Keycloak settings fixture, shared with test_admin_keycloak.py

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


def _words(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def _console(client: TestClient, tokens: TokenMaker, username: str, *roles: str) -> None:
    """A console session (as the sign-in callback makes it)."""
    client.session.cookie_jar.clear()
    app = client.server.app
    token = tokens.token(sub=f"sub-{username}", roles=roles, preferred_username=username)
    identity = await app[keys.AUTHENTICATOR].authenticate(token)
    store = app[keys.ADMIN_SESSIONS]
    sid, _ = await store.create(identity, {"access_token": token, "refresh_token": ""})
    client.session.cookie_jar.update_cookies({store.cookie_name: sid})


async def test_the_console_report_page_for_a_manager_and_an_admin(
    client: TestClient, tokens: TokenMaker
) -> None:
    """Managers have no other console page: the report opens for them, the rest says no."""
    await _setup(client, tokens)
    await _console(client, tokens, "boss", "manager")
    resp = await client.get("/admin/path-reports")
    assert resp.status == 200
    page = await resp.text()
    assert 'href="/admin/paths/oven-shift/report"' in page and "Oven shift lead" in page
    resp = await client.get("/admin/paths/oven-shift/report")
    assert resp.status == 200
    text = _words(await resp.text())
    assert "8 learners enrolled, 1 completed the path (12%)" in text
    assert "stuck before Check an oven : 4 have done nothing" in text
    assert "Read the hygiene rules aid 5 of 8 62%" in text
    assert "line-a 6 1 17%" in text and "1 smaller group not shown" in text
    assert "baker-" not in text and "Learners (admins only)" not in text
    resp = await client.get("/admin/paths/oven-shift/report?group=line-b")
    assert "Fewer than 5 learners of group line-b" in _words(await resp.text())
    # the rest of the console is not theirs
    for url in ("/admin", "/admin/paths", "/admin/paths/oven-shift"):
        resp = await client.get(url, allow_redirects=False)
        assert resp.status in {303, 403}, url
        if resp.status == 303:
            assert "/report" not in resp.headers["Location"]

    await _console(client, tokens, "lnd-admin", "admin")
    text = _words(await (await client.get("/admin/paths/oven-shift/report")).text())
    assert "Learners (admins only)" in text and "baker-a0 1 of 3 check-oven" in text

    await _console(client, tokens, "writer", "author")
    resp = await client.get("/admin/paths/oven-shift/report")
    assert resp.status == 403
    assert "Path reports are for" in await resp.text()


async def test_a_manager_signs_in_through_keycloak_to_the_reports(
    aiohttp_client: Any, kc_settings: Callable[..., Settings]
) -> None:
    """The demo user `manager` (realm roles learner and manager, no console role) was refused by
    the console's sign-in ("for authors, reviewers, admins and mentors"), so a manager could not
    open the report a link named; now they land on it, and on the list of reports otherwise."""
    port = free_port()
    settings = kc_settings(base_url=f"http://127.0.0.1:{port}")
    client: TestClient = await aiohttp_client(create_app(settings), server_kwargs={"port": port})
    await add_path(client.server.app, PATH, PathAssignment(path_id="oven-shift", group="finance"))
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=["http://127.0.0.1:8081"])
    async with aiohttp.ClientSession(cookie_jar=jar) as kc:
        for target, landing in (
            ("/admin/paths/oven-shift/report?group=finance", None),
            ("/admin/aids", "/admin/path-reports"),
        ):
            client.session.cookie_jar.clear()
            kc.cookie_jar.clear()
            resp = await client.get("/admin/login", params={"next": target}, allow_redirects=False)
            back = await _keycloak_login(kc, resp.headers["Location"], "manager")
            resp = await client.get(
                urlsplit(back).path + "?" + urlsplit(back).query, allow_redirects=False
            )
            assert resp.status == 303, await resp.text()
            assert resp.headers["Location"] == (landing or target)
        page = await client.get("/admin/paths/oven-shift/report?group=finance")
        assert page.status == 200
        text = _words(await page.text())
        assert "Progress: Oven shift lead (group finance)" in text
        assert "Fewer than 5 learners of group finance" in text  # nobody enrolled yet
        assert 'href="/admin/path-reports"' in await page.text()  # the brand and the nav
        assert (await client.get("/admin/aids")).status == 403


async def test_one_learner_one_step_one_assignment_read_right(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tokens: TokenMaker
) -> None:
    """The manager's report said "1 learners enrolled" and "1 have done nothing ... for 7 days",
    the report list "(1 steps)" and the paths list "1 assignment(s)": counts of one read as one."""
    client = await aiohttp_client(create_app(make_settings(analytics_min_group=1)))
    app = client.server.app
    path = LearningPath(
        id="till-close",
        title="Closing the till",
        steps=(
            PathStep(id="count", kind="practice", title="Count the till", checklist=("Coins",)),
        ),
    )
    await add_path(app, path, PathAssignment(path_id="till-close", group="tills"))
    resp = await client.get("/api/v1/paths/mine", headers=_who(tokens, "cashier-1", "tills"))
    assert resp.status == 200
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=9)).isoformat(timespec="seconds")

    def backdate(tx: PeerTx) -> None:
        for e in tx.list(Enrolment, path_id="till-close"):
            tx.update(dataclasses.replace(e, started_at=old.replace("+00:00", "Z")))

    await app[keys.PEER].transaction(backdate)

    await _console(client, tokens, "lnd-admin", "admin")
    assert "1 assignment" in _words(await (await client.get("/admin/paths")).text())
    assert "1 assignment(s)" not in _words(await (await client.get("/admin/paths")).text())
    assert "Closing the till (1 step)" in _words(
        await (await client.get("/admin/path-reports")).text()
    )
    await _console(client, tokens, "boss", "manager")
    text = _words(await (await client.get("/admin/paths/till-close/report")).text())
    assert "1 learner enrolled, 0 completed the path" in text
    assert "1 has done nothing on the path for 7 days or more" in text
    resp = await client.get("/admin/paths/till-close/report?group=ovens")
    assert "No one of group ovens is on this path yet." in _words(await resp.text())
