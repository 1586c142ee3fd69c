"""Rule checks made when an app is saved: conflicting and shadowed URL rules.

A rule is *conflicting* when the same pattern appears elsewhere (in this app or another one), and
*shadowed* when, for a sample URL the rule matches, a rule of another app ranks higher, so pages
the rule was written for go to the other app. Samples are made from the pattern itself
(`*` becomes `x`, `**` one segment, query conditions satisfied); regex rules are not sampled.
These are warnings, not errors: saving still succeeds.
"""

from __future__ import annotations

import re
from typing import Any

from server.catalog import Catalog
from server.models import App
from server.urlrules import InvalidRule, InvalidUrl, Rule, compile_rule


def sample_url(pattern: str) -> str | None:
    """A URL the pattern should match, or None when none can be made (regex rules)."""
    if pattern.startswith("re:") or "://" not in pattern:
        return None
    scheme, _, rest = pattern.partition("://")
    scheme = "https" if scheme == "*" else scheme
    fragment = ""
    if "#" in rest:
        rest, _, fragment = rest.partition("#")
    query = ""
    if "?" in rest:
        rest, _, query = rest.partition("?")
    host, slash, path = rest.partition("/")
    if host == "*":
        host = "example.com"
    host = host.replace("*", "x")
    segments = [("x" if s in {"*", "**"} else s.replace("*", "x")) for s in path.split("/")]
    params = []
    for cond in filter(None, query.split("&")):
        if cond.startswith("!"):
            continue
        name, eq, value = cond.partition("=")
        params.append(f"{name}={value.replace('*', 'x') if eq else 'x'}")
    url = f"{scheme}://{host}{slash}{'/'.join(segments)}"
    if params:
        url += "?" + "&".join(params)
    if fragment:
        url += "#" + re.sub(r"\*+", "x", fragment)
    return url


def _rules_of(app: App) -> list[tuple[str, str, int]]:
    """(label, pattern, priority) for the app's rules and its contexts' rules."""
    out = [(f"rule {i + 1}", r.pattern, r.priority) for i, r in enumerate(app.rules)]
    out += [(f"context {c.id!r}", r.pattern, r.priority) for c in app.contexts for r in c.rules]
    return out


def rule_warnings(app: App, others: list[App]) -> list[dict[str, Any]]:
    warnings: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for label, pattern, _ in _rules_of(app):
        if pattern in seen:
            warnings.append(
                {
                    "code": "duplicate",
                    "rule": pattern,
                    "message": f"{label} repeats the pattern of {seen[pattern]} in this app.",
                }
            )
        seen.setdefault(pattern, label)
    elsewhere: dict[str, list[str]] = {}
    for other in others:
        if other.id == app.id:
            continue
        for label, pattern, priority in _rules_of(other):
            elsewhere.setdefault(pattern, []).append(
                f"{label} of app {other.id!r} (priority {priority})"
            )
    for label, pattern, priority in _rules_of(app):
        if pattern in elsewhere:
            warnings.append(
                {
                    "code": "conflict",
                    "rule": pattern,
                    "message": f"{label} (priority {priority}) has the same pattern as "
                    + "; ".join(elsewhere[pattern])
                    + ": only one app can win its pages.",
                }
            )
    try:
        catalog = Catalog.build(0, [a for a in others if a.id != app.id] + [app], [])
    except InvalidRule:
        return warnings
    for label, pattern, priority in _rules_of(app):
        url = sample_url(pattern)
        if url is None:
            continue
        try:
            compile_rule(Rule("probe", pattern, "probe", priority))
            resolution = catalog.resolve(url)
        except (InvalidRule, InvalidUrl, ValueError):
            continue
        if resolution.app is not None and resolution.app.id != app.id and resolution.match:
            warnings.append(
                {
                    "code": "shadowed",
                    "rule": pattern,
                    "sample_url": url,
                    "message": f"{label} can never win for {url}: app "
                    f"{resolution.app.id!r} takes it with {resolution.match.pattern!r} "
                    f"({resolution.match.reason})",
                }
            )
    return warnings
