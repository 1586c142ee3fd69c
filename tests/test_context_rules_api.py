"""Contexts with several rules, fallback and exclusive contexts, and apps' wrapped targets,
through the admin API, the learner's suggest and rules document, and the content format. The
library is not the demo's: a made-up company's service desk."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from server import keys
from server.content import app_to_text, load_dir
from server.models import App, validate
from tests.test_admin_console import sign_in
from tests.tokens import TokenMaker

A = "/api/v1/admin"
DESK = "https://contoso.service-now.com"
APP: dict[str, Any] = {
    "id": "desk",
    "name": "Contoso desk",
    "rules": [f"{DESK}/**"],
    "wrapped_targets": ["/nav_to.do?uri={target}", "/now/nav/ui/classic/params/target/{target}"],
    "contexts": [
        {
            "id": "desk-change",
            "name": "Change request",
            "rules": [f"{DESK}/change_request.do", f"{DESK}/sn_chg_request.do"],
        },
        {"id": "desk-general", "name": "Desk", "rule": f"{DESK}/**", "fallback": True},
    ],
}


def h(headers: dict[str, str], etag: str | None = None) -> dict[str, str]:
    return {**headers, "If-Match": etag} if etag else dict(headers)


async def _contexts(client: TestClient, who: dict[str, str], url: str) -> list[str]:
    resp = await client.post("/api/v1/suggest", json={"url": url}, headers=who)
    assert resp.status == 200, await resp.text()
    return [c["id"] for c in (await resp.json())["contexts"]]


async def test_several_rules_fallback_and_wrapped_targets_through_the_api(
    client: TestClient, admin: dict[str, str], learner: dict[str, str]
) -> None:
    resp = await client.post(f"{A}/apps", json=APP, headers=admin)
    assert resp.status == 201, await resp.text()
    app = await resp.json()
    assert app["wrapped_targets"] == APP["wrapped_targets"]
    change, general = app["contexts"]
    assert change["rules"] == [
        {"pattern": f"{DESK}/change_request.do", "priority": 0},
        {"pattern": f"{DESK}/sn_chg_request.do", "priority": 0},
    ]
    assert (change["fallback"], change["exclusive"]) == (False, False)
    assert general["rules"] == [{"pattern": f"{DESK}/**", "priority": 0}]
    assert general["fallback"] is True
    assert "rule" not in general and "priority" not in general  # output has `rules` only

    # the learner's side: the second rule, the wrapped page, the fallback
    assert await _contexts(client, learner, f"{DESK}/sn_chg_request.do?sys_id=1") == ["desk-change"]
    wrapped = f"{DESK}/nav_to.do?uri=%2Fchange_request.do%3Fsys_id%3D-1"
    assert await _contexts(client, learner, wrapped) == ["desk-change"]
    assert await _contexts(client, learner, f"{DESK}/home.do") == ["desk-general"]

    resp = await client.get("/api/v1/rules", headers=learner)
    doc = await resp.json()
    [desk] = [a for a in doc["apps"] if a["id"] == "desk"]
    assert desk["wrapped_targets"] == APP["wrapped_targets"]
    ctx = {c["id"]: c for c in doc["contexts"]}
    assert [r["id"] for r in ctx["desk-change"]["rules"]] == [
        "ctx:desk-change:0",
        "ctx:desk-change:1",
    ]
    assert ctx["desk-general"]["fallback"] is True

    # a read-modify-write client: what GET returns goes back with PUT
    resp = await client.get(f"{A}/contexts/desk-change", headers=admin)
    etag, body = resp.headers["ETag"], await resp.json()
    body["rules"].append({"pattern": f"{DESK}/change_task.do", "priority": 5})
    body["exclusive"] = True
    resp = await client.patch(f"{A}/contexts/desk-change", json=body, headers=h(admin, etag))
    assert resp.status == 200, await resp.text()
    saved = await resp.json()
    assert [r["priority"] for r in saved["rules"]] == [0, 0, 5] and saved["exclusive"] is True

    # the old one-rule shape replaces the rules
    etag = resp.headers["ETag"]
    resp = await client.patch(
        f"{A}/contexts/desk-change",
        json={"rule": f"{DESK}/change_request.do", "priority": 3},
        headers=h(admin, etag),
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["rules"] == [{"pattern": f"{DESK}/change_request.do", "priority": 3}]


async def test_bad_rules_and_wrapped_targets_are_refused_saying_where(
    client: TestClient, admin: dict[str, str]
) -> None:
    """Each problem is named by its place: the second rule of a context, a wrapped target."""
    body = {
        **APP,
        "id": "desk2",
        "wrapped_targets": ["/nav_to.do?uri={target}&x=1"],
        "contexts": [
            {"id": "d2-a", "name": "A", "rules": [f"{DESK}/a.do", "not a rule"]},
            {"id": "d2-b", "name": "B", "rules": []},
            {"id": "d2-c", "name": "C", "rules": [f"{DESK}/{i}.do" for i in range(21)]},
            {"id": "d2-d", "name": "D", "rule": "x", "rules": ["y"]},
        ],
    }
    resp = await client.post(f"{A}/apps", json=body, headers=admin)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    errors = {e["field"]: e["message"] for e in (await resp.json())["errors"]}
    assert "must end it" in errors["wrapped_targets[0]"]
    assert errors["contexts[1].rules"] == "at least 1 entry"
    assert errors["contexts[2].rules"] == "at most 20 entries"
    assert "not both" in errors["contexts[3]"]

    body = {
        **APP,
        "id": "desk3",
        "contexts": [{"id": "d3-a", "name": "A", "rules": [f"{DESK}/a.do", "not a rule"]}],
    }
    resp = await client.post(f"{A}/apps", json=body, headers=admin)
    assert resp.status == 422
    errors = {e["field"]: e["message"] for e in (await resp.json())["errors"]}
    assert (
        list(errors) == ["contexts[0].rules[1]"] and "not a rule" in errors["contexts[0].rules[1]"]
    )


def test_app_files_keep_several_rules_flags_and_wrapped_targets(tmp_path: Path) -> None:
    """Export then import: what an app file says survives, in the short form where it has one
    (a context with one rule is written `rule:`)."""
    app = validate(App, APP)
    text = app_to_text(app)
    assert "rule: https://contoso.service-now.com/**" in text
    assert "fallback: true" in text and "exclusive" not in text
    assert "wrapped_targets:" in text
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "desk.yaml").write_text(text, encoding="utf-8")
    [again] = load_dir(tmp_path).apps
    assert again == app


def test_an_invalid_rule_in_an_app_file_is_named_as_written(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "x.yaml").write_text(
        "id: x\nname: X\ncontexts:\n"
        "  - id: x-one\n    name: One\n    rule: 'bad one'\n"
        "  - id: x-two\n    name: Two\n    rules:\n"
        "      - https://x.example.com/a\n      - 'bad two'\n",
        encoding="utf-8",
    )
    try:
        load_dir(tmp_path)
    except Exception as exc:  # ContentError lists (file, line, message)
        messages = [(line, msg.split(":")[0]) for _, line, msg in exc.errors]  # type: ignore[attr-defined]
    else:
        raise AssertionError("the file was accepted")
    assert (6, "contexts[0].rule") in messages
    assert (11, "contexts[1].rules[1]") in messages


async def test_the_console_context_form_takes_rules_and_flags(
    client: TestClient, tokens: TokenMaker
) -> None:
    """The context form: a rules textarea (one per line, optional priority after a space), the
    fallback and exclusive checkboxes; a form of the older shape (`rule` and `priority`) too."""
    token = tokens.token(sub="admin-1", roles=("learner", "author", "admin"))
    csrf = await sign_in(client, token)
    resp = await client.post(
        "/admin/apps/hr/contexts",
        data={
            "csrf_token": csrf,
            "id": "hr-general",
            "name": "Portal (general)",
            "rules": "*://127.0.0.1/demo/hr/**\n*://localhost/demo/hr/** -5\n",
            "fallback": "1",
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    ctx = client.server.app[keys.LIBRARY].catalog.contexts["hr-general"]
    assert [(r.pattern, r.priority) for r in ctx.rules] == [
        ("*://127.0.0.1/demo/hr/**", 0),
        ("*://localhost/demo/hr/**", -5),
    ]
    assert (ctx.fallback, ctx.exclusive) == (True, False)

    html = await (await client.get("/admin/contexts/hr-general")).text()
    assert "*://127.0.0.1/demo/hr/**\n*://localhost/demo/hr/** -5</textarea>" in html
    assert re.search(r'name="fallback" value="1" checked', html)
    assert not re.search(r'name="exclusive" value="1" checked', html)

    resp = await client.post(
        "/admin/apps/hr/contexts",
        data={
            "csrf_token": csrf,
            "id": "hr-old-form",
            "name": "Old form",
            "rule": "*://127.0.0.1/demo/hr/old.html",
            "priority": "7",
            "exclusive": "1",
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    ctx = client.server.app[keys.LIBRARY].catalog.contexts["hr-old-form"]
    assert [(r.pattern, r.priority) for r in ctx.rules] == [("*://127.0.0.1/demo/hr/old.html", 7)]
    assert (ctx.fallback, ctx.exclusive) == (False, True)
