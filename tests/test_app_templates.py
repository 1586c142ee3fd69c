"""App templates (server/app_templates.py, content/app-templates/, docs/app-templates.md).

The loader's checks on small templates written here, and the contract of the real ones:
every template (and every app of the second sample, tests/fixtures/app_samples/) loads, has no
`re:` rule, and resolves each of its sample URLs (real URL shapes of the app) to the expected
context through the same Catalog the server serves from; the vector file the extension's test
reads (tests/vectors/app_templates.json) is current.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.app_templates import (
    SAMPLES_DIR,
    TEMPLATES_DIR,
    VECTORS,
    AppTemplate,
    TemplateError,
    instantiate,
    load_templates,
    vectors_text,
)
from server.catalog import Catalog
from server.models import App, validate

TINY: dict[str, Any] = {
    "id": "tiny",
    "name": "Tiny Desk",
    "description": "A help desk.",
    "tenant": {"label": "Subdomain", "example": "acme", "pattern": "[a-z][a-z0-9-]{0,30}"},
    "app": {
        "rules": ["https://{tenant}.tinydesk.example/**"],
        "contexts": [
            {
                "id": "ticket",
                "name": "Ticket",
                "rule": "https://{tenant}.tinydesk.example/tickets/*",
            }
        ],
    },
    "samples": [
        {"url": "https://acme.tinydesk.example/tickets/7", "context": "ticket"},
        {"url": "https://acme.tinydesk.example/", "context": None},
        {"url": "https://acme.tinydesk.example.evil.io/tickets/7", "app": False, "context": None},
    ],
}


def write(folder: Path, data: dict[str, Any], name: str | None = None) -> Path:
    path = folder / f"{name or data['id']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def changed(**changes: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(TINY))
    for dotted, value in changes.items():
        target = data
        keys = dotted.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[keys[-1]] = value
    return data


def load_error(tmp_path: Path, data: dict[str, Any], name: str | None = None) -> str:
    write(tmp_path, data, name)
    with pytest.raises(TemplateError) as info:
        load_templates(tmp_path)
    return str(info.value)


# -- the loader ------------------------------------------------------------------------------------


def test_a_template_instantiates_for_a_tenant(tmp_path: Path) -> None:
    write(tmp_path, TINY)
    template = load_templates(tmp_path)["tiny"]
    assert isinstance(template, AppTemplate)
    assert (template.tenant_label, template.tenant_example) == ("Subdomain", "acme")
    data = instantiate(template, "northwind", app_id="desk", name="Northwind desk")
    app = validate(App, data)
    assert (app.id, app.name, app.description) == ("desk", "Northwind desk", "A help desk.")
    assert [r.pattern for r in app.rules] == ["https://northwind.tinydesk.example/**"]
    assert [c.id for c in app.contexts] == ["desk-ticket"]
    assert "{tenant}" not in json.dumps(data)
    # defaults: the template's id and name; the template itself is not changed
    default = instantiate(template, " acme ")
    assert (default["id"], default["name"]) == ("tiny", "Tiny Desk")
    assert default["contexts"][0]["id"] == "tiny-ticket"
    assert template.app["contexts"][0]["id"] == "ticket"


@pytest.mark.parametrize(
    "tenant",
    ["", "   ", "ACME", "acme.evil.io", "acme/x", "*", "{digits}", "a" * 40, "acme%2Eevil"],
)
def test_a_tenant_the_template_refuses_is_an_error_naming_the_field(
    tmp_path: Path, tenant: str
) -> None:
    """A tenant that would widen the rules (a `*`, a `/`, another host) never reaches them."""
    write(tmp_path, TINY)
    template = load_templates(tmp_path)["tiny"]
    with pytest.raises(TemplateError, match=r"^Subdomain: ") as info:
        instantiate(template, tenant)
    assert isinstance(info.value, ValueError)


def test_a_tenant_outside_the_safe_characters_is_refused_whatever_the_pattern(
    tmp_path: Path,
) -> None:
    """A template with a lax pattern (`.+`) still cannot put rule syntax into its rules."""
    write(tmp_path, changed(tenant__pattern=".+"))
    template = load_templates(tmp_path)["tiny"]
    for tenant in ("acme.tinydesk.example/**", "*.example", "a?b=1", "a#b"):
        with pytest.raises(TemplateError, match="is not valid for Tiny Desk"):
            instantiate(template, tenant)


def test_an_app_id_too_long_for_the_context_ids_is_refused(tmp_path: Path) -> None:
    write(tmp_path, TINY)
    template = load_templates(tmp_path)["tiny"]
    with pytest.raises(TemplateError, match="too long"):
        instantiate(template, "acme", app_id="a" * 60)
    with pytest.raises(TemplateError, match="not a slug"):
        instantiate(template, "acme", app_id="Not An Id")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"tenant__example": "ACME"}, "tiny.yaml: tenant.example: 'ACME' does not match"),
        ({"tenant__pattern": "[a-z"}, "tiny.yaml: tenant.pattern: not a valid regular"),
        ({"tenant__label": ""}, "tiny.yaml: tenant.label: is required"),
        ({"name": None}, "tiny.yaml: name: is required"),
        ({"colour": "red"}, "tiny.yaml: colour: unknown field(s): colour"),
        ({"app__rules": ["https://tinydesk.example/**"]}, "tiny.yaml: app.rules[0]: must contain"),
        ({"app__name": "x"}, "tiny.yaml: app.name: is the template's own field"),
        (
            {"app__contexts__0__rule": "re:^https://acme\\.tinydesk\\.example/"},
            "tiny.yaml: app.contexts[0].rule: templates use the rule syntax, not 're:'",
        ),
        (
            {"app__contexts__0__rule": "https://{tenant}.tinydesk.example/a//b"},
            "tiny.yaml: app.contexts[0].rules[0]: invalid URL rule",
        ),
        (
            {"app__contexts__0__rule": "https://*.tinydesk.example/tickets/*"},
            "tiny.yaml: app.contexts[0].rules[0]: 'https://*.tinydesk.example/tickets/*' matches "
            "pages outside the app's rules",
        ),
        ({"app__contexts__0__name": ""}, "tiny.yaml: app.contexts[0].name: must not be empty"),
        ({"app__contexts__0__id": "Ticket"}, "tiny.yaml: app.contexts[0].id: 'Ticket' is not"),
        ({"app__contexts": []}, "tiny.yaml: app.contexts: needs at least one context"),
        ({"samples": []}, "tiny.yaml: samples: needs sample URLs"),
        ({"samples__0__context": "invoice"}, "tiny.yaml: samples[0].context: 'invoice' is not"),
        ({"samples__0__url": "ftp://x/"}, "tiny.yaml: samples[0].url: must be an http(s) URL"),
        ({"samples__2__context": "ticket"}, "tiny.yaml: samples[2]: a URL outside the app"),
    ],
)
def test_a_broken_template_is_an_error_naming_file_and_field(
    tmp_path: Path, changes: dict[str, Any], expected: str
) -> None:
    message = load_error(tmp_path, changed(**changes))
    assert message.startswith(expected), message


def test_the_id_must_be_the_file_name(tmp_path: Path) -> None:
    message = load_error(tmp_path, TINY, name="other")
    assert message.startswith("other.yaml: id: 'tiny' differs from the file name"), message


def test_a_file_that_is_not_yaml_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"^bad\.yaml: not valid YAML"):
        load_templates(tmp_path)


# -- the library -----------------------------------------------------------------------------------


def test_settings_point_at_the_template_library() -> None:
    from server.settings import load_settings

    assert load_settings(env={}).app_templates_dir == TEMPLATES_DIR
    other = load_settings(env={"INFLOW_APP_TEMPLATES": "/srv/templates"})
    assert other.app_templates_dir == Path("/srv/templates")


TEMPLATES = load_templates(TEMPLATES_DIR)
SAMPLE_APPS = load_templates(SAMPLES_DIR)
EVERY = [*TEMPLATES.values(), *SAMPLE_APPS.values()]

# The apps the issue names: the template library and the second sample of other apps.
LIBRARY = {
    "salesforce",
    "servicenow",
    "workday",
    "sap-fiori",
    "dynamics-365",
    "jira",
    "confluence",
    "zendesk",
    "successfactors",
    "concur",
    "github",
}
SECOND_SAMPLE = {
    "odoo",
    "netsuite",
    "coupa",
    "hubspot",
    "greenhouse",
    "okta",
    "oracle-ebs",
    "tableau",
    "docusign",
    "google-workspace-admin",
}


def catalog_of(template: AppTemplate, tenant: str | None = None) -> tuple[App, Catalog]:
    app = validate(App, instantiate(template, tenant or template.tenant_example))
    return app, Catalog.build(1, [app], [])


def test_the_library_and_the_second_sample_are_complete() -> None:
    assert set(TEMPLATES) >= LIBRARY
    assert set(SAMPLE_APPS) >= SECOND_SAMPLE
    for t in EVERY:
        n = len(t.context_ids())
        assert 3 <= n <= 8, f"{t.id}: {n} contexts"
        assert len(t.samples) >= 6, f"{t.id}: {len(t.samples)} samples"
        # samples that must not match: a page of the app without a context, or another app
        assert any(not s.app for s in t.samples), f"{t.id}: no lookalike sample"
        assert any(s.app and not s.contexts for s in t.samples), f"{t.id}: no non-matching page"
        assert all(s.app for s in t.samples if s.contexts), t.id
    for t in TEMPLATES.values():
        # and the app's URLs as browsers may encode them
        assert any("%" in s.url for s in t.samples if s.app), f"{t.id}: no encoded variant"


def test_the_new_rule_features_are_used_where_apps_need_them() -> None:
    """ServiceNow's wrapped pages, fallback pages and an exclusive context come with the library."""
    assert TEMPLATES["servicenow"].app["wrapped_targets"]
    contexts = [c for t in EVERY for c in t.app["contexts"]]
    assert any(c.get("fallback") for c in contexts)
    assert any(c.get("exclusive") for c in contexts)
    assert any(len(c["rules"]) > 1 for c in contexts)


