"""App templates: ready-made app definitions (docs/app-templates.md).

A template is one YAML file, `content/app-templates/<id>.yaml`: an app as in `inflow import` app
files, with `{tenant}` where the customer's instance goes (`https://{tenant}.service-now.com/**`),
a description of that tenant (label, example, pattern), and sample URLs of the real app with the
context each must land on. The admin picks a template, types the tenant, and `instantiate` gives
the App input data to save (context ids prefixed with the app id).

`load_templates` validates every template fully (its fields, the tenant's pattern and example,
and the App its example tenant gives, URL rules compiled), so a broken template fails at start-up
or in tests, never in front of an admin. No I/O at import.

`python -m server.app_templates --vectors` writes tests/vectors/app_templates.json: for every
template (and the second sample of apps in tests/fixtures/app_samples/) the rules document the
server serves for the instantiated app and the sample URLs with their expected app and contexts;
tests/test_app_templates.py and extension/tests/app_templates.test.mjs check both languages.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from server.models import SLUG_RE, App, FieldErrors, RuleSpec, validate
from server.settings import ROOT
from server.urlrules import CompiledRule, InvalidRule, Rule, RuleSet, compile_rule
from server.urlrules.sample import sample_url

TEMPLATES_DIR = ROOT / "content" / "app-templates"
SAMPLES_DIR = ROOT / "tests" / "fixtures" / "app_samples"
VECTORS = ROOT / "tests" / "vectors" / "app_templates.json"

TENANT = "{tenant}"
# Whatever a template's pattern says, a tenant is a host label, a host or a path segment: never
# anything the rule syntax reads (`*`, `{`, `/`, `?`, `#`, `%`...).
TENANT_CHARS = re.compile(r"[A-Za-z0-9._-]{1,100}")
MAX_TEMPLATE_BYTES = 256 * 1024
TEMPLATE_FIELDS = frozenset({"id", "name", "description", "tenant", "app", "samples"})
TENANT_FIELDS = frozenset({"label", "example", "pattern"})
SAMPLE_FIELDS = frozenset({"url", "context", "contexts", "app"})
# The template's own fields; the app part holds the rest of an App.
APP_OWN_FIELDS = frozenset({"id", "name", "description"})


class TemplateError(ValueError):
    """A template that cannot be used, or a tenant it refuses; the message names file and field."""


@dataclass(frozen=True)
class TemplateSample:
    """A real URL shape of the app (with the example tenant) and where it must land.

    `app`: does the URL belong to the app at all (false for lookalike hosts);
    `contexts`: the context ids (without the app prefix) it resolves to, best first; empty when
    the page is the app's but no context's.
    """

    url: str
    app: bool
    contexts: tuple[str, ...]


@dataclass(frozen=True)
class AppTemplate:
    id: str
    name: str
    description: str
    tenant_label: str
    tenant_example: str
    tenant_pattern: str
    app: dict[str, Any]  # App input data with {tenant} in patterns, context ids unprefixed
    samples: tuple[TemplateSample, ...]

    def check_tenant(self, tenant: str) -> str:
        """The tenant, stripped, if the template accepts it; TemplateError otherwise."""
        return _check_tenant(self, tenant)

    def context_ids(self) -> tuple[str, ...]:
        return tuple(str(c.get("id")) for c in self.app.get("contexts") or ())


def instantiate(
    template: AppTemplate, tenant: str, app_id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    """App input data (for the admin API or `validate(App, ...)`) for one tenant.

    `{tenant}` is replaced in every text of the app, context ids become `<app id>-<context id>`;
    the app id defaults to the template's id and the name to its name.
    """
    value = _check_tenant(template, tenant)
    app_id = template.id if app_id is None else app_id.strip()
    if not SLUG_RE.match(app_id):
        raise TemplateError(f"app id {app_id!r} is not a slug (lowercase letters, digits, '-')")
    data: dict[str, Any] = _replace(template.app, value)
    contexts = []
    for ctx in data.get("contexts") or ():
        ctx = dict(ctx)
        ctx_id = f"{app_id}-{ctx.get('id')}"
        if not SLUG_RE.match(ctx_id):
            raise TemplateError(
                f"app id {app_id!r} is too long for the template's context ids "
                f"({ctx_id!r} is over 64 characters)"
            )
        ctx["id"] = ctx_id
        contexts.append(ctx)
    out: dict[str, Any] = {
        "id": app_id,
        "name": template.name if name is None or not name.strip() else name.strip(),
        "description": template.description,
    }
    out.update(data)
    out["contexts"] = contexts
    return out


def load_templates(folder: Path) -> dict[str, AppTemplate]:
    """Every `<id>.yaml` template in `folder`, by id, each fully checked (TemplateError)."""
    out: dict[str, AppTemplate] = {}
    for path in sorted(folder.glob("*.yaml")):
        template = load_template(path)
        out[template.id] = template
    return out


def load_template(path: Path) -> AppTemplate:
    name = path.name
    if path.is_symlink():
        raise TemplateError(f"{name}: symbolic links are not allowed")
    raw = path.read_bytes()
    if len(raw) > MAX_TEMPLATE_BYTES:
        raise TemplateError(f"{name}: larger than {MAX_TEMPLATE_BYTES} bytes")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TemplateError(f"{name}: not valid YAML: {exc}") from None
    return parse_template(data, name, expected_id=path.stem)


def parse_template(data: Any, name: str, expected_id: str | None = None) -> AppTemplate:
    """A template from parsed YAML; `name` (the file) prefixes every error message."""

    def fail(field: str, message: str) -> TemplateError:
        return TemplateError(f"{name}: {field}: {message}" if field else f"{name}: {message}")

    if not isinstance(data, dict):
        raise fail("", "expected a mapping of fields (id, name, tenant, app, samples)")
    unknown = sorted(set(map(str, data)) - TEMPLATE_FIELDS)
    if unknown:
        raise fail(unknown[0], f"unknown field(s): {', '.join(unknown)}")
    tid = _text(data, "id", fail)
    if not SLUG_RE.match(tid):
        raise fail("id", f"{tid!r} is not a slug (lowercase letters, digits, '-')")
    if expected_id is not None and tid != expected_id:
        raise fail("id", f"{tid!r} differs from the file name ({expected_id}.yaml)")
    title = _text(data, "name", fail)
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise fail("description", "must be text")
    tenant = data.get("tenant")
    if not isinstance(tenant, dict):
        raise fail("tenant", "must be a mapping with label, example and pattern")
    unknown = sorted(set(map(str, tenant)) - TENANT_FIELDS)
    if unknown:
        raise fail(f"tenant.{unknown[0]}", f"unknown field(s): {', '.join(unknown)}")
    label = _text(tenant, "label", fail, "tenant.")
    example = _text(tenant, "example", fail, "tenant.")
    pattern = _text(tenant, "pattern", fail, "tenant.")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise fail("tenant.pattern", f"not a valid regular expression: {exc}") from None
    if not re.fullmatch(pattern, example) or not TENANT_CHARS.fullmatch(example):
        raise fail("tenant.example", f"{example!r} does not match the tenant pattern {pattern!r}")
    app = data.get("app")
    if not isinstance(app, dict):
        raise fail("app", "must be a mapping (rules, contexts, wrapped_targets...)")
    own = sorted(APP_OWN_FIELDS & set(app))
    if own:
        raise fail(f"app.{own[0]}", "is the template's own field (at the top level)")
    rules = app.get("rules")
    if not isinstance(rules, list) or not rules:
        raise fail("app.rules", "needs at least one rule")
    for i, rule in enumerate(rules):
        pattern_text = rule.get("pattern") if isinstance(rule, dict) else rule
        if not isinstance(pattern_text, str) or TENANT not in pattern_text:
            raise fail(f"app.rules[{i}]", "must contain {tenant} (the app is the tenant's)")
    contexts = app.get("contexts")
    if not isinstance(contexts, list) or not contexts:
        raise fail("app.contexts", "needs at least one context (a page of the app)")
    for i, ctx in enumerate(contexts):
        cid = ctx.get("id") if isinstance(ctx, dict) else None
        if not isinstance(cid, str) or not SLUG_RE.match(cid):
            raise fail(f"app.contexts[{i}].id", f"{cid!r} is not a slug (lowercase, digits, '-')")
    for where, text in _patterns_in(app):
        if text.strip().lower().startswith("re:"):
            raise fail(f"app.{where}", "templates use the rule syntax, not 're:' regexes")
    template = AppTemplate(
        id=tid,
        name=title,
        description=description.strip(),
        tenant_label=label,
        tenant_example=example,
        tenant_pattern=pattern,
        app=app,
        samples=(),
    )
    # The example tenant must give a valid app, every rule compiled.
    try:
        instance = instantiate(template, example)
    except TemplateError as exc:
        raise fail("app", str(exc)) from None
    _check_app(instance, fail)
    ids = template.context_ids()
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise fail("app.contexts", f"duplicate context id(s): {', '.join(dupes)}")
    samples = _samples(data.get("samples"), set(ids), fail)
    return AppTemplate(
        id=tid,
        name=title,
        description=description.strip(),
        tenant_label=label,
        tenant_example=example,
        tenant_pattern=pattern,
        app=app,
        samples=samples,
    )


# -- helpers ---------------------------------------------------------------------------------------


def _check_tenant(template: AppTemplate, tenant: str) -> str:
    value = tenant.strip() if isinstance(tenant, str) else ""
    if not value:
        raise TemplateError(
            f"{template.tenant_label}: is required (e.g. {template.tenant_example})"
        )
    if not TENANT_CHARS.fullmatch(value) or not re.fullmatch(template.tenant_pattern, value):
        raise TemplateError(
            f"{template.tenant_label}: {value!r} is not valid for {template.name} "
            f"(e.g. {template.tenant_example}; expected {template.tenant_pattern})"
        )
    return value


def _text(data: dict[Any, Any], key: str, fail: Any, prefix: str = "") -> str:
    value = data.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise fail(f"{prefix}{key}", "is required (non-empty text)")
    return value.strip()


def _replace(value: Any, tenant: str) -> Any:
    if isinstance(value, str):
        return value.replace(TENANT, tenant)
    if isinstance(value, dict):
        return {k: _replace(v, tenant) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace(v, tenant) for v in value]
    return value


def _patterns_in(app: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field path, pattern) of every rule written in the template's app part."""

    def of(rule: Any) -> str | None:
        if isinstance(rule, dict):
            rule = rule.get("pattern")
        return rule if isinstance(rule, str) else None

    for i, rule in enumerate(app.get("rules") or ()):
        if (p := of(rule)) is not None:
            yield f"rules[{i}]", p
    for i, ctx in enumerate(app.get("contexts") or ()):
        if not isinstance(ctx, dict):
            continue
        if (p := of(ctx.get("rule"))) is not None:
            yield f"contexts[{i}].rule", p
        many = ctx.get("rules")
        for j, rule in enumerate(many if isinstance(many, list) else ()):
            if (p := of(rule)) is not None:
                yield f"contexts[{i}].rules[{j}]", p


