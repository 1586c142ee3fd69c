"""Resources declared once (server/models.py): validation, read-only fields, read-modify-write,
preconditions before the body."""

from __future__ import annotations

from typing import Any

import jsonschema_rs  # schemathesis' validator
import pytest
from aiohttp.test_utils import TestClient

from server.models import Aid, App, FieldErrors, Mentor, validate

A = "/api/v1/admin"
NEW_AID = {"id": "res-probe", "title": "Probe", "apps": ["hr"]}


def h(headers: dict[str, str], etag: str | None = None) -> dict[str, str]:
    return {**headers, "If-Match": etag} if etag else dict(headers)


async def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json()
    return body


async def test_every_field_is_checked_before_saving(
    client: TestClient, admin: dict[str, str]
) -> None:
    """Incident: `owner` and an app's `description` were validated after the "raise if errors"
    step, so a 5,000-character owner and a 9,000-character description were stored (OpenAPI
    promised 2,000), and an owner given as a list silently became ""."""
    resp = await client.post(f"{A}/aids", json={**NEW_AID, "owner": "x" * 5000}, headers=admin)
    body = await problem(resp, 422)
    assert body["fields"] == ["owner"] and "200" in body["detail"]
    resp = await client.post(f"{A}/aids", json={**NEW_AID, "owner": ["ann"]}, headers=admin)
    assert (await problem(resp, 422))["fields"] == ["owner"]
    resp = await client.post(
        f"{A}/apps", json={"id": "big", "name": "Big", "description": "d" * 9000}, headers=admin
    )
    body = await problem(resp, 422)
    assert body["fields"] == ["description"] and "2000" in body["detail"]
    # nothing was stored
    assert (await client.get(f"{A}/aids/res-probe", headers=admin)).status == 404
    assert (await client.get(f"{A}/apps/big", headers=admin)).status == 404
    # several problems at once, each named
    resp = await client.post(
        f"{A}/aids", json={"id": "Bad Id", "title": "", "type": "poster"}, headers=admin
    )
    assert set((await problem(resp, 422))["fields"]) == {"id", "title", "type"}


def test_declarations_refuse_lone_surrogates_and_name_nested_fields() -> None:
    """A YAML import can carry a lone surrogate (JSON bodies are refused earlier, by the reader)."""
    with pytest.raises(FieldErrors) as info:
        validate(Aid, {"id": "a", "title": "bad \ud800"})
    assert info.value.errors[0][0] == "title"
    with pytest.raises(FieldErrors) as info:
        validate(
            App,
            {
                "id": "x",
                "name": "X",
                "contexts": [{"id": "c", "name": "C", "rule": {"pattern": ""}}],
            },
        )
    assert info.value.errors == [("contexts[0].rule", "needs a 'pattern'")]
    with pytest.raises(FieldErrors) as info:
        validate(Mentor, {"id": "m", "name": "M", "contact": "@m", "vetted": "yes"})
    assert info.value.errors == [("vetted", "must be true or false")]


@pytest.mark.parametrize(
    ("url", "change"),
    [
        (f"{A}/aids/exp-missing-receipt", {"summary": "Changed by automation"}),
        (f"{A}/apps/hr", {"description": "Changed by automation"}),
        (f"{A}/mentors/ana-costa", {"can_help_with": "Changed by automation"}),
    ],
)
async def test_get_change_put_back(
    client: TestClient, admin: dict[str, str], url: str, change: dict[str, Any]
) -> None:
    """Incident: GET returned read-only fields (`warnings`, `contexts[].app`, version, ...) that
    PUT refused, so "GET, change one field, PUT back" automation failed."""
    resp = await client.get(url, headers=admin)
    assert resp.status == 200
    etag, doc = resp.headers["ETag"], await resp.json()
    resp = await client.put(url, json={**doc, **change}, headers=h(admin, etag))
    assert resp.status == 200, await resp.text()
    key, value = next(iter(change.items()))
    assert (await resp.json())[key] == value
    again = await (await client.get(url, headers=admin)).json()
    assert again[key] == value


