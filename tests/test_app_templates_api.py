"""App templates in the admin API and the console ("New app from template"), over HTTP with
forged tokens and console sessions. The templates here are a small library of this test's own (a
hosted helpdesk and an HR suite), not the shipped ones; one test checks every shipped template
previews with its example tenant. The loader itself is tested in tests/test_app_templates.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.app_templates import TEMPLATES_DIR, TemplateError, load_templates
from server.settings import Settings
from tests.test_admin_console import sign_in
from tests.tokens import TokenMaker

A = "/api/v1/admin"
T = f"{A}/app-templates"

HELPDESK = """\
id: helpdesk
name: Harbor Helpdesk
description: The agent workspace of a hosted helpdesk.
tenant: {label: Helpdesk subdomain, example: northwind, pattern: "[a-z0-9][a-z0-9-]{0,40}"}
app:
  rules: ["https://{tenant}.harbordesk.example/**"]
  contexts:
    - {id: ticket-new, name: New ticket, rules: ["https://{tenant}.harbordesk.example/a/tickets/new"]}
    - id: ticket
      name: Ticket
      rules: ["https://{tenant}.harbordesk.example/a/tickets/*"]
    - id: home
      name: Helpdesk home
      fallback: true
      rules: ["https://{tenant}.harbordesk.example/**"]
samples:
  - {url: "https://northwind.harbordesk.example/a/tickets/new", contexts: [ticket-new, ticket]}
  - {url: "https://northwind.harbordesk.example/a/tickets/812", context: ticket}
  - {url: "https://northwind.harbordesk.example/a/dashboard", context: home}
"""

PEOPLE = """\
id: peoplesuite
name: Lumen People
description: An HR suite on its customers' own hosts.
tenant: {label: Company code, example: nw01, pattern: "[a-z]{2}[0-9]{2}"}
app:
  rules: ["https://hr.lumen.example/{tenant}/**"]
  contexts:
    - {id: leave, name: Request leave, rules: ["https://hr.lumen.example/{tenant}/leave/new"]}
samples:
  - {url: "https://hr.lumen.example/nw01/leave/new", context: leave}
