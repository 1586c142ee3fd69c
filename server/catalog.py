"""The in-memory catalog: apps, contexts, aid metadata, mentors and the compiled URL rules.

Rebuilt from the database whenever content changes (an immutable snapshot swapped in one
assignment), so the hot path never touches SQLite. Aid bodies stay in the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from server.models import Aid, App, Context, Mentor
from server.urlrules import InvalidUrl, Match, Rule, RuleSet, parse_url
from server.wrapped import WrappedTarget, compile_wrapped_targets, unwrap


def rank_contexts(matched: list[Context]) -> tuple[Context, ...]:
    """Matched contexts of one app, best first, as they count: fallback contexts only when no
    other context matched; nothing after the first exclusive one."""
    if any(not c.fallback for c in matched):
        matched = [c for c in matched if not c.fallback]
    for i, ctx in enumerate(matched):
        if ctx.exclusive:
            return tuple(matched[: i + 1])
    return tuple(matched)


@dataclass(frozen=True)
class AidMeta:
    id: str
    title: str
    summary: str
    type: str
    apps: tuple[str, ...]
    audience: tuple[str, ...]
    status: str
    source: str
    tags: tuple[str, ...] = ()  # what the page is about, for ranking mentors (server/suggest.py)
    owner: str = ""  # who keeps the aid (a team or person): "Pinned by <owner>" in suggest

    @classmethod
    def of(cls, aid: Aid) -> AidMeta:
        return cls(
            aid.id,
            aid.title,
            aid.summary,
            aid.type,
            aid.apps,
            aid.audience,
            aid.status,
            aid.source,
            aid.tags,
            aid.owner,
        )

    def visible_to(self, tags: frozenset[str] | None) -> bool:
        return tags is None or not self.audience or bool(tags.intersection(self.audience))


def _app_aids(metas: dict[str, AidMeta]) -> dict[str, tuple[str, ...]]:
    """Aid ids mapped to each app, by title: the 'mapped to this app' fill-in order."""
    app_aids: dict[str, list[str]] = {}
    for meta in sorted(metas.values(), key=lambda m: m.title.lower()):
        for app_id in meta.apps:
            app_aids.setdefault(app_id, []).append(meta.id)
    return {k: tuple(v) for k, v in app_aids.items()}


def _app_mentors(mentors: tuple[Mentor, ...]) -> dict[str, tuple[Mentor, ...]]:
    """Mentors learners may see (vetted and active) per app, by name: suggest's candidates."""
    out: dict[str, list[Mentor]] = {}
    for m in sorted(mentors, key=lambda m: (m.name.lower(), m.id)):
        if m.listed:
            for app_id in m.apps:
                out.setdefault(app_id, []).append(m)
    return {k: tuple(v) for k, v in out.items()}


@dataclass(frozen=True)
class Resolution:
    """Which app a page is (`match`: the best-ranked rule, which picked it) and which of its
    contexts, best first. `target_url`: the page the app wraps at this URL (its wrapped targets),
    whose matches ranked first; `context_matches`: the rule that brought in each context."""

    app: App | None
    contexts: tuple[Context, ...]
    match: Match | None
    target_url: str | None = None
    context_matches: tuple[Match, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "app": {"id": self.app.id, "name": self.app.name} if self.app else None,
            "contexts": [{"id": c.id, "name": c.name} for c in self.contexts],
            "match": {
                "rule": self.match.pattern,
                "rule_id": self.match.rule_id,
                "reason": self.match.reason,
            }
            if self.match
            else None,
        }


