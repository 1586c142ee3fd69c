"""The rule tester as the admin's debugger: why each rule matched or not, the contexts in effect,
the learner's sidebar; and warnings for rules that can never match."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jsonschema_rs
import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.settings import Settings
from server.urlrules import Rule, compile_rule, parse_url
from server.urlrules.explain import explain
from tests.test_admin_console import sign_in
from tests.tokens import TokenMaker


def _why(pattern: str, url: str) -> str | None:
    return explain(compile_rule(Rule("r", pattern, "t")), parse_url(url))


@pytest.mark.parametrize(
    ("pattern", "url", "why"),
    [
        (
            "https://*.service-now.com/**",
            "http://acme.service-now.com/x",
            "scheme http is not https",
        ),
        (
            "https://*.service-now.com/**",
            "https://acme.service-now.com.evil.io/home.do",
            "host acme.service-now.com.evil.io is not *.service-now.com",
        ),
        (
            "https://crm.example.com/**",
            "https://crm.example.org/",
            "host crm.example.org is not crm.example.com",
        ),
        ("https://a.example.com:443/**", "https://a.example.com:8443/x", "port 8443 is not 443"),
        (
            "https://acme.service-now.com/sc_req_item.do",
            "https://acme.service-now.com/incident.do",
            "path /incident.do does not match /sc_req_item.do",
        ),
        (
            "https://a.example.com/x.do?sys_id=*",
            "https://a.example.com/x.do",
            "query parameter sys_id missing",
        ),
        (
            "https://a.example.com/x.do?sys_id=-1",
            "https://a.example.com/x.do?sys_id=12",
            "sys_id=12 does not match -1",
        ),
        (
            "https://a.example.com/x.do?!sys_id",
            "https://a.example.com/x.do?sys_id=12",
            "query parameter sys_id is present; the rule wants it absent",
        ),
        (
            "https://a.example.com/app#/orders/*",
            "https://a.example.com/app#/quotes/1",
            "fragment route /quotes/1 does not match /orders/*",
        ),
        (
            "https://a.example.com/app#/orders/*",
            "https://a.example.com/app",
            "the URL has no fragment; the rule wants #/orders/*",
        ),
        (
            "https://a.example.com/web#?model=sale.order",
            "https://a.example.com/web#?model=res.partner",
            "fragment parameter model=res.partner does not match sale.order",
        ),
        (
            "re:^https://x\\.example\\.com/",
            "https://a.example.com/web",
            "regular expression not found",
        ),
        (
            "https://a.service-now.com/incident.do?sys_id={hex:32}",
            "https://a.service-now.com/incident.do?sys_id=12",
            "sys_id=12 does not match {hex:32}",
        ),
        (
            "https://x.lightning.force.com/lightning/r/Opportunity/006{alnum:12-15}/view",
            "https://x.lightning.force.com/lightning/r/Opportunity/001ABCDEFGHIJKL/view",
            "path /lightning/r/Opportunity/001ABCDEFGHIJKL/view does not match "
            "/lightning/r/Opportunity/006{alnum:12-15}/view",
        ),
        (
            "https://odoo.example.com/web#model=sale.order&view_type=form",
            "https://odoo.example.com/web#id=7&model=res.partner&view_type=form",
            "fragment parameter model=res.partner does not match sale.order",
        ),
        (
            "https://odoo.example.com/web#model=sale.order",
            "https://odoo.example.com/web#/action/12?model=sale.order",
            "fragment route /action/12 is not empty (the rule has only parameters)",
        ),
        ("https://a.example.com/x.do?sys_id=-1", "https://a.example.com/x.do?sys_id=-1", None),
    ],
)
def test_explain_names_the_first_part_that_does_not_match(
    pattern: str, url: str, why: str | None
) -> None:
    assert _why(pattern, url) == why


# -- the tester on a ServiceNow-like app (not the demo's content) --------------------------------

A = "/api/v1/admin"
HOST = "fabrikam.service-now.com"
ITSM = f"""id: itsm
name: Fabrikam Service Desk
rules:
  - "https://{HOST}/**"
wrapped_targets: ["/nav_to.do?uri={{target}}", "/now/nav/ui/classic/params/target/{{target}}"]
contexts:
  - id: itsm-incident-new
    name: New incident
    rules: ["https://{HOST}/incident.do?sys_id=-1"]
    priority: 10
    exclusive: true
    aids: [itsm-log-incident, itsm-major-incident]
  - id: itsm-incident
    name: Incident record
    rules: ["https://{HOST}/incident.do?sys_id=*"]
    aids: [itsm-incident-priority]
  - id: itsm-classic
    name: Classic UI page
    rules: ["https://{HOST}/*.do"]
    fallback: true
    aids: [itsm-desk-basics]
