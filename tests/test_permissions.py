"""One permission table (server/permissions.py) read by the routes, the service, the console and the
OpenAPI document: each caller with a single role gets exactly the answer the table says.

Incident: creating an aid was allowed to a different set of roles by the route decorator
(author, api-write), the service (author, reviewer, admin), the console and the OpenAPI text
(author, reviewer, admin, api-write): a reviewer-only caller was refused by the middleware while
the docs and the console allowed it, and an api-write-only caller passed the middleware and was
then refused by the service. The export route refused reviewers the docs allow.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.openapi import document
from server.permissions import ADMIN_ROLE, INFLOW_ROLES, PERMISSIONS, may, roles_for
from server.security import Access, access_of
from server.settings import Settings
from tests.tokens import TokenMaker

ROLES = sorted(INFLOW_ROLES)
PARAMS = {
    "app_id": "hr",
    "ctx_id": "hr-timeoff",
    "aid_id": "exp-missing-receipt",
    "mentor_id": "ana-costa",
    "version": "1",
    "report": "adoption",
    "table": "daily",
    "template_id": "servicenow",
    "tip_id": "no-such-tip",
    "question_id": "no-such-question",
    "pairing_id": "no-such-pairing",
    "rule_id": "no-such-rule",
    "flag_id": "no-such-flag",
    "source_id": "no-such-source",
    "run_id": "no-such-run",
    "item_id": "no-such-item",
    "assignment_id": "no-such-assignment",
    "path_id": "no-such-path",
    "step_id": "no-such-step",
}


def _operations() -> list[tuple[str, str, str]]:
    out = []
    for path, methods in document()["paths"].items():
        for method, op in methods.items():
            if "x-operation" in op and path.startswith("/api/"):
                out.append((path, method, op["x-operation"]))
    return out


OPERATIONS = _operations()


def _headers(tokens: TokenMaker, role: str) -> dict[str, str]:
    if role in {"api", "api-write"}:  # client roles of inflow-api, as Keycloak issues them
        return tokens.auth(
            sub=f"only-{role}", roles=(), resource_access={"inflow-api": {"roles": [role]}}
        )
    return tokens.auth(sub=f"only-{role}", roles=(role,))


def test_every_operation_of_the_document_is_in_the_table() -> None:
    assert {op for _, _, op in OPERATIONS} <= set(PERMISSIONS)
    assert len(OPERATIONS) >= 40


def test_docs_admin_md_expectations() -> None:
    """A few rows of docs/admin.md's role table, written out so the table cannot drift silently."""
    assert roles_for("aid.create") == {"author", "reviewer", "admin"}
    assert roles_for("aid.update") == {"author", "reviewer", "admin"}
    assert roles_for("aid.publish") == {"reviewer", "admin"}
    assert roles_for("import") == {"api-write", "admin"}
    assert roles_for("export") == {"author", "reviewer", "admin", "api-write"}
    for op in ("app.write", "context.write", "mapping.write", "aid.delete", "mentor.write"):
        assert roles_for(op) == {"admin"}, op
    assert roles_for("audit.read") == {"admin"}
    assert not may({"learner"}, "aid.read")
    assert not may({"api-write"}, "aid.create")  # it adds exactly import and export
    assert may({"author", "api-write"}, "aid.create")  # the inflow-cli service account
    assert all(may({ADMIN_ROLE}, op) for op in PERMISSIONS)


def test_docs_admin_md_peer_learning_rows() -> None:
    """docs/admin.md's peer learning table, row by row (app owners are the service's check)."""
    for op in ("peer.read", "tip.write", "tip.report", "question.ask"):
        assert roles_for(op) == INFLOW_ROLES | {ADMIN_ROLE}, op
    assert roles_for("tip.moderate") == {"reviewer", "admin"}
    for op in ("tip.endorse", "question.answer", "aid.recommend", "aid.flag", "mentee.read"):
        assert roles_for(op) == {"mentor", "admin"}, op
    assert roles_for("question.read") == {"mentor", "reviewer", "admin"}
    assert roles_for("question.to_aid") == {"author", "reviewer", "admin"}
    for op in ("flag.read", "flag.resolve"):
        assert roles_for(op) == {"author", "reviewer", "admin"}, op
    for op in ("pairing.read", "pairing.write", "outbox.read", "outbox.retry"):
        assert roles_for(op) == {"admin"}, op
    assert not may({"learner"}, "tip.moderate")  # owners pass the service's check, not this
    assert not may({"mentor"}, "question.to_aid")
    assert not may({"author"}, "question.answer")


