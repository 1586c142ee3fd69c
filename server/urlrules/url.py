"""URL parsing and normalisation for rule matching, after the WHATWG URL standard.

`parse_url` follows what a browser's `new URL()` does for http(s) URLs in the cases that decide
which host a URL really points at: surrounding spaces and embedded tabs/newlines dropped, any run
of `/` or `\\` after the scheme skipped, userinfo (up to the last `@`) dropped, `\\` treated as `/`,
host lowercased / punycoded / IPv4-canonicalised, default ports removed, dot segments resolved.

Path, query and fragment are then put in one canonical percent-encoding so that Python (from the
raw string) and JavaScript (from `URL.pathname` etc., already encoded by the browser) agree:
escapes of unreserved characters are decoded, other escapes get uppercase hex, and every
character outside a small always-safe set is UTF-8 percent-encoded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from server.urlrules.host import parse_host

MAX_URL_BYTES = 8192
DEFAULT_PORTS = {"http": 80, "https": 443}
# Separates the path keys from the fragment keys in `ParsedUrl.keys` (a canonical segment can
# never contain a NUL character: it would be `%00`).
FRAGMENT_MARK = "\x00#"


class InvalidUrl(ValueError):
    """The URL is not an http(s) URL a browser would load (or is longer than 8 KiB)."""


_UNRESERVED = "A-Za-z0-9\\-._~"
# Characters kept as they are; all others are percent-encoded. Each set is a subset of what the
# WHATWG parser never encodes in that component, so browser output and raw input converge.
_PATH_RE = re.compile(rf"%[0-9A-Fa-f]{{2}}|[^{_UNRESERVED}!$&'()*+,;=:@]")
_WHOLE_PATH_RE = re.compile(rf"%[0-9A-Fa-f]{{2}}|[^{_UNRESERVED}!$&'()*+,;=:@/]")
_QUERY_RE = re.compile(rf"%[0-9A-Fa-f]{{2}}|[^{_UNRESERVED}!$&()*+,;=:@/?]")
_FRAGMENT_RE = re.compile(rf"%[0-9A-Fa-f]{{2}}|[^{_UNRESERVED}!$&'()*+,;=:@/?]")
_UNRESERVED_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
# One canonical form per ASCII character: an escape of a character the component keeps as it is
# (`%24` for `$`) is decoded, unless the character is one of the component's own delimiters
# (path: `/`; query: `&`, `=`, `+`; fragment: `/`, `?` of the route and `&`, `=`, `+` of its
# parameters), whose escapes mean "this character, not the delimiter". Every other escape is
# kept with uppercase hex, and every other character is encoded: so each ASCII character is
# either always decoded or always encoded, whichever way the browser sent it.
_PATH_DECODE = frozenset(_UNRESERVED_CHARS + "!$&'()*+,;=:@")
_QUERY_DECODE = frozenset(_UNRESERVED_CHARS + "!$()*,;:@/?")
_FRAGMENT_DECODE = frozenset(_UNRESERVED_CHARS + "!$'()*,;:@")


def _canon(decode: frozenset[str]) -> Callable[[re.Match[str]], str]:
    def one(m: re.Match[str]) -> str:
        s = m.group()
        if len(s) == 3 and s[0] == "%":
            c = chr(int(s[1:], 16))
            return c if c in decode else s.upper()
        return "".join(f"%{b:02X}" for b in s.encode("utf-8"))

    return one


_canon_path = _canon(_PATH_DECODE)
_canon_query = _canon(_QUERY_DECODE)
_canon_fragment = _canon(_FRAGMENT_DECODE)


def canonical_path_segment(text: str) -> str:
    """Canonical form of one path (or fragment route) segment."""
    return _PATH_RE.sub(_canon_path, text)


def canonical_query(text: str) -> str:
    return _QUERY_RE.sub(_canon_query, text)


def canonical_fragment(text: str) -> str:
    return _FRAGMENT_RE.sub(_canon_fragment, text)


def form_decode(text: str) -> str:
    """application/x-www-form-urlencoded decoding of one name or value."""
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    return unquote_to_bytes(text).decode("utf-8", "replace")


def parse_params(query: str) -> dict[str, tuple[str, ...]]:
    """Query string (without `?`) to {name: values}, the way URLSearchParams reads it."""
    params: dict[str, list[str]] = {}
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            params.setdefault(form_decode(name), []).append(form_decode(value))
    return {k: tuple(v) for k, v in params.items()}


def split_fragment(fragment: str) -> tuple[str, str]:
    """Hash-router fragment to (route path without leading `!` and `/`, route query).

    A fragment of parameters only (no `?`, no `/`, an `=`: Odoo's `id=7&model=sale.order`) is an
    empty route with those parameters. Rules read their `#...` part with the same function.
    """
    if fragment.startswith("!"):
        fragment = fragment[1:]
    if fragment.startswith("/"):
        fragment = fragment[1:]
    path, question, query = fragment.partition("?")
    if not question and "=" in path and "/" not in path:
        return "", path
    return path, query


def path_segments(path: str) -> tuple[str, ...]:
    """Segments of a canonical path without its leading `/`, one trailing `/` ignored."""
    if path.endswith("/"):
        path = path[:-1]
    return tuple(path.split("/")) if path else ()


class ParsedUrl:
    """A normalised http(s) URL. Components are canonical; query and fragment omit `?`/`#`.

    Treat it as immutable. It is a plain slotted class rather than a frozen dataclass because
    it is built once per matched URL and the derived views (segments, params, ...) are computed
    lazily: that keeps `RuleSet.match` within its time budget.
    """

    __slots__ = (
        "_fparams",
        "_fsegs",
        "_keys",
        "_normalized",
        "_params",
        "_segments",
        "fragment",
        "host",
        "path",
        "port",
        "query",
        "scheme",
    )

    def __init__(self, scheme: str, host: str, port: int, path: str, query: str, fragment: str):
        self.scheme = scheme
        self.host = host
        self.port = port  # effective port: the scheme's default port when the URL has none
        self.path = path  # starts with "/", trailing slash kept
        self.query = query  # "" when absent or empty
        self.fragment = fragment  # "" when absent or empty
        self._segments: tuple[str, ...] | None = None
        self._params: dict[str, tuple[str, ...]] | None = None
        self._fsegs: tuple[str, ...] | None = None
        self._fparams: dict[str, tuple[str, ...]] | None = None
        self._keys: tuple[str, ...] | None = None
        self._normalized: str | None = None

    def _fields(self) -> tuple[str, str, int, str, str, str]:
        return (self.scheme, self.host, self.port, self.path, self.query, self.fragment)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParsedUrl) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"ParsedUrl({self.normalized!r})"

    @property
    def segments(self) -> tuple[str, ...]:
        if self._segments is None:
            self._segments = path_segments(self.path[1:])
        return self._segments

    @property
    def params(self) -> dict[str, tuple[str, ...]]:
        if self._params is None:
            self._params = parse_params(self.query)
        return self._params

    @property
    def fragment_segments(self) -> tuple[str, ...]:
        if self._fsegs is None:
            route = split_fragment(self.fragment)[0] if self.fragment else ""
            # The fragment keeps `%3D` etc. (they delimit its parameters); route segments are
            # path segments, where `=` and `%3D` are the same character.
            self._fsegs = tuple(canonical_path_segment(s) for s in path_segments(route))
        return self._fsegs

    @property
    def fragment_params(self) -> dict[str, tuple[str, ...]]:
        if self._fparams is None:
            self._fparams = parse_params(split_fragment(self.fragment)[1])
        return self._fparams

    @property
    def keys(self) -> tuple[str, ...]:
        """Path segments, FRAGMENT_MARK, fragment segments: the walk through a rule index."""
        if self._keys is None:
            self._keys = (*self.segments, FRAGMENT_MARK, *self.fragment_segments)
        return self._keys

    @property
    def normalized(self) -> str:
        """The URL as `re:` rules see it: pure ASCII, no userinfo, no default port."""
        if self._normalized is None:
            port = "" if DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
            query = f"?{self.query}" if self.query else ""
            fragment = f"#{self.fragment}" if self.fragment else ""
            self._normalized = f"{self.scheme}://{self.host}{port}{self.path}{query}{fragment}"
        return self._normalized


_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+\-.]*):")
_AUTHORITY_END_RE = re.compile(r"[/\\?#]")
_TAB_NEWLINE_RE = re.compile(r"[\t\n\r]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_C0_SPACE = "".join(chr(c) for c in range(0x21))
_SINGLE_DOT = frozenset({".", "%2e"})
_DOUBLE_DOT = frozenset({"..", ".%2e", "%2e.", "%2e%2e"})


def parse_url(url: str) -> ParsedUrl:
    """Parse and normalise an http(s) URL; raise InvalidUrl when a browser would not load it."""
    if len(url) > MAX_URL_BYTES // 4 and (
        len(url) > MAX_URL_BYTES or len(url.encode("utf-8", "surrogatepass")) > MAX_URL_BYTES
    ):
        raise InvalidUrl(f"URL longer than {MAX_URL_BYTES} bytes")
    s = url.strip(_C0_SPACE)
    if "\t" in s or "\n" in s or "\r" in s:
        s = _TAB_NEWLINE_RE.sub("", s)
    if not s.isascii():
        s = _SURROGATE_RE.sub("\ufffd", s)
    m = _SCHEME_RE.match(s)
    if m is None:
        raise InvalidUrl("not an absolute URL")
    scheme = m.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidUrl(f"scheme {scheme!r} is not http or https")
    rest = s[m.end() :].lstrip("/\\")
    end = _AUTHORITY_END_RE.search(rest)
    cut = end.start() if end else len(rest)
    authority, rest = rest[:cut], rest[cut:]
    authority = authority[authority.rfind("@") + 1 :]
    host_raw, port_raw = _split_port(authority)
    if not host_raw:
        raise InvalidUrl("URL has no host")
    host = parse_host(host_raw)
    if host is None:
        raise InvalidUrl(f"invalid host {host_raw!r}")
    port = DEFAULT_PORTS[scheme]
    if port_raw:
        if not (port_raw.isascii() and port_raw.isdigit()) or int(port_raw) > 65535:
            raise InvalidUrl(f"invalid port {port_raw!r}")
        port = int(port_raw)
    rest, _, fragment = rest.partition("#")
    path, _, query = rest.partition("?")
    return ParsedUrl(
        scheme=scheme,
        host=host,
        port=port,
        path=_normalize_path(path),
        query=canonical_query(query),
        fragment=canonical_fragment(fragment),
    )


def _split_port(authority: str) -> tuple[str, str]:
    in_brackets = False
    for i, c in enumerate(authority):
        if c == "[":
            in_brackets = True
        elif c == "]":
            in_brackets = False
        elif c == ":" and not in_brackets:
            return authority[:i], authority[i + 1 :]
    return authority, ""


def _normalize_path(raw: str) -> str:
    if (
        raw.startswith("/")
        and "\\" not in raw
        and "/." not in raw
        and "/%2e" not in raw
        and "/%2E" not in raw
    ):
        return _WHOLE_PATH_RE.sub(_canon_path, raw)  # no dot segments: one pass will do
    raw = raw.replace("\\", "/")
    parts = (raw[1:] if raw.startswith("/") else raw).split("/")
    out: list[str] = []
    last = len(parts) - 1
    for i, seg in enumerate(parts):
        low = seg.lower() if "%" in seg else seg
        if low in _DOUBLE_DOT:
            if out:
                out.pop()
            if i == last:
                out.append("")
        elif low in _SINGLE_DOT:
            if i == last:
                out.append("")
        else:
            out.append(canonical_path_segment(seg))
    return "/" + "/".join(out)