def _check_app(data: dict[str, Any], fail: Any) -> App:
    try:
        app = validate(App, data)
    except FieldErrors as exc:
        field, message = exc.errors[0]
        more = f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
        raise fail(f"app.{field}" if field else "app", f"{message}{more}") from None
    app_rules = RuleSet(
        [_compile(spec, f"app.rules[{i}]", fail).rule for i, spec in enumerate(app.rules)]
    )
    for i, ctx in enumerate(app.contexts):
        for j, spec in enumerate(ctx.rules):
            field = f"app.contexts[{i}].rules[{j}]"
            # A context rule also claims the app for the pages it matches: one reaching outside
            # the app's rules would widen the app (checked on a URL the rule matches).
            url = sample_url(_compile(spec, field, fail))
            if url is not None and not app_rules.match(url):
                raise fail(
                    field,
                    f"{spec.pattern!r} matches pages outside the app's rules (e.g. {url}); "
                    "keep a context's rules inside its app's",
                )
    return app


def _compile(spec: RuleSpec, field: str, fail: Any) -> CompiledRule:
    try:
        return compile_rule(Rule(field, spec.pattern, field, spec.priority))
    except InvalidRule as exc:
        raise fail(field, f"invalid URL rule {spec.pattern!r}: {exc}") from None