"""
ITSM_AIDS = {
    "itsm-log-incident": ("Log an incident for a caller", "[]"),
    "itsm-major-incident": ("Declare a major incident", "[major-incident-managers]"),
    "itsm-incident-priority": ("Set impact and urgency on an incident", "[]"),
    "itsm-desk-basics": ("Find your way around the service desk", "[]"),
}
NAV_TO = f"https://{HOST}/nav_to.do?uri=%2Fincident.do%3Fsys_id%3D-1"


def write_itsm_library(root: Path) -> Path:
    (root / "apps").mkdir(parents=True)
    (root / "aids").mkdir()
    (root / "apps" / "itsm.yaml").write_text(ITSM)
    for aid_id, (title, audience) in ITSM_AIDS.items():
        (root / "aids" / f"{aid_id}.md").write_text(
            f"---\nid: {aid_id}\ntitle: {title}\nsummary: {title}.\ntype: howto\n"
            f"status: published\napps: [itsm]\naudience: {audience}\n"
            f"verified_at: 2026-01-05\n---\n{title}: the steps, one by one.\n"
        )
    return root


@pytest.fixture
async def itsm(aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Path) -> Any:
    settings = make_settings(content_dir=write_itsm_library(tmp_path / "fabrikam"))
    return await aiohttp_client(create_app(settings))


async def run_tester(client: TestClient, who: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = await client.post(f"{A}/rules/test", json=body, headers=who)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def test_tester_shows_the_wrapped_page_s_context_and_why_the_others_are_dropped(
    itsm: TestClient, admin: dict[str, str]
) -> None:
    """ServiceNow opens a new incident through nav_to.do: the tester says the inner page was
    matched, the exclusive 'New incident' context cut the incident record, and the fallback
    classic-page context stepped back."""
    result = await run_tester(itsm, admin, url=NAV_TO, role="learner")
    assert result["app"]["id"] == "itsm"
    assert result["target_url"] == f"https://{HOST}/incident.do?sys_id=-1"
    assert [c["id"] for c in result["contexts"]] == ["itsm-incident-new"]
    verdicts = {v["id"]: v for v in result["context_verdicts"]}
    assert verdicts["itsm-incident-new"]["in_effect"]
    assert verdicts["itsm-incident-new"]["why"] == (
        f"in effect: https://{HOST}/incident.do?sys_id=-1 matches the wrapped page; it is "
        "exclusive, so the contexts ranked after it are dropped."
    )
    assert not verdicts["itsm-incident"]["in_effect"]
    assert "exclusive context New incident" in verdicts["itsm-incident"]["why"]
    assert not verdicts["itsm-classic"]["in_effect"]
    assert "fallback" in verdicts["itsm-classic"]["why"]
    notes = " ".join(result["notes"])
    assert f"https://{HOST}/incident.do?sys_id=-1" in notes
    assert "fallback" in notes and "exclusive" in notes
    rules = {r["rule_id"]: r for r in result["rules"]}
    new = rules["ctx:itsm-incident-new:0"]
    assert new["matched"] and new["matched_on"] == "target" and new["in_effect"]
    assert rules["app:itsm:0"]["won"] and rules["app:itsm:0"]["matched_on"] == "page"
    assert result["rules_total"] == len(result["rules"]) == 4
    assert [a["id"] for a in result["aids"]][:1] == ["itsm-log-incident"]


async def test_a_lookalike_host_is_tried_and_explained(
    itsm: TestClient, admin: dict[str, str]
) -> None:
    """An admin pastes a phishing lookalike of the instance: no app, and the tester says the
    host is not the instance's, rather than showing an empty list of rules."""
    url = f"https://{HOST}.evil.io/incident.do?sys_id=-1"
    result = await run_tester(itsm, admin, url=url)
    assert result["app"] is None and result["aids"] == []
    rules = {r["rule_id"]: r for r in result["rules"]}
    assert not rules["app:itsm:0"]["matched"]
    assert rules["app:itsm:0"]["why"] == f"host {HOST}.evil.io is not {HOST}"
    assert any("No app" in n for n in result["notes"])
    # A host with nothing in common is not listed at all.
    assert (await run_tester(itsm, admin, url="https://intranet.example.org/"))["rules"] == []


