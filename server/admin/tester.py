"""The rule tester, the admin's debugger: for a page (URL, and optionally title, headings and
selection) every rule tried with why it matched or not, the winning app, the contexts in effect
and why the others are not, the aids and mentors the sidebar shows a person with a given role and
groups (the very `Suggester.suggest` call the panel's suggest request makes), and the warnings of
the winning app's rules.

The request and the answer are declared here (`RuleTestRequest`, `RuleTestResult`); the OpenAPI
entry derives from them (server/admin/openapi.py).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field

from server.admin.common import ServiceBase
from server.admin.rules import RuleWarning, rule_warnings
from server.catalog import Catalog, Resolution
from server.models import (
    CONFIG,
    App,
    Context,
    NoMatch,
    SuggestedAid,
    SuggestedMentor,
    adapter,
)
from server.suggest import PageSignals
from server.urlrules import CompiledRule, InvalidUrl, ParsedUrl, parse_url
from server.urlrules.explain import explain

MAX_TRIED = 200
MAX_VERDICTS = 100


@dataclass(frozen=True)
class RuleTestRequest:
    """POST /api/v1/admin/rules/test: a page as the panel reads it, and whose sidebar to show."""

    __pydantic_config__ = CONFIG

    url: Annotated[str, Field(min_length=1, max_length=8192, description="Absolute http(s) URL")]
    title: Annotated[str, Field(max_length=500)] = ""
    headings: Annotated[
        tuple[Annotated[str, Field(max_length=300)], ...], Field(max_length=50)
    ] = ()
    selection: Annotated[str, Field(max_length=2000)] = ""
    role: Annotated[
        str,
        Field(
            max_length=64,
            description="Whose sidebar: a role (admin sees every audience); empty: no role",
        ),
    ] = ""
    groups: Annotated[tuple[Annotated[str, Field(max_length=64)], ...], Field(max_length=20)] = ()
    limit: Annotated[int | None, Field(ge=1, le=50)] = None


@dataclass(frozen=True)
class TriedRule:
    """One rule tried on the page: did it match, and why (or why not)."""

    rule_id: str
    rule: Annotated[str, Field(description="The pattern as written")]
    priority: int
    kind: Literal["app", "context"]
    app: Annotated[str, Field(description="The app the rule belongs to")]
    context: Annotated[str | None, Field(description="The context, for a context's rule")]
    matched: bool
    matched_on: Annotated[
        Literal["page", "target"] | None,
        Field(description="page: the URL itself; target: the page a wrapper URL shows"),
    ]
    why: Annotated[
        str, Field(description="Why it ranks where it does, or the first part that differs")
    ]
    won: Annotated[bool, Field(description="This rule picked the app")]
    in_effect: Annotated[bool, Field(description="Its context is one the sidebar uses")]


@dataclass(frozen=True)
class ContextVerdict:
    """A context of the winning app: in effect or not, and why."""

    id: str
    name: str
    in_effect: bool
    why: str


@dataclass(frozen=True)
class Named:
    id: str
    name: str


@dataclass(frozen=True)
class RuleRef:
    """A rule that matched, and why it ranks where it does."""

    rule: str
    rule_id: str
    reason: str


@dataclass(frozen=True)
class Candidate:
    """A matching rule, best first (`kind` app or ctx, `target` the app or context id)."""

    rule: str
    rule_id: str
    kind: str
    target: str
    reason: str


@dataclass(frozen=True)
class RuleTestResult:
    """The answer: what `POST /api/v1/suggest` answers (app, contexts, match, aids, mentors,
    no_match, generation) for the role and groups, and the tester's explanations."""

    app: Named | None
    contexts: tuple[Named, ...]
    match: RuleRef | None
    aids: tuple[SuggestedAid, ...]
    mentors: tuple[SuggestedMentor, ...]
    no_match: NoMatch | None
    role: str | None
    groups: tuple[str, ...]
    url: str
    target_url: Annotated[
        str | None,
        Field(description="The page this URL wraps (the app's wrapped targets), if any"),
    ]
    winner: Annotated[RuleRef | None, Field(description="The rule that picked the app")]
    candidates: Annotated[tuple[Candidate, ...], Field(description="Matching rules, best first")]
    rules: Annotated[
        tuple[TriedRule, ...],
        Field(description=f"Rules tried: matching ones first, at most {MAX_TRIED}"),
    ]
    rules_total: Annotated[int, Field(description="How many rules were tried in all")]
    context_verdicts: Annotated[
        tuple[ContextVerdict, ...], Field(description="Each context of the app, and why")
    ]
    notes: Annotated[
        tuple[str, ...],
        Field(description="Plain sentences: wrapped page used, fallback dropped, exclusive cut"),
    ]
    warnings: Annotated[
        tuple[RuleWarning, ...], Field(description="Rule warnings of the winning app")
    ]
    generation: int = 0