def _samples(value: Any, ids: set[str], fail: Any) -> tuple[TemplateSample, ...]:
    if not isinstance(value, list) or not value:
        raise fail("samples", "needs sample URLs of the app, each with its expected context")
    out = []
    for i, item in enumerate(value):
        where = f"samples[{i}]"
        if not isinstance(item, dict):
            raise fail(where, "must be a mapping with url and context")
        unknown = sorted(set(map(str, item)) - SAMPLE_FIELDS)
        if unknown:
            raise fail(f"{where}.{unknown[0]}", f"unknown field(s): {', '.join(unknown)}")
        url = item.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://", url, re.IGNORECASE):
            raise fail(f"{where}.url", "must be an http(s) URL")
        if "context" in item and "contexts" in item:
            raise fail(where, "has both context and contexts (one or the other)")
        if "contexts" in item:
            many = item["contexts"]
            if not isinstance(many, list) or not all(isinstance(c, str) for c in many):
                raise fail(f"{where}.contexts", "must be a list of context ids")
            contexts = tuple(many)
        elif "context" in item:
            one = item["context"]
            if one is not None and not isinstance(one, str):
                raise fail(f"{where}.context", "must be a context id or null")
            contexts = (one,) if one else ()
        else:
            raise fail(where, "needs context (a context id, or null for none)")
        for c in contexts:
            if c not in ids:
                raise fail(f"{where}.context", f"{c!r} is not a context of the template")
        in_app = item.get("app", True)
        if not isinstance(in_app, bool):
            raise fail(f"{where}.app", "must be true or false")
        if not in_app and contexts:
            raise fail(where, "a URL outside the app (app: false) has no context")
        out.append(TemplateSample(url, in_app, contexts))
    return tuple(out)