async def test_get_change_patch_back_a_context(client: TestClient, admin: dict[str, str]) -> None:
    url = f"{A}/contexts/hr-timeoff"
    resp = await client.get(url, headers=admin)
    etag, doc = resp.headers["ETag"], await resp.json()
    assert doc["app"] == "hr"
    resp = await client.patch(url, json={**doc, "name": "Time off!"}, headers=h(admin, etag))
    assert resp.status == 200, await resp.text()
    assert (await (await client.get(url, headers=admin)).json())["name"] == "Time off!"


async def test_changed_read_only_fields_are_named(
    client: TestClient, admin: dict[str, str]
) -> None:
    url = f"{A}/aids/exp-missing-receipt"
    resp = await client.get(url, headers=admin)
    etag, doc = resp.headers["ETag"], await resp.json()
    resp = await client.put(url, json={**doc, "version": 99}, headers=h(admin, etag))
    body = await problem(resp, 422)
    assert body["fields"] == ["version"] and "read-only" in body["detail"].lower()
    url = f"{A}/apps/hr"
    resp = await client.get(url, headers=admin)
    etag, app = resp.headers["ETag"], await resp.json()
    app["contexts"][0]["app"] = "crm"
    resp = await client.put(url, json=app, headers=h(admin, etag))
    assert (await problem(resp, 422))["fields"] == ["app"]
    resp = await client.post(
        f"{A}/mentors",
        json={"id": "new-m", "name": "N", "contact": "@n", "vetted_by": "me"},
        headers=admin,
    )
    assert (await problem(resp, 422))["fields"] == ["vetted_by"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("PUT", f"{A}/aids/exp-missing-receipt"),
        ("PATCH", f"{A}/aids/exp-missing-receipt"),
        ("PUT", f"{A}/apps/hr"),
        ("PATCH", f"{A}/contexts/hr-timeoff"),
        ("PUT", f"{A}/mentors/ana-costa"),
        ("PATCH", f"{A}/mentors/ana-costa"),
    ],
)
async def test_preconditions_come_before_the_body(
    client: TestClient, admin: dict[str, str], method: str, url: str
) -> None:
    """Incident: a stale If-Match with a body holding a read-only field answered 422, not 412
    (RFC 9110 13.2: preconditions are evaluated before the method's own checks)."""
    invalid = {"warnings": ["x"], "version": 0, "name": "", "title": "", "vetted_by": "me"}
    resp = await client.request(method, url, json=invalid, headers=h(admin, '"stale"'))
    assert (await problem(resp, 412))["current_etag"]
    resp = await client.request(method, url, json=invalid, headers=admin)
    await problem(resp, 428)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        (f"{A}/aids/exp-missing-receipt", "Aid"),
        (f"{A}/apps/hr", "App"),
        (f"{A}/contexts/hr-timeoff", "Context"),
        (f"{A}/mentors/ana-costa", "Mentor"),
        (f"{A}/aids?limit=200", None),
        (f"{A}/apps", None),
        (f"{A}/contexts?limit=200", None),
        (f"{A}/mentors", None),
    ],
)
async def test_real_answers_match_the_documented_schemas(
    client: TestClient, admin: dict[str, str], url: str, name: str | None
) -> None:
    """The OpenAPI response schemas come from the declarations; real answers must match them."""
    doc = await (await client.get("/api/v1/openapi.json")).json()
    path = url.split("?")[0].replace("exp-missing-receipt", "{aid_id}")
    path = path.replace("hr-timeoff", "{ctx_id}").replace("/hr", "/{app_id}")
    path = path.replace("ana-costa", "{mentor_id}")
    schema = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    if name is not None:
        assert schema == {"$ref": f"#/components/schemas/{name}"}
    resp = await client.get(url, headers=admin)
    assert resp.status == 200
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]})
    errors = [e.message for e in validator.iter_errors(await resp.json())]
    assert errors == []


async def test_learner_aid_matches_its_documented_schema(
    client: TestClient, learner: dict[str, str]
) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    ok = doc["paths"]["/api/v1/aids/{aid_id}"]["get"]["responses"]["200"]
    schema = ok["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/LearnerAid"}
    resp = await client.get("/api/v1/aids/crm-create-opportunity", headers=learner)
    assert resp.status == 200
    body = await resp.json()
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]})
    assert [e.message for e in validator.iter_errors(body)] == []
    assert body["body_html"] and body["status"] == "published"