class TesterOps(ServiceBase):
    """The rule tester (POST /api/v1/admin/rules/test and the console's /admin/tester)."""

    async def test_rules(
        self,
        url: str,
        title: str,
        role: str,
        groups: tuple[str, ...],
        limit: int,
        *,
        headings: tuple[str, ...] = (),
        selection: str = "",
    ) -> dict[str, Any]:
        """What the sidebar shows on the page for someone with `role` (and `groups`), and why."""
        catalog = self.library.catalog
        audience: frozenset[str] | None = (
            None if role == "admin" else frozenset({role, *groups}) if role else frozenset(groups)
        )
        page = PageSignals(url=url, title=title, selection=selection, headings=headings)
        result = await self.suggester.suggest(catalog, page, audience, limit)
        loop = asyncio.get_running_loop()
        debug = await loop.run_in_executor(None, _debug, catalog, url, title or None)
        return {**result, "role": role or None, "groups": list(groups), **debug}


def _debug(catalog: Catalog, url: str, title: str | None) -> dict[str, Any]:
    """The tester's own parts: rules tried, contexts in effect and why, notes, warnings."""
    resolution = catalog.resolve(url, title)
    winner = resolution.match
    candidates = []
    for m in catalog.rules.match(url)[:20]:
        kind, _, ident = m.target.partition(":")
        candidates.append(
            {
                "rule": m.pattern,
                "rule_id": m.rule_id,
                "kind": kind,
                "target": ident,
                "reason": m.reason,
            }
        )
    out: dict[str, Any] = {
        "url": url,
        "target_url": None,
        "winner": {"rule": winner.pattern, "rule_id": winner.rule_id, "reason": winner.reason}
        if winner
        else None,
        "candidates": candidates,
        "rules": [],
        "rules_total": 0,
        "context_verdicts": [],
        "notes": [],
        "warnings": [],
    }
    try:
        parsed = parse_url(url)
    except InvalidUrl:
        return out
    app = resolution.app
    target = resolution.target_url
    target_parsed = parse_url(target) if target else None
    in_effect = {c.id for c in resolution.contexts}
    tried = _tried(catalog, parsed, target_parsed, resolution, in_effect)
    out["target_url"] = target
    out["rules"] = [_dump(TriedRule, t) for t in tried[:MAX_TRIED]]
    out["rules_total"] = len(tried)
    notes: list[str] = []
    if app is None:
        notes.append("No app's rule matches this URL: the sidebar stays empty there.")
    else:
        if target:
            notes.append(
                f"This URL shows another page of {app.name} inside it: the contexts were "
                f"matched against {target} first, then against the URL itself."
            )
        matched = {t.context for t in tried if t.matched and t.context}
        first: dict[str, TriedRule] = {}
        for t in tried:
            if t.context is not None:
                first.setdefault(t.context, t)
        verdicts = _verdicts(app, resolution, matched, first, title)
        # in effect first, then those whose rules matched but were dropped, then the rest
        verdicts.sort(key=lambda v: (not v.in_effect, v.id not in matched))
        out["context_verdicts"] = [_dump(ContextVerdict, v) for v in verdicts[:MAX_VERDICTS]]
        notes += [f"{v.name}: {v.why}" for v in verdicts if not v.in_effect and v.id in matched]
        out["warnings"] = rule_warnings(app, list(catalog.apps.values()), catalog=catalog)
    out["notes"] = notes
    return out


def _host_related(rule: CompiledRule, host: str) -> bool:
    """Could the rule be meant for this host? Its host applies, or the rule's host is part of
    the URL's (`*.service-now.com` is tried on the lookalike `acme.service-now.com.evil.io`)."""
    if rule.regex is not None or not rule.host:
        return True
    return f".{rule.host}." in f".{host}."