def test_docs_admin_md_content_that_stays_current_rows() -> None:
    """docs/admin.md's sources, health, queue and transcript rows (issue 13)."""
    editors = {"author", "reviewer", "admin"}
    for op in ("source.read", "health.read", "health.check", "queue.read", "transcript.write"):
        assert roles_for(op) == editors, op
    for op in ("source.write", "source.sync"):
        assert roles_for(op) == {"admin"}, op
    for op in ("queue.write", "queue.refresh"):
        assert roles_for(op) == {"reviewer", "admin"}, op
    assert not may({"learner"}, "source.read")
    assert not may({"author"}, "queue.write")  # an assignee's status change: the service's check


def test_docs_admin_md_learning_path_rows() -> None:
    """docs/admin.md's learning path rows (issue 14): L&D (reviewers) curate and assign, managers
    see reports and nothing else, every Inflow role follows its own paths."""
    editors = {"author", "reviewer", "admin"}
    assert roles_for("path.read") == editors
    for op in ("path.write", "path.assign"):
        assert roles_for(op) == {"reviewer", "admin"}, op
    assert roles_for("path.report") == {"reviewer", "admin", "manager"}
    assert roles_for("path.learn") == INFLOW_ROLES | {ADMIN_ROLE}
    assert not may({"author"}, "path.write")
    assert not may({"learner"}, "path.report")
    manager_ops = {op for op in PERMISSIONS if may({"manager"}, op)}
    assert manager_ops == {"path.report"}  # a manager alone opens nothing else


async def test_every_route_reads_the_table(client: TestClient) -> None:
    """The handler's mark and the OpenAPI entry name the same operation, with the table's roles."""
    app: web.Application = client.app
    marks: dict[tuple[str, str], Access] = {}

    def walk(a: web.Application) -> None:
        for route in a.router.routes():
            info = route.resource.get_info() if route.resource else {}
            path = info.get("path") or info.get("formatter")
            if path:
                marks[(path, route.method.lower())] = access_of(route.handler, path)
        for sub in getattr(a, "_subapps", []):
            walk(sub)

    walk(app)
    for path, method, op in OPERATIONS:
        access = marks.get((path, method))
        assert access is not None, (path, method)
        effective = (access.roles or INFLOW_ROLES) | {ADMIN_ROLE}  # unmarked: any Inflow role
        assert effective == roles_for(op), (path, method, op)
        if access.operation:
            assert access.operation == op, (path, method)


async def _call(client: TestClient, path: str, method: str, headers: dict[str, str]) -> int:
    url = path.format(**PARAMS)
    kwargs: dict[str, Any] = {"headers": headers}
    if method in {"post", "put", "patch"}:
        kwargs["json"] = {}
    resp = await client.request(method.upper(), url, **kwargs)
    await resp.read()
    return resp.status


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=lambda v: str(v))
async def test_each_single_role_gets_what_the_table_says(
    aiohttp_client: Any, settings: Settings, tokens: TokenMaker, path: str, method: str, op: str
) -> None:
    client = await aiohttp_client(create_app(settings))
    for role in ROLES:
        status = await _call(client, path, method, _headers(tokens, role))
        assert status < 500, (role, status)
        if may({role}, op):
            assert status != 403, f"{role} refused {method.upper()} {path} ({op})"
        else:
            assert status == 403, f"{role} allowed {method.upper()} {path} ({op}): {status}"


NEW_AID = {"id": "perm-probe", "title": "Probe", "apps": ["hr"]}


async def test_create_aid_roles_agree_end_to_end(client: TestClient, tokens: TokenMaker) -> None:
    """Reviewer-only creates (docs and console allow it); api-write-only is refused up front with
    the same roles the OpenAPI document lists; an author cannot create an aid as published."""
    resp = await client.post(
        "/api/v1/admin/aids", json=NEW_AID, headers=_headers(tokens, "reviewer")
    )
    assert resp.status == 201, await resp.text()
    resp = await client.post(
        "/api/v1/admin/aids", json={**NEW_AID, "id": "p2"}, headers=_headers(tokens, "api-write")
    )
    assert resp.status == 403
    body = await resp.json()
    documented = document()["paths"]["/api/v1/admin/aids"]["post"]["x-required-roles"]
    assert body["required_roles"] == documented == ["admin", "author", "reviewer"]
    resp = await client.post(
        "/api/v1/admin/aids",
        json={**NEW_AID, "id": "p3", "status": "published"},
        headers=_headers(tokens, "author"),
    )
    assert resp.status == 403
    assert (await resp.json())["required_roles"] == sorted(roles_for("aid.publish"))
    resp = await client.post(
        "/api/v1/admin/aids",
        json={**NEW_AID, "id": "p4", "status": "published"},
        headers=_headers(tokens, "reviewer"),
    )
    assert resp.status == 201


async def test_reviewer_may_export(client: TestClient, tokens: TokenMaker) -> None:
    """docs/admin.md lets reviewers export; the route used to refuse them (author, api-write)."""
    resp = await client.get("/api/v1/admin/export", headers=_headers(tokens, "reviewer"))
    assert resp.status == 200
    assert resp.content_type == "application/zip"
