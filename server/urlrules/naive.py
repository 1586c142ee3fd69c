"""The reference matcher: test every compiled rule. RuleSet must always agree with it."""

from __future__ import annotations

from collections.abc import Iterable

from server.urlrules.compiled import CompiledRule
from server.urlrules.model import Match
from server.urlrules.url import InvalidUrl, parse_url


def naive_match(rules: Iterable[CompiledRule], url: str) -> list[Match]:
    """All rules matching `url`, best first; [] for a URL that is not a loadable http(s) URL."""
    try:
        parsed = parse_url(url)
    except InvalidUrl:
        return []
    hits = sorted((r for r in rules if r.matches(parsed)), key=lambda r: r.sort_key)
    return [r.match for r in hits]