async def test_the_sidebar_is_what_suggest_answers_the_role_and_groups(
    itsm: TestClient, admin: dict[str, str], tokens: TokenMaker
) -> None:
    """The tester's aids for a learner are exactly the panel's (same title, headings and
    selection through the same Suggester); an admin also sees an aid restricted by audience."""
    page = {
        "url": NAV_TO,
        "title": "Incident | ServiceNow",
        "headings": ["Caller", "Impact and urgency"],
        "selection": "urgency",
    }
    learner = tokens.auth(sub="learner-9", roles=("learner",), groups=("field-staff",))
    resp = await itsm.post("/api/v1/suggest", json=page, headers=learner)
    panel = await resp.json()
    as_learner = await run_tester(itsm, admin, **page, role="learner", groups=["field-staff"])
    assert as_learner["aids"] == panel["aids"]
    assert "itsm-major-incident" not in [a["id"] for a in as_learner["aids"]]
    as_admin = await run_tester(itsm, admin, **page, role="admin")
    assert "itsm-major-incident" in [a["id"] for a in as_admin["aids"]]
    managers = await run_tester(
        itsm, admin, **page, role="learner", groups=["major-incident-managers"]
    )
    assert "itsm-major-incident" in [a["id"] for a in managers["aids"]]


async def test_the_answer_is_what_the_openapi_document_declares(
    itsm: TestClient, admin: dict[str, str]
) -> None:
    doc = await (await itsm.get("/api/v1/openapi.json")).json()
    op = doc["paths"][f"{A}/rules/test"]["post"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]})
    for url in (NAV_TO, f"https://{HOST}.evil.io/", "https://intranet.example.org/"):
        validator.validate(await run_tester(itsm, admin, url=url, role="learner"))
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) >= {"url", "title", "headings", "selection", "role", "groups"}
    resp = await itsm.post(f"{A}/rules/test", json={"url": NAV_TO, "colour": 1}, headers=admin)
    assert resp.status == 422 and resp.content_type == "application/problem+json"
    # A null is the same as leaving the field out (as before, and as suggest reads it).
    nulls = await run_tester(itsm, admin, url=NAV_TO, title=None, groups=None, limit=None)
    assert nulls["app"]["id"] == "itsm"


# -- warnings for rules that can never match ------------------------------------------------------

HR = "https://hr.fabrikam.com"
PORTAL = {
    "id": "hrportal",
    "name": "Fabrikam HR portal",
    "rules": [f"{HR}/**", {"pattern": f"https://{HOST}/**", "priority": -1}],
    "contexts": [
        {
            "id": "hr-cases",
            "name": "Cases",
            "rules": [f"{HR}/cases/**"],
            "exclusive": True,
            "priority": 5,
        },
        {"id": "hr-case-new", "name": "New case", "rules": [f"{HR}/cases/new"]},
        {"id": "hr-form", "name": "A form", "rules": [f"{HR}/app#?view=form&!view"]},
        {
            "id": "hr-payroll",
            "name": "Payroll runs",
            "rules": ["https://payroll.fabrikam.com/runs/*"],
        },
        {"id": "hr-people", "name": "People", "rules": [f"{HR}/people/*", f"{HR}/people/*"]},
        {"id": "hr-person", "name": "A person", "rules": [f"{HR}/people/*"]},
    ],
}