@dataclass(frozen=True)
class Catalog:
    version: int
    apps: dict[str, App]
    contexts: dict[str, Context]
    aids: dict[str, AidMeta]
    rules: RuleSet
    app_aids: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _title_res: dict[str, re.Pattern[str]] = field(default_factory=dict)
    mentors: tuple[Mentor, ...] = ()  # every mentor, vetted or not (the admin side reads them)
    app_mentors: dict[str, tuple[Mentor, ...]] = field(default_factory=dict)
    wrapped: dict[str, tuple[WrappedTarget, ...]] = field(default_factory=dict)  # per app

    @classmethod
    def build(
        cls, version: int, apps: list[App], aids: list[Aid], mentors: list[Mentor] | None = None
    ) -> Catalog:
        rules: list[Rule] = []
        contexts: dict[str, Context] = {}
        title_res: dict[str, re.Pattern[str]] = {}
        wrapped: dict[str, tuple[WrappedTarget, ...]] = {}
        for app in apps:
            for i, spec in enumerate(app.rules):
                rules.append(
                    Rule(f"app:{app.id}:{i}", spec.pattern, f"app:{app.id}", spec.priority)
                )
            if app.wrapped_targets:
                wrapped[app.id] = compile_wrapped_targets(app.wrapped_targets)
            for ctx in app.contexts:
                contexts[ctx.id] = ctx
                for i, spec in enumerate(ctx.rules):
                    rules.append(
                        Rule(f"ctx:{ctx.id}:{i}", spec.pattern, f"ctx:{ctx.id}", spec.priority)
                    )
                if ctx.title_pattern:
                    title_res[ctx.id] = re.compile(ctx.title_pattern, re.IGNORECASE)
        metas = {a.id: AidMeta.of(a) for a in aids}
        all_mentors = tuple(mentors or ())
        return cls(
            version,
            {a.id: a for a in apps},
            contexts,
            metas,
            RuleSet(rules),
            _app_aids(metas),
            title_res,
            all_mentors,
            _app_mentors(all_mentors),
            wrapped,
        )

    def with_aids(self, version: int, changed: list[Aid]) -> Catalog:
        """A new snapshot with some aids added or updated; apps, contexts and rules are shared
        (compiling 10k rules takes most of a second, and aid edits are the common change)."""
        metas = dict(self.aids)
        metas.update((a.id, AidMeta.of(a)) for a in changed)
        return replace(self, version=version, aids=metas, app_aids=_app_aids(metas))

    def with_mentors(self, version: int, mentors: list[Mentor]) -> Catalog:
        """A new snapshot with a new set of mentors; everything else is shared."""
        every = tuple(mentors)
        return replace(self, version=version, mentors=every, app_mentors=_app_mentors(every))

    def resolve(
        self, url: str, title: str | None = None, selectors_present: frozenset[str] | None = None
    ) -> Resolution:
        """Which app and which of its contexts this page is. The best-ranked rule picks the app.

        Where the app wraps another of its pages (`wrapped_targets`), the contexts matching that
        page come first, then those matching the outer URL. A fallback context counts only when
        no other context of the app matched; an exclusive one drops the contexts after it."""
        try:
            parsed = parse_url(url)
        except InvalidUrl:
            return Resolution(None, (), None)
        matches = self.rules.match_parsed(parsed)
        app: App | None = None
        best: Match | None = None
        for m in matches:
            kind, _, ident = m.target.partition(":")
            app_id = ident if kind == "app" else self.contexts[ident].app_id
            if app_id in self.apps:
                app, best = self.apps[app_id], m
                break
        if app is None:
            return Resolution(None, (), None)
        target = None
        targets = self.wrapped.get(app.id)
        if targets:
            inner = unwrap(parsed, targets)
            if inner is not None:
                target = inner.normalized
                matches = [*self.rules.match_parsed(inner), *matches]
        found: dict[str, Match] = {}
        for m in matches:
            kind, _, ident = m.target.partition(":")
            if kind != "ctx" or ident in found:
                continue
            ctx = self.contexts[ident]
            if ctx.app_id != app.id:
                continue
            if (
                title is not None
                and ctx.id in self._title_res
                and not self._title_res[ctx.id].search(title)
            ):
                continue
            if (
                selectors_present is not None
                and ctx.selector
                and ctx.selector not in selectors_present
            ):
                continue
            found[ident] = m
        kept = rank_contexts([self.contexts[i] for i in found])
        return Resolution(app, kept, best, target, tuple(found[c.id] for c in kept))

    def rules_document(self) -> dict[str, Any]:
        """What the extension downloads to match URLs locally (GET /api/v1/rules)."""
        return {
            "version": self.version,
            "apps": [
                {
                    "id": a.id,
                    "name": a.name,
                    "rules": [
                        {"id": f"app:{a.id}:{i}", "pattern": r.pattern, "priority": r.priority}
                        for i, r in enumerate(a.rules)
                    ],
                    "wrapped_targets": list(a.wrapped_targets),
                }
                for a in self.apps.values()
            ],
            "contexts": [
                {
                    "id": c.id,
                    "app": c.app_id,
                    "name": c.name,
                    "rules": [
                        {"id": f"ctx:{c.id}:{i}", "pattern": r.pattern, "priority": r.priority}
                        for i, r in enumerate(c.rules)
                    ],
                    "fallback": c.fallback,
                    "exclusive": c.exclusive,
                    "title_pattern": c.title_pattern or None,
                    "selector": c.selector or None,
                }
                for c in self.contexts.values()
            ],
        }