"""


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "app-templates"
    folder.mkdir()
    (folder / "helpdesk.yaml").write_text(HELPDESK, encoding="utf-8")
    (folder / "peoplesuite.yaml").write_text(PEOPLE, encoding="utf-8")
    return folder


@pytest.fixture
async def client(
    aiohttp_client: Any, make_settings: Callable[..., Settings], template_dir: Path
) -> TestClient:
    return await aiohttp_client(create_app(make_settings(app_templates_dir=template_dir)))


@pytest.fixture
def admin_token(tokens: TokenMaker) -> str:
    return tokens.token(sub="admin-1", roles=("learner", "author", "admin"))


def _problem(resp: Any) -> None:
    assert resp.content_type == "application/problem+json", resp.content_type


async def test_list_shows_each_template_with_its_tenant_field_and_pages(
    client: TestClient, admin: dict[str, str]
) -> None:
    resp = await client.get(T, headers=admin)
    assert resp.status == 200, await resp.text()
    listed = {t["id"]: t for t in (await resp.json())["templates"]}
    assert set(listed) == {"helpdesk", "peoplesuite"}
    desk = listed["helpdesk"]
    assert desk["name"] == "Harbor Helpdesk"
    assert desk["tenant"] == {
        "label": "Helpdesk subdomain",
        "example": "northwind",
        "pattern": "[a-z0-9][a-z0-9-]{0,40}",
    }
    assert desk["hosts"] == ["northwind.harbordesk.example"]
    assert [c["name"] for c in desk["contexts"]] == ["New ticket", "Ticket", "Helpdesk home"]


@pytest.mark.parametrize("role", ["learner", "author", "reviewer", "mentor", "api-write"])
async def test_only_those_who_may_create_apps_see_or_apply_templates(
    client: TestClient, tokens: TokenMaker, role: str
) -> None:
    """Templates make apps: the roles of app creation (server/permissions.py), nobody else."""
    headers = tokens.auth(sub=f"only-{role}", roles=(role,))
    for method, path, body in [
        ("GET", T, None),
        ("GET", f"{T}/helpdesk?tenant=acme", None),
        ("POST", f"{T}/helpdesk/apply", {"tenant": "acme"}),
    ]:
        resp = await client.request(method, path, json=body, headers=headers)
        assert resp.status == 403, (role, path)
        _problem(resp)
    resp = await client.get(f"{A}/apps/helpdesk", headers=tokens.auth(roles=("admin",)))
    assert resp.status == 404


async def test_preview_shows_the_app_a_tenant_gets_and_creates_nothing(
    client: TestClient, admin: dict[str, str]
) -> None:
    resp = await client.get(f"{T}/helpdesk?tenant=contoso-eu", headers=admin)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    shown = body["preview"]
    assert shown["tenant"] == "contoso-eu"
    assert shown["hosts"] == ["contoso-eu.harbordesk.example"]
    assert shown["conflicts"] == []
    app = shown["app"]
    assert app["id"] == "helpdesk" and app["name"] == "Harbor Helpdesk"
    assert [c["id"] for c in app["contexts"]] == [
        "helpdesk-ticket-new",
        "helpdesk-ticket",
        "helpdesk-home",
    ]
    assert app["contexts"][0]["rules"][0]["pattern"] == (
        "https://contoso-eu.harbordesk.example/a/tickets/new"
    )
    assert app["contexts"][2]["fallback"] is True
    # The real URL shapes it was checked against, and where each lands.
    assert body["samples"][0] == {
        "url": "https://northwind.harbordesk.example/a/tickets/new",
        "app": True,
        "contexts": [
            {"id": "ticket-new", "name": "New ticket"},
            {"id": "ticket", "name": "Ticket"},
        ],
    }
    # Without a tenant: the template's example. With app_id and name: those.
    resp = await client.get(f"{T}/helpdesk", headers=admin)
    assert (await resp.json())["preview"]["hosts"] == ["northwind.harbordesk.example"]
    resp = await client.get(f"{T}/helpdesk?tenant=acme&app_id=acme-desk&name=Desk", headers=admin)
    app = (await resp.json())["preview"]["app"]
    assert (app["id"], app["name"], app["contexts"][0]["id"]) == (
        "acme-desk",
        "Desk",
        "acme-desk-ticket-new",
    )
    assert (await client.get(f"{A}/apps/helpdesk", headers=admin)).status == 404


@pytest.mark.parametrize(
    "tenant",
    ["Contoso", "contoso.harbordesk.example/evil", "*", "{digits}", "a b", "x" * 60, ""],
)
async def test_a_tenant_that_does_not_fit_is_a_422_saying_what_it_must_look_like(
    client: TestClient, admin: dict[str, str], tenant: str
) -> None:
    """A tenant is the customer's host label: a wildcard, a placeholder, a path or an upper-case
    name would make rules that match other hosts or nothing at all."""
    for resp in (
        await client.get(T + "/helpdesk", params={"tenant": tenant}, headers=admin),
        await client.post(f"{T}/helpdesk/apply", json={"tenant": tenant}, headers=admin),
    ):
        assert resp.status == 422, (tenant, await resp.text())
        _problem(resp)
        problem = await resp.json()
        assert "Helpdesk subdomain" in problem["detail"]
        assert "northwind" in problem["detail"]  # the example
        assert problem["fields"] == ["tenant"]
    assert (await client.get(f"{A}/apps/helpdesk", headers=admin)).status == 404


async def test_apply_creates_the_app_with_its_contexts_through_the_admin_service(
    client: TestClient, admin: dict[str, str], learner: dict[str, str]
) -> None:
    resp = await client.post(f"{T}/helpdesk/apply", json={"tenant": "contoso"}, headers=admin)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert resp.headers["Location"] == f"{A}/apps/helpdesk"
    assert created["id"] == "helpdesk"
    assert [c["id"] for c in created["contexts"]] == [
        "helpdesk-ticket-new",
        "helpdesk-ticket",
        "helpdesk-home",
    ]
    # It is a normal app now: its ETag, in the rules document, in the rule tester.
    resp = await client.get(f"{A}/apps/helpdesk", headers=admin)
    assert resp.status == 200 and resp.headers["ETag"] == created_etag(created, resp)
    rules = await (await client.get("/api/v1/rules", headers=learner)).json()
    assert "helpdesk-ticket" in {c["id"] for c in rules["contexts"]}
    tested = await client.post(
        f"{A}/rules/test",
        json={"url": "https://contoso.harbordesk.example/a/tickets/5521"},
        headers=admin,
    )
    result = await tested.json()
    assert result["app"]["id"] == "helpdesk"
    assert [c["id"] for c in result["contexts"]] == ["helpdesk-ticket"]
    # Another customer's host is not this app.
    tested = await client.post(
        f"{A}/rules/test",
        json={"url": "https://contoso.harbordesk.example.evil.io/a/tickets/5521"},
        headers=admin,
    )
    assert (await tested.json())["app"] is None
    # The audit log says who created it, like any other app, and from which template.
    audit = await (await client.get(f"{A}/audit?target_id=helpdesk", headers=admin)).json()
    assert [e["action"] for e in audit["entries"]] == ["app.create"]
    detail = audit["entries"][0]["detail"]
    assert (detail["template"], detail["tenant"]) == ("helpdesk", "contoso")


def created_etag(created: dict[str, Any], resp: Any) -> str:
    """The ETag GET answers is a valid one for the created app (If-Match works with it)."""
    tag = resp.headers["ETag"]
    assert re.fullmatch(r'"app-[0-9a-f]+"', tag), tag
    return str(tag)


async def test_an_existing_app_id_is_a_409_and_another_id_works(
    client: TestClient, admin: dict[str, str]
) -> None:
    """Applying a template twice must not overwrite the first app (its pins would be lost)."""
    first = await client.post(f"{T}/helpdesk/apply", json={"tenant": "contoso"}, headers=admin)
    assert first.status == 201
    etag = (await client.get(f"{A}/apps/helpdesk", headers=admin)).headers["ETag"]
    again = await client.post(f"{T}/helpdesk/apply", json={"tenant": "fabrikam"}, headers=admin)
    assert again.status == 409
    _problem(again)
    assert "helpdesk" in (await again.json())["detail"]
    resp = await client.get(f"{A}/apps/helpdesk", headers=admin)
    assert resp.headers["ETag"] == etag  # unchanged: still contoso
    assert "contoso.harbordesk" in (await resp.json())["rules"][0]["pattern"]
    # The preview says so before anyone clicks.
    shown = (await (await client.get(f"{T}/helpdesk?tenant=x1", headers=admin)).json())["preview"]
    assert shown["conflicts"] and "exists already" in shown["conflicts"][0]
    # A second instance under its own id gets its own context ids.
    resp = await client.post(
        f"{T}/helpdesk/apply",
        json={"tenant": "fabrikam", "app_id": "helpdesk-fabrikam", "name": "Fabrikam desk"},
        headers=admin,
    )
    assert resp.status == 201, await resp.text()
    app = await resp.json()
    assert app["name"] == "Fabrikam desk"
    assert app["contexts"][0]["id"] == "helpdesk-fabrikam-ticket-new"


async def test_the_answers_are_what_the_openapi_document_declares(
    client: TestClient, admin: dict[str, str]
) -> None:
    """List, preview (with a conflict, with rule warnings) and apply, each checked against its
    schema in the served document."""
    doc = await (await client.get("/api/v1/openapi.json")).json()

    def check(path: str, method: str, status: str, body: Any) -> None:
        op = doc["paths"][path][method]
        schema = op["responses"][status]["content"]["application/json"]["schema"]
        validator = jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]})
        validator.validate(body)

    check(T, "get", "200", await (await client.get(T, headers=admin)).json())
    resp = await client.post(f"{T}/helpdesk/apply", json={"tenant": "contoso"}, headers=admin)
    assert resp.status == 201
    check(f"{T}/{{template_id}}/apply", "post", "201", await resp.json())
    # Now a preview clashes (the same app id), or overlaps (another id, the same host's rules).
    shown = await (await client.get(f"{T}/helpdesk?tenant=contoso", headers=admin)).json()
    assert shown["preview"]["conflicts"]
    check(f"{T}/{{template_id}}", "get", "200", shown)
    resp = await client.get(f"{T}/helpdesk?tenant=contoso&app_id=desk-two", headers=admin)
    shown = await resp.json()
    assert not shown["preview"]["conflicts"] and shown["preview"]["warnings"]
    check(f"{T}/{{template_id}}", "get", "200", shown)
    body = doc["paths"][f"{T}/{{template_id}}/apply"]["post"]["requestBody"]
    assert set(body["content"]["application/json"]["schema"]["properties"]) == {
        "tenant",
        "app_id",
        "name",
    }


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (f"{T}/nosuch/apply", {"tenant": "acme"}, 404),
        (f"{T}/helpdesk/apply", {}, 422),
        (f"{T}/helpdesk/apply", {"tenant": "acme", "rules": []}, 422),
        (f"{T}/helpdesk/apply", {"tenant": ["acme"]}, 422),
        (f"{T}/helpdesk/apply", ["acme"], 422),
        (f"{T}/helpdesk/apply", {"tenant": "acme", "app_id": "Not A Slug"}, 422),
    ],
)
async def test_bad_requests_are_problems(
    client: TestClient, admin: dict[str, str], path: str, body: Any, status: int
) -> None:
    resp = await client.post(path, json=body, headers=admin)
    assert resp.status == status, await resp.text()
    _problem(resp)
    for bad in (f"{T}/nosuch", f"{T}/helpdesk?tenant=acme&rules=x", f"{T}?x=1"):
        resp = await client.get(bad, headers=admin)
        assert resp.status in {404, 422}, bad
        _problem(resp)


async def test_a_broken_template_stops_the_start_up_naming_its_file(
    make_settings: Callable[..., Settings], template_dir: Path
) -> None:
    """A template that cannot make a valid app fails at start-up, not in front of an admin."""
    broken = HELPDESK.replace("https://{tenant}.harbordesk.example/a/tickets/*", "re:(")
    (template_dir / "helpdesk.yaml").write_text(broken, encoding="utf-8")
    runner = web.AppRunner(create_app(make_settings(app_templates_dir=template_dir)))
    try:
        with pytest.raises(TemplateError, match=r"helpdesk\.yaml"):
            await runner.setup()
    finally:
        await runner.cleanup()


async def test_every_shipped_template_previews_with_its_example_tenant(
    aiohttp_client: Any, make_settings: Callable[..., Settings], admin: dict[str, str]
) -> None:
    """The templates in content/app-templates/ (the default setting) list and preview cleanly
    next to the demo apps: no conflicts, their hosts shown."""
    shipped = load_templates(TEMPLATES_DIR)
    assert len(shipped) >= 10
    client = await aiohttp_client(create_app(make_settings()))
    listed = (await (await client.get(T, headers=admin)).json())["templates"]
    assert {t["id"] for t in listed} == set(shipped)
    for template in shipped.values():
        resp = await client.get(f"{T}/{template.id}", headers=admin)
        assert resp.status == 200, (template.id, await resp.text())
        shown = (await resp.json())["preview"]
        assert shown["conflicts"] == [], template.id
        assert shown["hosts"], template.id
        assert shown["app"]["contexts"], template.id


# -- the console -----------------------------------------------------------------------------------


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_console_new_app_from_template(client: TestClient, admin_token: str) -> None:
    """Apps page button, template cards, tenant, preview of hosts and pages, create (CSRF), the
    new app's page with a notice."""
    csrf = await sign_in(client, admin_token)
    apps = await (await client.get("/admin/apps")).text()
    assert 'href="/admin/app-templates"' in apps and "New app from template" in apps

    cards = await (await client.get("/admin/app-templates")).text()
    assert re.search(r'<a href="/admin/apps"[^>]*aria-current="page"', cards)  # still "Apps"
    assert 'href="/admin/app-templates/helpdesk"' in cards
    words = _text(cards)
    assert "Harbor Helpdesk" in words and "The agent workspace of a hosted helpdesk." in words
    assert "New ticket, Ticket, Helpdesk home" in words  # the pages it knows

    page = await (await client.get("/admin/app-templates/helpdesk")).text()
    assert "Helpdesk subdomain" in page and 'placeholder="northwind"' in page
    assert "https://northwind.harbordesk.example/a/tickets/812" in page  # a sample, its page:
    assert "New ticket, then Ticket" in _text(page)
    assert 'id="template-preview"' not in page  # no tenant yet: nothing to preview

    resp = await client.get("/admin/app-templates/helpdesk?tenant=contoso")
    assert resp.status == 200
    words = _text(await resp.text())
    assert "contoso.harbordesk.example" in words
    assert "https://contoso.harbordesk.example/a/tickets/new" in words
    assert "general page (when nothing more specific matches)" in words
    assert "Create Harbor Helpdesk with 3 pages" in words

    # Without the CSRF token: refused, nothing created.
    resp = await client.post(
        "/admin/app-templates/helpdesk", data={"tenant": "contoso"}, allow_redirects=False
    )
    assert resp.status == 403
    assert (await client.get("/admin/apps/helpdesk")).status == 404

    resp = await client.post(
        "/admin/app-templates/helpdesk",
        data={"csrf_token": csrf, "tenant": "contoso", "app_id": "", "name": ""},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/admin/apps/helpdesk?notice=from-template"
    page = _text(await (await client.get(resp.headers["Location"])).text())
    assert "Created from the template" in page
    assert "New ticket" in page and "Helpdesk home" in page

    # Once more: a readable 409 on the template page, the form as typed, and the preview says why.
    resp = await client.post(
        "/admin/app-templates/helpdesk",
        data={"csrf_token": csrf, "tenant": "fabrikam"},
        allow_redirects=False,
    )
    assert resp.status == 409
    html = await resp.text()
    assert "An app with id &#39;helpdesk&#39; exists already" in html
    assert 'value="fabrikam"' in html
    assert 'id="create-form"' not in html


async def test_console_bad_tenant_comes_back_with_its_message(
    client: TestClient, admin_token: str
) -> None:
    await sign_in(client, admin_token)
    resp = await client.get("/admin/app-templates/peoplesuite?tenant=Northwind%20Inc")
    assert resp.status == 422
    html = await resp.text()
    assert 'id="tenant-error"' in html and "Company code" in html and "nw01" in html
    assert 'value="Northwind Inc"' in html and 'aria-invalid="true"' in html
    assert 'id="template-preview"' not in html
    resp = await client.get("/admin/app-templates/nosuch")
    assert resp.status == 404
    assert "No app template with id" in await resp.text()


async def test_console_authors_get_neither_the_button_nor_the_pages(
    client: TestClient, tokens: TokenMaker
) -> None:
    csrf = await sign_in(client, tokens.token(sub="author-1", roles=("author",)))
    apps = await (await client.get("/admin/apps")).text()
    assert 'href="/admin/app-templates"' not in apps
    assert (await client.get("/admin/app-templates")).status == 403
    resp = await client.post(
        "/admin/app-templates/helpdesk",
        data={"csrf_token": csrf, "tenant": "contoso"},
        allow_redirects=False,
    )
    assert resp.status == 403
