"""Rule checks made when an app is saved (and shown by the rule tester): rules that can never
do what they were written for. These are warnings, not errors: saving still succeeds.

Each rule (the app's own, and every rule of every context) is tried on its own sample URL
(server/urlrules/sample.py: placeholders filled, `*` as `x`, query conditions satisfied), which
the whole catalog then resolves as it would a page. The kinds (`code`):

- `never_matches`: the rule cannot match any URL (a parameter both required and excluded; its
  own sample does not match it);
- `shadowed`: on its sample, another app's rule ranks first, or its context is not in effect;
- `exclusive`: on its sample, an exclusive context of the app ranks first and drops it;
- `outside_app`: a context rule matches no URL the app's own rules accept (another host): the
  extension only reads pages of the app's hosts, so the context is never seen;
- `duplicate`: the same pattern twice among the app's rules, in one context, or in two contexts;
- `conflict`: the same pattern in another app (only one app can win its pages).

Each warning names the rule (`where`, `rule`), says why (`message`) and what to do (`fix`; the
message ends with it too). Regex rules have no sample and are only checked for duplicates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field

from server.catalog import Catalog
from server.models import App, Context, RuleSpec, adapter
from server.urlrules import CompiledRule, InvalidRule, InvalidUrl, Rule, compile_rule, parse_url
from server.urlrules.compiled import CondKind, HostKind, QueryCondition
from server.urlrules.explain import explain
from server.urlrules.sample import sample_url

WarningCode = Literal[
    "never_matches", "shadowed", "exclusive", "outside_app", "duplicate", "conflict"
]


@dataclass(frozen=True)
class RuleWarning:
    """A rule that can never do what it was written for."""

    code: WarningCode
    where: Annotated[
        str, Field(description="Which rule: 'rule 2 of the app', 'context x (rule 1)'")
    ]
    rule: Annotated[str, Field(description="The pattern as written")]
    message: Annotated[str, Field(description="Which rule, why, and what to do")]
    fix: Annotated[str, Field(description="What to do about it")]
    context: str | None = None
    sample_url: Annotated[
        str | None, Field(description="The URL the rule was tried on, when it has one")
    ] = None


@dataclass(frozen=True)
class _Entry:
    where: str
    rule_id: str
    compiled: CompiledRule | None  # None: the rule does not compile (the save refuses it)
    context: Context | None


def _specs(app: App) -> Iterator[tuple[str, str, RuleSpec, Context | None]]:
    """(where, rule id, rule) of the app's rules, then each context's, as the catalog ids them."""
    for i, spec in enumerate(app.rules):
        yield f"rule {i + 1} of the app", f"app:{app.id}:{i}", spec, None
    for ctx in app.contexts:
        many = len(ctx.rules) > 1
        for i, spec in enumerate(ctx.rules):
            where = f"context {ctx.id!r}" + (f" (rule {i + 1})" if many else "")
            yield where, f"ctx:{ctx.id}:{i}", spec, ctx


def _entries(app: App) -> list[_Entry]:
    out = []
    for where, rule_id, spec, ctx in _specs(app):
        target = f"ctx:{ctx.id}" if ctx is not None else "app"
        try:
            compiled: CompiledRule | None = compile_rule(
                Rule(rule_id, spec.pattern, target, spec.priority)
            )
        except InvalidRule:
            compiled = None
        out.append(_Entry(where, rule_id, compiled, ctx))
    return out


def rule_warnings(
    app: App, others: list[App], *, catalog: Catalog | None = None
) -> list[dict[str, Any]]:
    """Warnings for `app` among `others` (the other apps; `app`'s old version is ignored).
    `catalog`: one already holding exactly these apps (the tester's), else one is built."""
    entries = _entries(app)
    found = _duplicates(app, entries) + _conflicts(app, entries, others)
    if catalog is None:
        try:
            catalog = Catalog.build(0, [a for a in others if a.id != app.id] + [app], [])
        except InvalidRule:
            catalog = None
    own = [e.compiled for e in entries if e.context is None and e.compiled is not None]
    for entry in entries:
        found += _by_sample(own, entry, catalog, app.id)
    return [adapter(RuleWarning).dump_python(w, mode="json") for w in found]


def _warn(
    code: WarningCode,
    entry: _Entry,
    why: str,
    fix: str,
    sample: str | None = None,
) -> RuleWarning:
    rule = entry.compiled.rule.pattern if entry.compiled else ""
    return RuleWarning(
        code,
        entry.where,
        rule,
        f"{entry.where} ({rule}) {why}. {fix}",
        fix,
        entry.context.id if entry.context else None,
        sample,
    )


def _duplicates(app: App, entries: list[_Entry]) -> list[RuleWarning]:
    out = []
    seen: dict[tuple[str, str], _Entry] = {}
    for entry in entries:
        if entry.compiled is None:
            continue
        pattern = entry.compiled.rule.pattern
        group = "app" if entry.context is None else "contexts"
        first = seen.setdefault((group, pattern), entry)
        if first is entry:
            continue
        if entry.context is None or first.context is entry.context:
            out.append(
                _warn("duplicate", entry, f"repeats {first.where}", "Delete one of the two.")
            )
        else:
            assert first.context is not None
            out.append(
                _warn(
                    "duplicate",
                    entry,
                    f"is also a rule of context {first.context.id!r}, so both contexts always "
                    "match together",
                    "Merge the two contexts, or make one rule more specific.",
                )
            )
    return out


def _conflicts(app: App, entries: list[_Entry], others: list[App]) -> list[RuleWarning]:
    elsewhere: dict[str, list[str]] = {}
    for other in others:
        if other.id == app.id:
            continue
        for where, _, spec, _ in _specs(other):
            elsewhere.setdefault(spec.pattern, []).append(
                f"{where} of app {other.id!r} (priority {spec.priority})"
            )
    out = []
    for entry in entries:
        if entry.compiled is None or entry.compiled.rule.pattern not in elsewhere:
            continue
        rule = entry.compiled.rule
        out.append(
            _warn(
                "conflict",
                entry,
                f"(priority {rule.priority}) is also "
                + "; ".join(elsewhere[rule.pattern])
                + ": only one app can win its pages",
                "Keep the pattern in one app, or give the one that should win a higher priority.",
            )
        )
    return out


def _contradiction(conditions: tuple[QueryCondition, ...]) -> str | None:
    required = {c.name for c in conditions if c.kind is not CondKind.ABSENT}
    for cond in conditions:
        if cond.kind is CondKind.ABSENT and cond.name in required:
            return cond.name
    return None


def _never(entry: _Entry) -> RuleWarning | None:
    compiled = entry.compiled
    assert compiled is not None
    fix = "Remove the condition that contradicts the other, or delete the rule."
    name = _contradiction(compiled.conditions)
    if name is not None:
        why = f"can never match: query parameter {name} is both required and excluded (!{name})"
        return _warn("never_matches", entry, why, fix)
    if compiled.fragment is not None:
        name = _contradiction(compiled.fragment.conditions)
        if name is not None:
            why = (
                f"can never match: fragment parameter {name} is both required and "
                f"excluded (!{name})"
            )
            return _warn("never_matches", entry, why, fix)
    return None


def _by_sample(
    own: list[CompiledRule], entry: _Entry, catalog: Catalog | None, app_id: str
) -> list[RuleWarning]:
    """`own`: the app's own rules (not its contexts'), compiled."""
    compiled = entry.compiled
    if compiled is None or compiled.regex is not None:
        return []
    never = _never(entry)
    if never is not None:
        return [never]
    sample = sample_url(compiled)
    if sample is None:
        why = "can never match: no URL satisfies all its parts"
        fix = "Rewrite the rule (docs/url-rules.md) and check it in the rule tester."
        return [_warn("never_matches", entry, why, fix)]
    try:
        parsed = parse_url(sample)
    except InvalidUrl:
        return []
    why_not = explain(compiled, parsed)
    if why_not is not None:
        return [
            _warn(
                "never_matches",
                entry,
                f"does not match even its own sample URL {sample} ({why_not})",
                "Rewrite the rule (docs/url-rules.md) and check it in the rule tester.",
                sample,
            )
        ]
    out = []
    ctx = entry.context
    if ctx is not None and own and not any(r.matches(parsed) for r in own):
        host = "other pages" if _host_covered(own, parsed.host) else "another host"
        out.append(
            _warn(
                "outside_app",
                entry,
                f"is for {host} than the app's own rules: none of them matches {sample}, and the "
                "extension reads only pages of the app's rules",
                "Use the app's host in the context rule, or add a rule for this host to the app.",
                sample,
            )
        )
    if catalog is None:
        return out
    resolution = catalog.resolve(sample)
    if resolution.app is None or resolution.match is None:
        return out
    if resolution.app.id != app_id:
        winner = resolution.match
        out.append(
            _warn(
                "shadowed",
                entry,
                f"can never win {sample}: app {resolution.app.id!r} takes it with "
                f"{winner.pattern} ({winner.reason})",
                "Give this rule a higher priority, make it more specific, or narrow the other "
                "app's rule.",
                sample,
            )
        )
        return out
    if ctx is None or any(c.id == ctx.id for c in resolution.contexts):
        return out
    exclusive = [c for c in resolution.contexts if c.exclusive]
    if exclusive:
        cut = exclusive[0]
        out.append(
            _warn(
                "exclusive",
                entry,
                f"is never in effect on {sample}: the exclusive context {cut.id!r} matches it "
                "first and drops the contexts after it",
                f"Make {cut.id!r} more specific, give it a lower priority than this rule, or "
                "clear its exclusive flag.",
                sample,
            )
        )
    elif not ctx.fallback:  # a fallback steps back for a specific context: that is its job
        names = ", ".join(repr(c.id) for c in resolution.contexts) or "none"
        out.append(
            _warn(
                "shadowed",
                entry,
                f"is not in effect on {sample} (contexts in effect: {names})",
                "Check the context's title pattern and selector in the rule tester.",
                sample,
            )
        )
    return out


def _host_covered(own: list[CompiledRule], host: str) -> bool:
    for rule in own:
        if rule.regex is not None or not rule.host or rule.host == host:
            return True
        if rule.host_kind is HostKind.WILDCARD and host.endswith("." + rule.host):
            return True
    return False
