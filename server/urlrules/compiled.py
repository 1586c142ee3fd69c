"""A compiled rule: the checks it makes on a ParsedUrl, its index keys and its rank."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from server.urlrules.model import Match, Rule
from server.urlrules.segments import Glob, SegmentPattern, Typed
from server.urlrules.url import FRAGMENT_MARK, ParsedUrl


class HostKind(IntEnum):
    """Order matters: it is the host part of the sort key."""

    EXACT = 0
    WILDCARD = 1  # `*.suffix`, or any host when the suffix is ""
    REGEX = 2  # `re:` rules rank after every pattern rule of the same priority


class CondKind(IntEnum):
    PRESENT = 0
    ABSENT = 1
    EQUALS = 2


@dataclass(frozen=True, slots=True)
class QueryCondition:
    name: str
    kind: CondKind
    value: str | Glob | Typed = ""

    def holds(self, params: Mapping[str, tuple[str, ...]]) -> bool:
        values = params.get(self.name)
        if self.kind is CondKind.PRESENT:
            return values is not None
        if self.kind is CondKind.ABSENT:
            return values is None
        if values is None:
            return False
        value = self.value
        if isinstance(value, str):
            return value in values
        return any(value.matches(v) for v in values)


@dataclass(frozen=True, slots=True)
class FragmentPattern:
    route: SegmentPattern
    conditions: tuple[QueryCondition, ...]


SortKey = tuple[int, int, int, int, int, int, int, int, str]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """Everything `compile_rule` learned about a rule; `matches` is the whole test."""

    rule: Rule
    schemes: frozenset[str]
    host_kind: HostKind
    host: str  # exact host, or the wildcard suffix ("" = any host); "" for regex rules
    port: int | None
    path: SegmentPattern | None  # None only for regex rules
    conditions: tuple[QueryCondition, ...] = ()
    fragment: FragmentPattern | None = None
    regex: re.Pattern[str] | None = None
    sort_key: SortKey = field(init=False)
    match: Match = field(init=False)
    index_keys: tuple[str, ...] = field(init=False)
    index_exact: bool = field(init=False)

    def __post_init__(self) -> None:
        literal, typed, wildcards = self._counts()
        queries = len(self.conditions) + (len(self.fragment.conditions) if self.fragment else 0)
        labels = len(self.host.split(".")) if self.host else 0
        is_regex = self.regex is not None
        key: SortKey = (
            -self.rule.priority,
            int(self.host_kind),
            -labels,
            -literal,
            -typed,
            -queries,
            wildcards,
            int(is_regex),
            self.rule.id,
        )
        object.__setattr__(self, "sort_key", key)
        reason = self._reason(literal, typed, queries, wildcards)
        match = Match(self.rule.id, self.rule.target, self.rule.pattern, reason)
        object.__setattr__(self, "match", match)
        keys, exact = self._index_keys()
        object.__setattr__(self, "index_keys", keys)
        object.__setattr__(self, "index_exact", exact)

    def _counts(self) -> tuple[int, int, int]:
        if self.path is None:
            return 0, 0, 0
        literal, wildcards = self.path.literal_count, self.path.wildcard_count
        typed = self.path.typed_count
        if self.fragment is not None:
            literal += self.fragment.route.literal_count
            typed += self.fragment.route.typed_count
            wildcards += self.fragment.route.wildcard_count
        wildcards += self.host_kind is HostKind.WILDCARD
        wildcards += len(self.schemes) > 1
        return literal, typed, wildcards

    def _reason(self, literal: int, typed: int, queries: int, wildcards: int) -> str:
        priority = self.rule.priority
        if self.host_kind is HostKind.REGEX:
            return f"regular expression (ranks after pattern rules), priority {priority}"
        if self.host_kind is HostKind.EXACT:
            host = f"exact host {self.host}"
        else:
            host = f"wildcard host *.{self.host}" if self.host else "any host"
        where = "path and fragment" if self.fragment is not None else "path"
        parts = [host, _plural(literal, f"literal {where} segment")]
        if typed:
            parts.append(_plural(typed, f"typed {where} segment"))
        if queries:
            parts.append(_plural(queries, "query condition"))
        if wildcards:
            parts.append(_plural(wildcards, "wildcard"))
        parts.append(f"priority {priority}")
        return ", ".join(parts)

    def _index_keys(self) -> tuple[tuple[str, ...], bool]:
        """Literal keys leading to this rule's node in a host's trie; see matcher.py."""
        if self.path is None:
            return (), False
        prefix = self.path.literal_prefix()
        if len(prefix) < len(self.path.tokens):
            return prefix, False
        if self.fragment is None:
            return (*prefix, FRAGMENT_MARK), False
        route = self.fragment.route
        fprefix = route.literal_prefix()
        return (*prefix, FRAGMENT_MARK, *fprefix), len(fprefix) == len(route.tokens)

    def matches(self, url: ParsedUrl) -> bool:
        if self.regex is not None:
            return self.regex.search(url.normalized) is not None
        if url.scheme not in self.schemes:
            return False
        if self.host_kind is HostKind.EXACT:
            if url.host != self.host:
                return False
        elif self.host and url.host != self.host and not url.host.endswith("." + self.host):
            return False
        if self.port is not None and url.port != self.port:
            return False
        if self.path is None or not self.path.matches(url.segments):
            return False
        if self.conditions:
            params = url.params
            if not all(c.holds(params) for c in self.conditions):
                return False
        fragment = self.fragment
        if fragment is not None:
            if not fragment.route.matches(url.fragment_segments):
                return False
            if fragment.conditions:
                params = url.fragment_params
                return all(c.holds(params) for c in fragment.conditions)
        return True


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
