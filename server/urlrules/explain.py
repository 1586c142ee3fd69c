"""Why a rule does not match a URL, in one short sentence (the rule tester's "why not").

`explain` checks what `CompiledRule.matches` checks, in the same order (scheme, host, port, path,
query conditions, fragment route, fragment conditions) and words the first check that fails.
It reads only the compiled rule's attributes and the parsed URL; the rule's own text is used to
quote the part that did not match ("path /incident.do does not match /sc_req_item.do").
"""

from __future__ import annotations

from collections.abc import Mapping

from server.urlrules.compiled import CompiledRule, CondKind, HostKind, QueryCondition
from server.urlrules.url import ParsedUrl, form_decode, split_fragment

MAX_VALUE_CHARS = 80


def explain(compiled: CompiledRule, url: ParsedUrl) -> str | None:
    """None when `compiled` matches `url`, else what is the first thing that does not."""
    if compiled.matches(url):
        return None
    if compiled.regex is not None:
        return "regular expression not found"
    text = _RuleText(compiled.rule.pattern)
    return _first_difference(compiled, url, text) or "the URL does not match the rule"


def _first_difference(compiled: CompiledRule, url: ParsedUrl, text: _RuleText) -> str | None:
    if url.scheme not in compiled.schemes:
        wanted = " or ".join(sorted(compiled.schemes))
        return f"scheme {url.scheme} is not {wanted}"
    if compiled.host_kind is HostKind.EXACT:
        if url.host != compiled.host:
            return f"host {url.host} is not {compiled.host}"
    elif compiled.host:
        suffix = compiled.host
        if url.host != suffix and not url.host.endswith("." + suffix):
            return f"host {url.host} is not *.{suffix}"
    if compiled.port is not None and url.port != compiled.port:
        return f"port {url.port} is not {compiled.port}"
    if compiled.path is None or not compiled.path.matches(url.segments):
        return f"path {_clip(url.path)} does not match {text.path}"
    why = _conditions(compiled.conditions, url.params, text.query, "query parameter")
    if why:
        return why
    fragment = compiled.fragment
    if fragment is None:
        return None
    if not fragment.route.matches(url.fragment_segments):
        route = "/" + "/".join(url.fragment_segments)
        if not url.fragment:
            return f"the URL has no fragment; the rule wants #{text.fragment}"
        if not text.route:
            return f"fragment route {_clip(route)} is not empty (the rule has only parameters)"
        return f"fragment route {_clip(route)} does not match /{text.route}"
    return _conditions(
        fragment.conditions, url.fragment_params, text.fragment_query, "fragment parameter"
    )


def _conditions(
    conditions: tuple[QueryCondition, ...],
    params: Mapping[str, tuple[str, ...]],
    written: dict[str, str],
    noun: str,
) -> str | None:
    for cond in conditions:
        if cond.holds(params):
            continue
        values = params.get(cond.name)
        if cond.kind is CondKind.ABSENT:
            return f"{noun} {cond.name} is present; the rule wants it absent"
        if values is None:
            return f"{noun} {cond.name} missing"
        wanted = written.get(cond.name) or str(cond.value)
        shown = " or ".join(f"{cond.name}={_clip(v)}" for v in values[:3])
        lead = "" if noun.startswith("query") else f"{noun} "
        return f"{lead}{shown} does not match {wanted}"
    return None


def _clip(value: str) -> str:
    return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + "…"


class _RuleText:
    """The parts of a pattern as written (split the way server/urlrules/syntax.py splits it)."""

    def __init__(self, pattern: str) -> None:
        rest = pattern.partition("://")[2]
        cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        rest, _, fragment = rest[cut:].partition("#")
        path, question, query = rest.partition("?")
        self.path = path or "/"
        self.query = _written_conditions(query) if question else {}
        self.fragment = fragment
        route, fquery = _fragment_parts(fragment)
        self.route = route
        self.fragment_query = _written_conditions(fquery)


def _fragment_parts(fragment: str) -> tuple[str, str]:
    """A rule's fragment as (route, conditions): `#/a?k=v`, `#?k=v` and `#k=v` (no `/`, no `?`,
    has `=`: the fragment's own parameters)."""
    route, query = split_fragment(fragment)
    if not query and "/" not in route and "=" in route:
        return "", route
    return route, query


def _written_conditions(query: str) -> dict[str, str]:
    """{decoded name: the value as written} for each `name=value` condition."""
    out: dict[str, str] = {}
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        if eq and name and not name.startswith("!"):
            out.setdefault(form_decode(name), value)
    return out