def _tried(
    catalog: Catalog,
    url: ParsedUrl,
    target: ParsedUrl | None,
    resolution: Resolution,
    in_effect: set[str],
) -> list[TriedRule]:
    app = resolution.app
    winner = resolution.match.rule_id if resolution.match else None
    hits: list[tuple[CompiledRule, TriedRule]] = []
    misses: list[tuple[CompiledRule, TriedRule]] = []
    for rule in catalog.rules:
        kind, _, ident = rule.rule.target.partition(":")
        ctx = catalog.contexts.get(ident) if kind == "ctx" else None
        app_id = ctx.app_id if ctx is not None else ident
        # The app's contexts are also matched against the page a wrapper URL shows.
        inner = target if ctx is not None and app is not None and app_id == app.id else None
        if not _host_related(rule, url.host) and not (inner and _host_related(rule, inner.host)):
            continue
        outer_why = explain(rule, url)
        inner_why = explain(rule, inner) if inner is not None else ""
        on: Literal["page", "target"] | None = None
        if outer_why is None:
            on, reason = "page", f"matches; it ranks by: {rule.match.reason}"
        elif inner_why is None:
            on, reason = "target", f"matches the wrapped page; it ranks by: {rule.match.reason}"
        elif inner is not None:
            reason = f"on this URL, {outer_why}; on the wrapped page, {inner_why}"
        else:
            reason = outer_why
        entry = TriedRule(
            rule_id=rule.rule.id,
            rule=rule.rule.pattern,
            priority=rule.rule.priority,
            kind="context" if ctx is not None else "app",
            app=app_id,
            context=ctx.id if ctx is not None else None,
            matched=on is not None,
            matched_on=on,
            why=reason,
            won=rule.rule.id == winner,
            in_effect=on is not None and ctx is not None and ctx.id in in_effect,
        )
        (hits if on is not None else misses).append((rule, entry))
    hits.sort(key=lambda pair: (pair[1].matched_on != "target", pair[0].sort_key))
    misses.sort(key=lambda pair: pair[0].sort_key)
    return [entry for _, entry in hits + misses]


def _verdicts(
    app: App,
    resolution: Resolution,
    matched: set[str],
    first: dict[str, TriedRule],
    title: str | None,
) -> list[ContextVerdict]:
    """Each context of the app; `first`: its best rule tried (a matching one when it matched)."""
    effect = resolution.contexts
    ids = {c.id for c in effect}
    out = []
    for ctx in app.contexts:
        if ctx.id not in ids:
            why = _why_not(ctx, effect, matched, first.get(ctx.id), title)
            out.append(ContextVerdict(ctx.id, ctx.name, False, why))
            continue
        best = first.get(ctx.id)
        why = "in effect"
        if best is not None and best.matched:
            where = "the wrapped page" if best.matched_on == "target" else "this URL"
            why = f"in effect: {best.rule} matches {where}"
        if ctx.exclusive and effect[-1].id == ctx.id and matched - ids:
            why += "; it is exclusive, so the contexts ranked after it are dropped"
        out.append(ContextVerdict(ctx.id, ctx.name, True, why + "."))
    return out


def _why_not(
    ctx: Context,
    effect: tuple[Context, ...],
    matched: set[str],
    best: TriedRule | None,
    title: str | None,
) -> str:
    if ctx.id not in matched:
        if best is None:
            return "not in effect: none of its rules is for this host."
        return f"not in effect: {best.rule}: {best.why}."
    if (
        title is not None
        and ctx.title_pattern
        and not re.search(ctx.title_pattern, title, re.IGNORECASE)
    ):
        return (
            "its rule matches, but the title does not match its title pattern "
            f"/{ctx.title_pattern}/."
        )
    specific = [c.name for c in effect if not c.fallback]
    if ctx.fallback and specific:
        return (
            "a fallback context, dropped because a more specific context matched "
            f"({', '.join(specific)})."
        )
    cut = [c.name for c in effect if c.exclusive]
    if cut:
        return (
            f"its rule matches, but the exclusive context {cut[0]} ranks before it "
            "and drops the contexts after it."
        )
    return "its rule matches, but it is not in effect."


def _dump(cls: type, obj: Any) -> dict[str, Any]:
    data: dict[str, Any] = adapter(cls).dump_python(obj, mode="json")
    return data
