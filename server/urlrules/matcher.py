"""RuleSet: an index over compiled rules so that matching a URL touches only plausible rules.

Layout: exact hosts in a dict, wildcard hosts in a dict keyed by suffix (a URL host looks up
each of its suffixes, then "" for any-host rules), and per host a trie over the rule's literal
keys: its leading literal path segments, then FRAGMENT_MARK and the leading literal fragment
segments when the path is wholly literal. A rule sits at the node where its literal keys end:
in `partial` (collected whenever the URL's walk passes the node) or, when the whole path and
fragment route are literal, in `exact` (collected only when the walk ends there). `re:` rules
are the only ones tested on every URL. Every candidate is then checked with
`CompiledRule.matches`, so the index only has to never miss a rule; see naive.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from server.urlrules.compiled import CompiledRule, HostKind, SortKey
from server.urlrules.model import Match, Rule
from server.urlrules.syntax import InvalidRule, compile_rule
from server.urlrules.url import InvalidUrl, ParsedUrl, parse_url


class _Node:
    __slots__ = ("children", "exact", "partial")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.partial: list[CompiledRule] = []
        self.exact: list[CompiledRule] = []


class RuleSet:
    """An immutable, indexed set of rules. `match` returns every matching rule, best first."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._exact: dict[str, _Node] = {}
        self._wildcard: dict[str, _Node] = {}
        self._regex: list[tuple[CompiledRule, Callable[[str], object]]] = []
        self._compiled: list[CompiledRule] = []
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise InvalidRule(f"rule {rule.id!r}: duplicate rule id", rule.id)
            seen.add(rule.id)
            try:
                compiled = compile_rule(rule)
            except InvalidRule as exc:
                raise InvalidRule(f"rule {rule.id!r}: {exc}", rule.id) from exc
            self._add(compiled)

    def _add(self, rule: CompiledRule) -> None:
        self._compiled.append(rule)
        if rule.regex is not None:
            self._regex.append((rule, rule.regex.search))
            return
        hosts = self._exact if rule.host_kind is HostKind.EXACT else self._wildcard
        node = hosts.get(rule.host)
        if node is None:
            node = hosts[rule.host] = _Node()
        for key in rule.index_keys:
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = _Node()
            node = child
        (node.exact if rule.index_exact else node.partial).append(rule)

    def __len__(self) -> int:
        return len(self._compiled)

    def __iter__(self) -> Iterator[CompiledRule]:
        """The compiled rules in the order given (e.g. for `naive_match`)."""
        return iter(self._compiled)

    def match(self, url: str) -> list[Match]:
        """All rules matching `url`, best first; [] for a URL that is not a loadable http(s) URL."""
        try:
            parsed = parse_url(url)
        except InvalidUrl:
            return []
        return self.match_parsed(parsed)

    def match_parsed(self, url: ParsedUrl) -> list[Match]:
        candidates: list[CompiledRule] = []
        keys = url.keys
        root = self._exact.get(url.host)
        if root is not None:
            _collect(root, keys, candidates)
        wildcard = self._wildcard
        if wildcard:
            host = url.host
            while True:
                root = wildcard.get(host)
                if root is not None:
                    _collect(root, keys, candidates)
                dot = host.find(".")
                if dot < 0:
                    break
                host = host[dot + 1 :]
            root = wildcard.get("")
            if root is not None:
                _collect(root, keys, candidates)
        hits = [r for r in candidates if r.matches(url)]
        if self._regex:
            normalized = url.normalized
            hits.extend(r for r, search in self._regex if search(normalized))
        if len(hits) > 1:
            hits.sort(key=_sort_key)
        return [r.match for r in hits]


def _sort_key(rule: CompiledRule) -> SortKey:
    return rule.sort_key


def _collect(node: _Node, keys: tuple[str, ...], out: list[CompiledRule]) -> None:
    if node.partial:
        out.extend(node.partial)
    for key in keys:
        child = node.children.get(key)
        if child is None:
            return
        node = child
        if node.partial:
            out.extend(node.partial)
    if node.exact:
        out.extend(node.exact)