@pytest.mark.parametrize("template", EVERY, ids=lambda t: t.id)
def test_no_template_needs_a_regex(template: AppTemplate) -> None:
    app, _ = catalog_of(template)
    patterns = [r.pattern for r in app.rules]
    patterns += [r.pattern for c in app.contexts for r in c.rules]
    assert patterns
    assert not [p for p in patterns if p.lower().startswith("re:")]
    for path in (TEMPLATES_DIR / f"{template.id}.yaml", SAMPLES_DIR / f"{template.id}.yaml"):
        if path.exists():
            assert '"re:' not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("template", EVERY, ids=lambda t: t.id)
def test_every_sample_url_lands_on_its_context(template: AppTemplate) -> None:
    """Real URL shapes of each app, through the catalog the server resolves pages with."""
    app, catalog = catalog_of(template)
    wrong = []
    for sample in template.samples:
        found = catalog.resolve(sample.url)
        expected = (app.id if sample.app else None, [f"{app.id}-{c}" for c in sample.contexts])
        got = (found.app.id if found.app else None, [c.id for c in found.contexts])
        if got != expected:
            wrong.append(f"{sample.url}: expected {expected}, got {got}")
    assert not wrong, "\n".join(wrong)


def test_a_template_serves_another_tenant_and_only_that_tenant() -> None:
    app, catalog = catalog_of(TEMPLATES["servicenow"], "globex")
    assert app.id == "servicenow"
    found = catalog.resolve(
        "https://globex.service-now.com/nav_to.do?uri=%2Fincident.do%3Fsys_id%3D-1"
    )
    assert [c.id for c in found.contexts] == ["servicenow-incident-new"]
    assert catalog.resolve("https://acme.service-now.com/incident.do?sys_id=-1").app is None


