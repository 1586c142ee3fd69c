"""The public value types: a rule as written, and a match as reported."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """A URL rule: `pattern` (see docs/url-rules.md) maps a page to an opaque `target`."""

    id: str
    pattern: str
    target: str
    priority: int = 0


@dataclass(frozen=True)
class Match:
    """One rule that matched a URL, with a sentence saying why it ranks where it does."""

    rule_id: str
    target: str
    pattern: str
    reason: str
