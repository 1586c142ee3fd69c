"""Parse and compile a rule pattern: `scheme://host[:port]/path[?query][#fragment]` or `re:<regex>`.

The full syntax is in docs/url-rules.md; extension/src/lib/urlrules.js mirrors this module and
raises the same messages.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from server.urlrules.compiled import (
    CompiledRule,
    CondKind,
    FragmentPattern,
    HostKind,
    QueryCondition,
)
from server.urlrules.host import domain_to_ascii, ends_in_number, parse_host, parse_ipv4_literal
from server.urlrules.model import Rule
from server.urlrules.regex import RegexError, compile_portable
from server.urlrules.segments import (
    ANY_SEGMENT,
    CLASSES,
    DEEP,
    Glob,
    Guid,
    Item,
    Lit,
    Run,
    SegmentPattern,
    Token,
    Typed,
)
from server.urlrules.url import canonical_path_segment, form_decode, split_fragment

MAX_PATTERN_CHARS = 2048
MAX_SEGMENTS = 32
MAX_CONDITIONS = 16
MAX_PLACEHOLDER_LENGTH = 1000

_SCHEMES = {
    "http": frozenset({"http"}),
    "https": frozenset({"https"}),
    "*": frozenset({"http", "https"}),
}
_HOST_CHARS_RE = re.compile(r"[a-z0-9\-_.]+")
# Control characters, Unicode spaces and lone surrogates (the same class in urlrules.js).
_SPACE_RE = re.compile(
    r"[\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
    r"\ud800-\udfff]"
)
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_LENGTH_RE = re.compile(r"([0-9]{1,4})(?:-([0-9]{1,4}))?")
_TYPES_HINT = (
    "use {digits}, {hex}, {alnum}, {guid} or {any}, optionally with a length: {digits:6} or "
    "{alnum:12-15} (write %7B and %7D for literal braces)"
)


class InvalidRule(ValueError):
    """A pattern that does not compile; the message says what is wrong.

    `RuleSet` prefixes the message with the rule id and sets `rule_id`.
    """

    def __init__(self, message: str, rule_id: str | None = None) -> None:
        super().__init__(message)
        self.rule_id = rule_id


def compile_rule(rule: Rule) -> CompiledRule:
    """Compile one rule; raise InvalidRule with a message saying what is wrong."""
    pattern = rule.pattern
    if not isinstance(pattern, str) or not pattern:
        raise InvalidRule("empty pattern")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidRule(f"pattern longer than {MAX_PATTERN_CHARS} characters")
    if pattern.startswith("re:"):
        try:
            regex = compile_portable(pattern[3:])
        except RegexError as exc:
            raise InvalidRule(str(exc)) from exc
        return CompiledRule(rule, frozenset(), HostKind.REGEX, "", None, None, regex=regex)
    if _SPACE_RE.search(pattern):
        raise InvalidRule("whitespace or control characters in pattern (write %20 for a space)")
    if "\\" in pattern:
        raise InvalidRule("backslash in pattern (use '/')")
    scheme, sep, rest = pattern.partition("://")
    if not sep:
        raise InvalidRule("missing '://' after the scheme (or 're:' for a regex)")
    schemes = _SCHEMES.get(scheme.lower())
    if schemes is None:
        raise InvalidRule("scheme must be 'http', 'https' or '*'")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, rest = rest[:cut], rest[cut:]
    if not rest.startswith("/"):
        raise InvalidRule(
            "missing path after the host: use '/' for the root page or '/**' for every page"
        )
    host_kind, host, port = _parse_authority(authority)
    rest, hash_sign, fragment_text = rest.partition("#")
    path_text, question, query_text = rest.partition("?")
    path = _parse_route(path_text[1:], "path")
    conditions = _parse_conditions(query_text, "query") if question else ()
    fragment = _parse_fragment(fragment_text) if hash_sign else None
    count = len(conditions) + (len(fragment.conditions) if fragment else 0)
    if count > MAX_CONDITIONS:
        raise InvalidRule(f"more than {MAX_CONDITIONS} query conditions")
    return CompiledRule(rule, schemes, host_kind, host, port, path, conditions, fragment)


def _parse_authority(authority: str) -> tuple[HostKind, str, int | None]:
    if "@" in authority:
        raise InvalidRule("userinfo ('user@') is not allowed in a rule host")
    host, port_text = authority, None
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise InvalidRule("unterminated IPv6 address in host")
        host, tail = authority[: end + 1], authority[end + 1 :]
        if tail:
            if not tail.startswith(":"):
                raise InvalidRule("unexpected text after the IPv6 address")
            port_text = tail[1:]
    elif ":" in authority:
        host, _, port_text = authority.partition(":")
    port = _parse_port(port_text)
    if not host:
        raise InvalidRule("empty host")
    if host == "*":
        return HostKind.WILDCARD, "", port
    wildcard = host.startswith("*.")
    if wildcard:
        host = host[2:]
    if "*" in host:
        raise InvalidRule("host wildcard only allowed as a leading '*.'")
    kind = HostKind.WILDCARD if wildcard else HostKind.EXACT
    return kind, _canonical_host(host, wildcard), port


def _parse_port(text: str | None) -> int | None:
    if text is None or text == "*":
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise InvalidRule("port must be a number from 1 to 65535 or '*'")
    return int(text)


# Rules of one app share their host, and apps share path shapes ("/module*/page*/view"): a catalog
# of 100k rules compiled each host and route once instead of per rule (9 s -> 3 s; a new node's
# start-up builds it). Both return immutable values, and an invalid one raises (never cached).
@functools.lru_cache(maxsize=8192)
def _canonical_host(host: str, wildcard: bool) -> str:
    if host.startswith("["):
        if wildcard:
            raise InvalidRule("host wildcard not allowed on an IP address")
        parsed = parse_host(host)
        if parsed is None:
            raise InvalidRule("invalid IPv6 address in host")
        return parsed
    if "%" in host:
        raise InvalidRule("percent-escapes are not allowed in a rule host")
    ascii_host = domain_to_ascii(host)
    if ascii_host is None:
        raise InvalidRule("invalid internationalised host name")
    if ascii_host.endswith("."):
        ascii_host = ascii_host[:-1]
    if not ascii_host:
        raise InvalidRule("empty host")
    if not _HOST_CHARS_RE.fullmatch(ascii_host):
        bad = next(c for c in ascii_host if not _HOST_CHARS_RE.fullmatch(c))
        raise InvalidRule(f"invalid character '{bad}' in host")
    labels = ascii_host.split(".")
    if any(not label for label in labels):
        raise InvalidRule("empty label in host")
    if any(len(label) > 63 for label in labels):
        raise InvalidRule("host label longer than 63 characters")
    if ends_in_number(ascii_host):
        if wildcard:
            raise InvalidRule("host wildcard not allowed on an IP address")
        ipv4 = parse_ipv4_literal(ascii_host)
        if ipv4 is None:
            raise InvalidRule("invalid IPv4 address in host")
        return ipv4
    return ascii_host


@functools.lru_cache(maxsize=32768)
def _parse_route(text: str, where: str) -> SegmentPattern:
    """Segments of a path (text after its leading '/') or of a fragment route."""
    if len(text) > 1 and text.endswith("/"):
        text = text[:-1]  # a trailing slash is ignored, as in URLs
    if not text:
        return SegmentPattern(())
    raw = text.split("/")
    if len(raw) > MAX_SEGMENTS:
        raise InvalidRule(f"more than {MAX_SEGMENTS} segments in the {where}")
    tokens: list[Token] = []
    for seg in raw:
        if not seg:
            raise InvalidRule(f"empty segment ('//') in the {where}")
        if seg in (".", ".."):
            raise InvalidRule(f"dot segments ('.' or '..') are not allowed in the {where}")
        if seg == "**":
            tokens.append(DEEP)
        elif "**" in seg:
            raise InvalidRule(f"'**' must be a whole segment in the {where}")
        elif seg == "*":
            tokens.append(ANY_SEGMENT)
        elif "{" in seg or "}" in seg:
            tokens.append(_typed(seg, where, lambda p: _literal(p, where)))
        elif "*" in seg:
            pieces = [_literal(p, where) for p in seg.split("*")]
            tokens.append(Glob.from_pieces(pieces, nonempty=True))
        else:
            tokens.append(_literal(seg, where))
    return SegmentPattern(tuple(tokens))


def _typed(text: str, where: str, literal: Callable[[str], str]) -> Typed:
    """A segment or value with placeholders: `006{alnum:12-15}`, `INV-{digits}-*`."""
    items: list[Item] = []

    def add_text(chunk: str) -> None:
        if "}" in chunk:
            raise InvalidRule(f"unmatched '}}' in the {where}: " + _TYPES_HINT)
        for i, piece in enumerate(chunk.split("*")):
            if i:
                items.append(Run("*", 0, None))
            if piece:
                items.append(Lit(literal(piece)))

    pos = 0
    while (start := text.find("{", pos)) >= 0:
        add_text(text[pos:start])
        end = text.find("}", start)
        if end < 0:
            raise InvalidRule(f"unclosed '{{' in the {where}: " + _TYPES_HINT)
        items.append(_placeholder(text[start + 1 : end], where))
        pos = end + 1
    add_text(text[pos:])
    return Typed(tuple(items))


def _placeholder(inner: str, where: str) -> Item:
    name, colon, length = inner.partition(":")
    if name != "guid" and name not in CLASSES:
        raise InvalidRule(f"unknown placeholder '{{{inner}}}' in the {where}: " + _TYPES_HINT)
    if not colon:
        return Guid() if name == "guid" else Run(name, 1, None)
    if name == "guid":
        raise InvalidRule(f"'{{guid}}' takes no length in the {where}")
    m = _LENGTH_RE.fullmatch(length)
    lo = int(m.group(1)) if m else 0
    hi = int(m.group(2)) if m and m.group(2) else lo
    if not 1 <= lo <= hi <= MAX_PLACEHOLDER_LENGTH:
        raise InvalidRule(
            f"bad length in '{{{inner}}}' in the {where}: write {{{name}:N}} or {{{name}:N-M}} "
            f"with 1 <= N <= M <= {MAX_PLACEHOLDER_LENGTH}"
        )
    return Run(name, lo, hi)


def _literal(text: str, where: str) -> str:
    if _BAD_ESCAPE_RE.search(text):
        raise InvalidRule(f"invalid percent-escape in the {where} (write %25 for '%')")
    return canonical_path_segment(text)


def _parse_conditions(text: str, where: str) -> tuple[QueryCondition, ...]:
    if not text:
        raise InvalidRule(f"empty {where}: omit '?' or give conditions like '?a=1&b=*&!c'")
    if _BAD_ESCAPE_RE.search(text):
        raise InvalidRule(f"invalid percent-escape in the {where} (write %25 for '%')")
    conditions: list[QueryCondition] = []
    for item in text.split("&"):
        if not item:
            raise InvalidRule(f"empty condition ('&&') in the {where}")
        name, eq, value = item.partition("=")
        negate = name.startswith("!")
        if negate:
            if eq:
                raise InvalidRule(f"'!{name[1:]}' means absent and takes no value in the {where}")
            name = name[1:]
        if not name:
            raise InvalidRule(f"empty parameter name in the {where}")
        if "*" in name:
            raise InvalidRule(f"wildcard not allowed in a parameter name in the {where}")
        if "{" in name or "}" in name:
            raise InvalidRule(
                f"placeholder not allowed in a parameter name in the {where} "
                "(write %7B and %7D for literal braces)"
            )
        decoded = form_decode(name)
        if negate:
            conditions.append(QueryCondition(decoded, CondKind.ABSENT))
        elif not eq or value == "*":
            conditions.append(QueryCondition(decoded, CondKind.PRESENT))
        elif "{" in value or "}" in value:
            typed = _typed(value, where, form_decode)
            conditions.append(QueryCondition(decoded, CondKind.EQUALS, typed))
        elif "*" in value:
            pieces = [form_decode(p) for p in value.split("*")]
            conditions.append(QueryCondition(decoded, CondKind.EQUALS, Glob.from_pieces(pieces)))
        else:
            conditions.append(QueryCondition(decoded, CondKind.EQUALS, form_decode(value)))
    return tuple(conditions)


def _parse_fragment(text: str) -> FragmentPattern:
    if not text:
        raise InvalidRule("empty fragment: omit '#' to ignore the URL fragment")
    if "#" in text:
        raise InvalidRule("'#' may appear only once in a pattern")
    # `#/a/*?tab=2`, `#!/a`, `#a`; `#?model=x` and `#model=x&id=*` are conditions on the
    # fragment's parameters (an empty route), read by the same function as URL fragments.
    route_text, query_text = split_fragment(text)
    route = _parse_route(route_text, "fragment")
    has_query = bool(query_text) or text.endswith("?")
    conditions = _parse_conditions(query_text, "fragment query") if has_query else ()
    return FragmentPattern(route, conditions)