def test_the_vector_file_is_current() -> None:
    """The extension's test reads tests/vectors/app_templates.json: regenerate it after changing a
    template (`python -m server.app_templates --vectors`)."""
    assert VECTORS.read_text(encoding="utf-8") == vectors_text()
    cases = json.loads(VECTORS.read_text(encoding="utf-8"))["cases"]
    assert {c["template"] for c in cases} == {t.id for t in EVERY}


def test_the_docs_list_every_template() -> None:
    from server.settings import ROOT

    docs = (ROOT / "docs" / "app-templates.md").read_text(encoding="utf-8")
    missing = [t.id for t in EVERY if f"(`{t.id}`)" not in docs]
    assert not missing, f"docs/app-templates.md does not list {missing}"


@pytest.mark.parametrize("template", EVERY, ids=lambda t: t.id)
def test_an_instantiated_template_imports_as_an_app_file(template: AppTemplate) -> None:
    """What a template gives is an ordinary app: `inflow import` reads it as an app file, and
    the app file `inflow export` writes for it reads back the same."""
    from server.content import app_to_text, parse_app

    data = instantiate(template, template.tenant_example)
    errors: list[tuple[str, int, str]] = []
    app = parse_app(yaml.safe_dump(data, sort_keys=False), f"{template.id}.yaml", errors)
    assert not errors
    assert app is not None and app == validate(App, data)
    again = parse_app(app_to_text(app), f"{template.id}.yaml", errors)
    assert not errors
    assert again == app
