"""Context resolution (server/catalog.py): several rules per context, fallback and exclusive
contexts, wrapped targets. The cases are shared with extension/tests/rules.test.mjs
(tests/vectors/context_resolution.json), on a library that is not the demo's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from server.catalog import Catalog
from server.content import load_dir
from server.models import App, validate
from server.urlrules import parse_url

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "context_resolution.json").read_text(encoding="utf-8")
)
APPS = [validate(App, a) for a in VECTORS["apps"]]
CATALOG = Catalog.build(1, APPS, [])


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_resolution(case: dict[str, Any]) -> None:
    found = CATALOG.resolve(case["url"], case.get("title"))
    assert (found.app.id if found.app else None) == case["app"]
    assert [c.id for c in found.contexts] == case["contexts"]
    target = case["target"]
    assert found.target_url == (parse_url(target).normalized if target else None)
    # each context comes with the rule that brought it in, one of its own
    for ctx, match in zip(found.contexts, found.context_matches, strict=True):
        assert match.target == f"ctx:{ctx.id}"
        assert match.pattern in [r.pattern for r in ctx.rules]


def test_rules_document_carries_the_new_fields() -> None:
    doc = CATALOG.rules_document()
    apps = {a["id"]: a for a in doc["apps"]}
    assert apps["servicedesk"]["wrapped_targets"] == [
        "/nav_to.do?uri={target}",
        "/now/nav/ui/classic/params/target/{target}",
    ]
    assert apps["ledger"]["wrapped_targets"] == []
    ctx = {c["id"]: c for c in doc["contexts"]}
    assert ctx["sd-lists"]["rules"] == [
        {
            "id": "ctx:sd-lists:0",
            "pattern": "https://fabrikam.service-now.com/incident_list.do",
            "priority": 0,
        },
        {
            "id": "ctx:sd-lists:1",
            "pattern": "https://fabrikam.service-now.com/problem_list.do",
            "priority": 0,
        },
    ]
    assert (ctx["sd-home"]["fallback"], ctx["sd-home"]["exclusive"]) == (True, False)
    assert (
        ctx["ledger-invoice-locked"]["fallback"],
        ctx["ledger-invoice-locked"]["exclusive"],
    ) == (False, True)
    assert "rule" not in ctx["sd-lists"]


def test_a_title_pattern_that_rules_out_the_specific_context_brings_back_the_fallback() -> None:
    """A fallback context counts when no other context matched the page, title included."""
    apps = [
        validate(
            App,
            {
                "id": "wiki",
                "name": "Wiki",
                "rules": ["https://wiki.example.org/**"],
                "contexts": [
                    {
                        "id": "wiki-edit",
                        "name": "Editing",
                        "rule": "https://wiki.example.org/page/*",
                        "title_pattern": "^Editing",
                    },
                    {
                        "id": "wiki-any",
                        "name": "Wiki",
                        "rules": ["https://wiki.example.org/**"],
                        "fallback": True,
                    },
                ],
            },
        )
    ]
    catalog = Catalog.build(1, apps, [])
    url = "https://wiki.example.org/page/Onboarding"
    assert [c.id for c in catalog.resolve(url, "Editing Onboarding").contexts] == ["wiki-edit"]
    assert [c.id for c in catalog.resolve(url, "Onboarding").contexts] == ["wiki-any"]


def test_demo_pages_have_their_contexts_on_both_demo_hosts() -> None:
    """The demo apps matched `localhost` too, but each context named only 127.0.0.1: someone who
    opened http://localhost:8080/demo/... saw the app and none of its pinned aids. Each context
    now has a rule per host."""
    demo = load_dir(Path(__file__).resolve().parent.parent / "content" / "demo")
    catalog = Catalog.build(1, demo.apps, demo.aids)
    for ctx in catalog.contexts.values():
        hosts = {r.pattern.split("/")[2] for r in ctx.rules}
        assert hosts == {"127.0.0.1", "localhost"}, ctx.id
    for path in ("hr/profile.html?tab=bank", "crm/opportunities/new", "expenses/#/mileage"):
        on = {
            host: [c.id for c in catalog.resolve(f"http://{host}:8080/demo/{path}").contexts]
            for host in ("127.0.0.1", "localhost")
        }
        assert on["localhost"] == on["127.0.0.1"] != [], path
