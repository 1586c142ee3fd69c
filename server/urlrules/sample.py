"""A sample URL for a compiled rule: what the rule tester shows, and how rules are checked.

Placeholders are filled with valid values, `*` with `x`, `**` with nothing, query conditions are
satisfied (absent ones omitted). The URL is parsed and tested against the rule before it is
returned, so `None` means the rule is a regex, or can never match (`?a=1&!a`).
"""

from __future__ import annotations

from urllib.parse import quote

from server.urlrules.compiled import CompiledRule, CondKind, HostKind, QueryCondition
from server.urlrules.segments import DEEP, Glob, Guid, Lit, Run, SegmentPattern, Token, Typed
from server.urlrules.url import DEFAULT_PORTS, InvalidUrl, parse_url

SAMPLE_HOST = "example.com"  # for rules on any host (`*://*/...`)
SAMPLE_GUID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
_FILL = {
    "digits": "1234567890",
    "hex": "0123456789abcdef",
    "alnum": "a1B2c3D4e5",
    "any": "abcdefghij",
    "*": "x",
}


def sample_url(compiled: CompiledRule) -> str | None:
    """A URL `compiled` matches, or None (regex rules, rules that can never match)."""
    if compiled.regex is not None or compiled.path is None:
        return None
    scheme = "https" if "https" in compiled.schemes else "http"
    host = compiled.host or SAMPLE_HOST
    if compiled.host_kind is HostKind.WILDCARD and not compiled.host:
        host = SAMPLE_HOST
    port = ""
    if compiled.port is not None and compiled.port != DEFAULT_PORTS[scheme]:
        port = f":{compiled.port}"
    url = f"{scheme}://{host}{port}/{_route(compiled.path)}"
    if compiled.conditions:
        query = _query(compiled.conditions)
        if query:
            url += f"?{query}"
    fragment = compiled.fragment
    if fragment is not None:
        route = _route(fragment.route)
        query = _query(fragment.conditions)
        if route:
            url += f"#/{route}" + (f"?{query}" if query else "")
        elif query:
            url += f"#{query}"  # fragment parameters, as Odoo writes them (`#id=7&model=x`)
    try:
        parsed = parse_url(url)
    except InvalidUrl:
        return None
    return url if compiled.matches(parsed) else None


def _route(pattern: SegmentPattern) -> str:
    return "/".join(s for s in (_segment(t) for t in pattern.tokens) if s is not None)


def _segment(token: Token) -> str | None:
    if token is DEEP:
        return None  # `**`: no segments at all
    if isinstance(token, str):
        return token  # already canonical URL text
    if isinstance(token, Glob):
        return "x".join((token.prefix, *token.middles, token.suffix))
    assert isinstance(token, Typed)
    return _typed(token)


def _typed(typed: Typed) -> str:
    out: list[str] = []
    for item in typed.items:
        if isinstance(item, Lit):
            out.append(item.text)
        elif isinstance(item, Guid):
            out.append(SAMPLE_GUID)
        else:
            out.append(_run(item))
    return "".join(out)


def _run(run: Run) -> str:
    # `*` is one `x`; a placeholder gets its least length, but at least 3 when it may.
    size = 1 if run.type == "*" else max(run.lo, min(3, run.hi or 3))
    fill = _FILL[run.type]
    return (fill * (size // len(fill) + 1))[:size]


def _query(conditions: tuple[QueryCondition, ...]) -> str:
    parts: list[str] = []
    for c in conditions:
        name = quote(c.name, safe="")
        if c.kind is CondKind.PRESENT:
            parts.append(f"{name}=")
        elif c.kind is CondKind.EQUALS:
            value = c.value
            if isinstance(value, Glob):
                text = "".join((value.prefix, *value.middles, value.suffix))
            elif isinstance(value, Typed):
                text = _typed(value)
            else:
                text = value
            parts.append(f"{name}={quote(text, safe='')}")
    return "&".join(parts)
