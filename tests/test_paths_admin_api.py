"""Learning paths in the admin API (server/paths/admin_api.py): L&D creates, changes and deletes
paths and assigns them; references are checked against the catalog with 422s naming the step;
ETags protect concurrent edits; answers match the OpenAPI document; every refusal is
problem+json."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
from aiohttp.test_utils import TestClient

from server.openapi import document
from tests.tokens import TokenMaker

BASE = "/api/v1/admin/paths"
STEPS: list[dict[str, Any]] = [
    {"id": "log", "kind": "aid", "title": "Log a call", "aid_id": "crm-log-activity"},
    {
        "id": "course",
        "kind": "course",
        "title": "CRM basics course",
        "url": "https://lms.example.com/courses/crm-101",
        "activity_id": "https://lms.example.com/xapi/activities/crm-101",
    },
    {
        "id": "practise",
        "kind": "practice",
        "title": "Create a practice opportunity",
        "checklist": ["Create it", "Move it to Qualify"],
    },
    {"id": "talk", "kind": "mentor", "title": "Talk to a mentor", "mentor_id": "maria-lopez"},
]
PATH = {"id": "crm-start", "title": "CRM start", "audience": ["sales"], "steps": STEPS}


def reviewer(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="rita", roles=("learner", "author", "reviewer"))


def _check(path: str, method: str, status: str, body: Any) -> None:
    """The answer matches the schema the OpenAPI document gives for it."""
    doc = document()
    schema = doc["paths"][path][method]["responses"][status]["content"]["application/json"]
    validator = jsonschema_rs.Draft202012Validator(
        {**schema["schema"], "components": doc["components"]}
    )
    validator.validate(body)


async def _problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json()
    return body


async def test_a_reviewer_creates_reads_changes_and_deletes_a_path(
    client: TestClient, tokens: TokenMaker
) -> None:
    rita = reviewer(tokens)
    resp = await client.post(BASE, json=PATH, headers=rita)
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    _check(BASE, "post", "201", made)
    assert made["owner"] == "rita" and made["version"] == 1
    assert [s["kind"] for s in made["steps"]] == ["aid", "course", "practice", "mentor"]
    etag = resp.headers["ETag"]

    resp = await client.get(f"{BASE}/crm-start", headers=rita)
    got = await resp.json()
    _check(BASE + "/{path_id}", "get", "200", got)
    assert got == made and resp.headers["ETag"] == etag
    listed = await (await client.get(BASE, headers=rita)).json()
    _check(BASE, "get", "200", listed)
    assert [p["id"] for p in listed["paths"]] == ["crm-start"]

    # read-modify-write: what GET gave, one step moved, sent back with its ETag
    got["steps"] = [got["steps"][1], got["steps"][0], *got["steps"][2:]]
    got["title"] = "CRM: the first week"
    resp = await client.put(f"{BASE}/crm-start", json=got, headers={**rita, "If-Match": etag})
    assert resp.status == 200, await resp.text()
    changed = await resp.json()
    _check(BASE + "/{path_id}", "put", "200", changed)
    assert changed["version"] == 2 and changed["title"] == "CRM: the first week"
    assert [s["id"] for s in changed["steps"]][:2] == ["course", "log"]
    assert changed["created_at"] == made["created_at"]

    # the old ETag is stale now: 412, before the body is even looked at
    resp = await client.put(
        f"{BASE}/crm-start", json={"title": ""}, headers={**rita, "If-Match": etag}
    )
    assert "current_etag" in await _problem(resp, 412)
    resp = await client.delete(f"{BASE}/crm-start", headers={**rita, "If-Match": etag})
    await _problem(resp, 412)
    resp = await client.delete(f"{BASE}/crm-start", headers=rita)
    assert resp.status == 204
    await _problem(await client.get(f"{BASE}/crm-start", headers=rita), 404)


async def test_references_are_checked_and_errors_name_the_step(
    client: TestClient, tokens: TokenMaker
) -> None:
    """An L&D admin who mistypes an aid id learns which step is wrong, not just 'invalid'."""
    steps = [
        {**STEPS[0], "aid_id": "crm-no-such-aid"},
        {"id": "old", "kind": "aid", "title": "Old tool", "aid_id": "crm-legacy-quote-tool"},
        {**STEPS[3], "mentor_id": "nobody-here"},
        {"id": "app", "kind": "mentor", "title": "A mentor of the app", "app_id": "no-app"},
        {"id": "fine", "kind": "mentor", "title": "A CRM mentor", "app_id": "crm"},
    ]
    resp = await client.post(BASE, json={**PATH, "steps": steps}, headers=reviewer(tokens))
    body = await _problem(resp, 422)
    assert {e["field"]: e["message"] for e in body["errors"]} == {
        "steps[0].aid_id": "no aid 'crm-no-such-aid'",
        "steps[1].aid_id": "the aid 'crm-legacy-quote-tool' is archived",
        "steps[2].mentor_id": "no mentor 'nobody-here'",
        "steps[3].app_id": "no app 'no-app'",
    }
    assert body["fields"] == ["steps"]
    # the field checks come first, with the same paths
    resp = await client.post(
        BASE,
        json={**PATH, "steps": [{"id": "c", "kind": "course", "title": "C"}]},
        headers=reviewer(tokens),
    )
    fields = {e["field"] for e in (await _problem(resp, 422))["errors"]}
    assert fields == {"steps[0].url", "steps[0].activity_id"}


async def test_read_only_fields_and_ids(client: TestClient, tokens: TokenMaker) -> None:
    rita = reviewer(tokens)
    await _problem(await client.post(BASE, json={**PATH, "version": 3}, headers=rita), 422)
    assert (await client.post(BASE, json=PATH, headers=rita)).status == 201
    await _problem(await client.post(BASE, json=PATH, headers=rita), 409)
    got = await (await client.get(f"{BASE}/crm-start", headers=rita)).json()
    body = await _problem(
        await client.put(f"{BASE}/crm-start", json={**got, "version": 9}, headers=rita), 422
    )
    assert body["fields"] == ["version"]
    body = await _problem(
        await client.put(f"{BASE}/crm-start", json={**got, "id": "other"}, headers=rita), 422
    )
    assert body["fields"] == ["id"]
    await _problem(await client.put(f"{BASE}/nothing", json=got, headers=rita), 404)


async def test_only_l_and_d_write_paths(client: TestClient, tokens: TokenMaker) -> None:
    """Authors read paths but neither write nor assign them; learners see none of this API."""
    author = tokens.auth(sub="arthur", roles=("learner", "author"))
    learner = tokens.auth(sub="lena", roles=("learner",))
    body = await _problem(await client.post(BASE, json=PATH, headers=author), 403)
    assert body["required_roles"] == ["admin", "reviewer"]
    assert (await client.get(BASE, headers=author)).status == 200
    await _problem(await client.get(BASE, headers=learner), 403)
    manager = tokens.auth(sub="max", roles=("learner", "manager"))
    await _problem(await client.get(BASE, headers=manager), 403)


async def test_assignments_by_group_or_person(client: TestClient, tokens: TokenMaker) -> None:
    rita = reviewer(tokens)
    assert (await client.post(BASE, json=PATH, headers=rita)).status == 201
    url = f"{BASE}/crm-start/assignments"
    resp = await client.post(
        url, json={"group": "/new-hires", "due_on": "2027-02-01"}, headers=rita
    )
    assert resp.status == 201, await resp.text()
    group = await resp.json()
    _check(BASE + "/{path_id}/assignments", "post", "201", group)
    assert (group["group"], group["username"], group["due_on"]) == ("new-hires", "", "2027-02-01")
    assert group["assigned_by"] == "rita" and group["path_id"] == "crm-start"
    resp = await client.post(url, json={"username": "nora"}, headers=rita)
    assert resp.status == 201
    person = await resp.json()

    body = await _problem(await client.post(url, json={"group": "new-hires"}, headers=rita), 409)
    assert "new-hires" in body["detail"]
    await _problem(await client.post(url, json={"username": "nora"}, headers=rita), 409)
    body = await _problem(
        await client.post(url, json={"group": "sales", "username": "nora"}, headers=rita), 422
    )
    assert body["errors"] == [
        {"field": "username", "message": "give a group or a username, not both"}
    ]
    await _problem(await client.post(url, json={"group": "g", "due_on": "soon"}, headers=rita), 422)
    await _problem(await client.post(url, json={"group": "g", "path_id": "x"}, headers=rita), 422)
    await _problem(
        await client.post(f"{BASE}/nothing/assignments", json={"group": "g"}, headers=rita), 404
    )

    listed = await (await client.get(url, headers=rita)).json()
    _check(BASE + "/{path_id}/assignments", "get", "200", listed)
    assert [(a["group"], a["username"]) for a in listed["assignments"]] == [
        ("", "nora"),
        ("new-hires", ""),
    ]
    assert (await client.delete(f"{url}/{person['id']}", headers=rita)).status == 204
    await _problem(await client.delete(f"{url}/{person['id']}", headers=rita), 404)
    # deleting the path takes its assignments with it
    assert (await client.delete(f"{BASE}/crm-start", headers=rita)).status == 204
    await _problem(await client.get(url, headers=rita), 404)
    assert (await client.post(BASE, json=PATH, headers=rita)).status == 201
    assert (await (await client.get(url, headers=rita)).json())["assignments"] == []


async def test_changes_are_audited(client: TestClient, tokens: TokenMaker, admin: Any) -> None:
    rita = reviewer(tokens)
    assert (await client.post(BASE, json=PATH, headers=rita)).status == 201
    url = f"{BASE}/crm-start/assignments"
    assert (await client.post(url, json={"group": "sales"}, headers=rita)).status == 201
    resp = await client.get("/api/v1/admin/audit", headers=admin)
    assert resp.status == 200, await resp.text()
    entries = (await resp.json())["entries"]
    actions = [(e["action"], e["target_id"], e["who"]["username"]) for e in entries]
    assert ("path.create", "crm-start", "rita") in actions
    assert ("path.assign", "crm-start", "rita") in actions