async def test_each_kind_of_rule_that_can_never_match_is_warned_about(
    itsm: TestClient, admin: dict[str, str], tokens: TokenMaker
) -> None:
    """Saving an app whose rules cannot do what they were written for says which rule, why and
    what to do, for each kind; saving still succeeds."""
    resp = await itsm.get(f"{A}/apps/itsm", headers=admin)
    assert (await resp.json())["warnings"] == []  # a clean app has none
    resp = await itsm.post(f"{A}/apps", json=PORTAL, headers=admin)
    assert resp.status == 201, await resp.text()
    warnings = (await resp.json())["warnings"]
    found = {(w["code"], w["context"]) for w in warnings}
    assert found >= {
        ("exclusive", "hr-case-new"),
        ("never_matches", "hr-form"),
        ("outside_app", "hr-payroll"),
        ("duplicate", "hr-people"),
        ("duplicate", "hr-person"),
        ("conflict", None),
        ("shadowed", None),
    }, warnings
    assert len(found) == len(warnings), "one warning per rule and kind"
    by_context = {w["context"]: w for w in warnings if w["code"] != "duplicate"}
    swallowed = by_context["hr-case-new"]
    assert "'hr-cases'" in swallowed["message"] and f"{HR}/cases/new" in swallowed["message"]
    assert "exclusive flag" in swallowed["fix"] and swallowed["sample_url"] == f"{HR}/cases/new"
    assert "fragment parameter view" in by_context["hr-form"]["message"]
    assert "payroll.fabrikam.com" in by_context["hr-payroll"]["message"]
    shadowed = next(w for w in warnings if w["code"] == "shadowed")
    assert shadowed["where"] == "rule 2 of the app" and "'itsm'" in shadowed["message"]
    assert all(w["fix"] and w["message"].endswith(w["fix"]) for w in warnings)

    # The console's app page shows them, each kind in words.
    await sign_in(itsm, tokens.token(sub="admin-3", roles=("learner", "author", "admin")))
    html = await (await itsm.get("/admin/apps/hrportal")).text()
    for label in (
        "Can never match",
        "Shadowed",
        "Swallowed by an exclusive context",
        "Outside the app&#39;s hosts",
        "Duplicate",
        "Same rule in another app",
    ):
        assert f"<strong>{label}</strong>" in html, label

    # The tester shows the app's warnings too, and explains the swallowed context.
    result = await run_tester(itsm, admin, url=f"{HR}/cases/new", role="learner")
    assert [c["id"] for c in result["contexts"]] == ["hr-cases"]
    assert {w["code"] for w in result["warnings"]} == {w["code"] for w in warnings}
    verdicts = {v["id"]: v for v in result["context_verdicts"]}
    assert "exclusive context Cases" in verdicts["hr-case-new"]["why"]


# -- the console page ----------------------------------------------------------------------------


async def test_console_tester_reads_as_a_results_table(
    itsm: TestClient, tokens: TokenMaker
) -> None:
    await sign_in(itsm, tokens.token(sub="author-7", roles=("learner", "author")))
    query = urlencode(
        {"url": NAV_TO, "role": "learner", "title": "Incident", "headings": "Caller\nImpact"}
    )
    resp = await itsm.get(f"/admin/tester?{query}")
    assert resp.status == 200
    html = await resp.text()
    assert 'id="tester-rules"' in html and "✓ yes" in html and "✗ no" in html
    assert f"shows <code>https://{HOST}/incident.do?sys_id=-1</code>" in html
    assert "a fallback context, dropped because a more specific context matched" in html
    assert "Log an incident for a caller" in html  # the sidebar
    assert "Declare a major incident" not in html  # restricted to major-incident managers
    assert '<textarea name="headings" rows="3">Caller\nImpact</textarea>' in html
    query = urlencode({"url": f"https://{HOST}.evil.io/", "role": "learner"})
    html = await (await itsm.get(f"/admin/tester?{query}")).text()
    assert "No app matches this URL" in html
    assert f"host {HOST}.evil.io is not {HOST}" in html


async def test_served_warnings_are_what_the_openapi_document_declares(
    itsm: TestClient, admin: dict[str, str]
) -> None:
    """The document declared warnings as {kind, message} while the server sent {code, message}:
    a generated client read no warning kind. They now derive from one declaration."""
    resp = await itsm.post(f"{A}/apps", json=PORTAL, headers=admin)
    warnings = (await resp.json())["warnings"]
    assert warnings
    doc = await (await itsm.get("/api/v1/openapi.json")).json()
    schema = doc["components"]["schemas"]["App"]["properties"]["warnings"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]})
    validator.validate(warnings)


async def test_a_context_left_out_by_its_title_pattern_says_so(
    itsm: TestClient, admin: dict[str, str]
) -> None:
    """Its rule matches but the page's title does not: the tester says it is the title, not the
    rule, that keeps the context out; with a fitting title it is in effect."""
    app = {
        "id": "wiki",
        "name": "Fabrikam wiki",
        "rules": ["https://wiki.fabrikam.com/**"],
        "contexts": [
            {
                "id": "wiki-edit",
                "name": "Editing a page",
                "rules": ["https://wiki.fabrikam.com/pages/*"],
                "title_pattern": "^Edit",
            }
        ],
    }
    assert (await itsm.post(f"{A}/apps", json=app, headers=admin)).status == 201
    url = "https://wiki.fabrikam.com/pages/holidays"
    result = await run_tester(itsm, admin, url=url, title="Holidays - Wiki")
    verdict = result["context_verdicts"][0]
    assert not verdict["in_effect"]
    assert "the title does not match its title pattern /^Edit/" in verdict["why"]
    result = await run_tester(itsm, admin, url=url, title="Edit: Holidays")
    assert result["context_verdicts"][0]["in_effect"]