# -- test vectors ----------------------------------------------------------------------------------


def vectors(folders: tuple[Path, ...] = (TEMPLATES_DIR, SAMPLES_DIR)) -> dict[str, Any]:
    """For every template: the rules document of its app (example tenant) and its samples."""
    from server.catalog import Catalog  # the served document's own code path

    cases = []
    for folder in folders:
        kind = "template" if folder == TEMPLATES_DIR else "sample"
        for template in load_templates(folder).values():
            app = validate(App, instantiate(template, template.tenant_example))
            doc = Catalog.build(1, [app], []).rules_document()
            cases.append(
                {
                    "template": template.id,
                    "source": f"{folder.relative_to(ROOT)}/{template.id}.yaml",
                    "kind": kind,
                    "tenant": template.tenant_example,
                    "rules": doc,
                    "samples": [
                        {
                            "url": s.url,
                            "app": app.id if s.app else None,
                            "contexts": [f"{app.id}-{c}" for c in s.contexts],
                        }
                        for s in template.samples
                    ],
                }
            )
    return {
        "about": "Generated by `python -m server.app_templates --vectors`; do not edit. Each "
        "case: the rules document (GET /api/v1/rules) of one template's app with its example "
        "tenant, and sample URLs with the app and contexts (best first) they resolve to.",
        "cases": cases,
    }


def vectors_text() -> str:
    return json.dumps(vectors(), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.app_templates")
    parser.add_argument("--vectors", action="store_true", help=f"write {VECTORS.relative_to(ROOT)}")
    parser.add_argument("--check", action="store_true", help="load and check every template")
    args = parser.parse_args(argv)
    if args.vectors:
        VECTORS.write_text(vectors_text(), encoding="utf-8")
        print(f"wrote {VECTORS.relative_to(ROOT)}")
        return 0
    try:
        for folder in (TEMPLATES_DIR, SAMPLES_DIR):
            for t in load_templates(folder).values():
                print(
                    f"{t.id}: {len(t.app.get('contexts') or ())} contexts, {len(t.samples)} samples"
                )
    except TemplateError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
