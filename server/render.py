"""Markdown to safe HTML (markdown-it-py, then nh3), and to plain text for the index.

Task lists (`- [ ]`, `- [x]`) become `<ul class="task-list">` with `<li class="task">` (and
`task done` when ticked): the panel turns them into checkboxes of its own. Tables come wrapped in
`<div class="table-wrap">` so a narrow panel can scroll them sideways instead of breaking words.

Only http, https and mailto links survive; no scripts, event handlers, iframes, forms or styles;
images only from this server (relative URLs) or from configured hosts over https. Which host an
image comes from is decided the way a browser resolves `src` against the page (the WHATWG parser
in server/urlrules), and the kept `src` is rewritten to that resolved form, so a browser cannot
read it differently (`/\\evil.example/t.png` is `https://evil.example/t.png` to a browser).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from server.urlrules.url import DEFAULT_PORTS, InvalidUrl, ParsedUrl, parse_url

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "details",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "kbd",
    "li",
    "mark",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align"},
    "th": {"align"},
    "ol": {"start", "class"},
    "ul": {"class"},
    "li": {"class"},
    "div": {"class"},
    "abbr": {"title"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# The only class values that survive, per tag: the renderer's own markers, never an author's.
ALLOWED_CLASSES = {
    "ul": frozenset({"task-list"}),
    "ol": frozenset({"task-list"}),
    "li": frozenset({"task", "done"}),
    "div": frozenset({"table-wrap"}),
}
_TASK_RE = re.compile(r"^\[([ xX])\][ \t]+")


def _task_lists(state: StateCore) -> None:
    """Mark list items starting with `[ ] ` or `[x] ` as tasks (GitHub's task lists) and drop the
    marker text; their list gets class `task-list`. Runs after inline parsing."""
    tokens = state.tokens
    lists: list[int] = []  # indexes of the open bullet/ordered lists
    for i, tok in enumerate(tokens):
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            lists.append(i)
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif tok.type == "list_item_open" and lists and i + 2 < len(tokens):
            para, inline = tokens[i + 1], tokens[i + 2]
            if para.type != "paragraph_open" or inline.type != "inline" or not inline.children:
                continue
            first = inline.children[0]
            m = _TASK_RE.match(first.content) if first.type == "text" else None
            if m is None:
                continue
            first.content = first.content[m.end() :]
            inline.content = inline.content[m.end() :]
            tok.attrSet("class", "task done" if m.group(1) in "xX" else "task")
            tokens[lists[-1]].attrSet("class", "task-list")


def _table_wrap(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    open_ = tokens[idx].type == "table_open"
    inner = self.renderToken(tokens, idx, options, env)
    return f'<div class="table-wrap">{inner}' if open_ else f"{inner}</div>"


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": False}).enable(
        ["table", "strikethrough"]
    )
    md.core.ruler.after("inline", "task_lists", _task_lists)
    md.add_render_rule("table_open", _table_wrap)
    md.add_render_rule("table_close", _table_wrap)
    return md


_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+\-.]*):")
_TAB_NEWLINE_RE = re.compile(r"[\t\n\r]")
_C0_SPACE = "".join(chr(c) for c in range(0x21))
_SLASHES = "/\\"


def resolve_url(src: str, base: ParsedUrl) -> ParsedUrl | None:
    """The http(s) URL a browser loads for `src` on a page at `base` (`new URL(src, base)`), or
    None when that is not an http(s) URL (data:, javascript:, invalid host...).

    Follows the WHATWG parser where it decides the host: leading/trailing C0 and spaces dropped,
    tabs and newlines dropped anywhere, `\\` is `/`, two slashes of either kind start an authority,
    and `https:x` is relative when the page is https itself but names host `x` when it is not.
    """
    s = _TAB_NEWLINE_RE.sub("", src.strip(_C0_SPACE))
    scheme = base.scheme
    m = _SCHEME_RE.match(s)
    if m is not None:
        scheme = m.group(1).lower()
        if scheme not in DEFAULT_PORTS:
            return None
        rest = s[m.end() :]
        if scheme != base.scheme:  # another special scheme: always an authority follows
            rest = "//" + rest.lstrip(_SLASHES)
    else:
        rest = s
    try:
        if len(rest) >= 2 and rest[0] in _SLASHES and rest[1] in _SLASHES:
            return parse_url(f"{scheme}:{rest}")
        if rest[:1] in ("/", "\\"):
            path = rest
        elif rest[:1] == "?":
            path = base.path + rest
        elif rest[:1] == "#" or not rest:
            path = base.path + (f"?{base.query}" if base.query else "") + rest
        else:
            path = base.path[: base.path.rfind("/") + 1] + rest
        return parse_url(f"{base.scheme}://{base.host}:{base.port}{path}")
    except InvalidUrl:
        return None


def _host_port(entry: str) -> tuple[str, int] | None:
    """An image host setting ("cdn.example.com" or "cdn.example.com:8443") as (host, port)."""
    try:
        u = parse_url(f"https://{entry.strip()}/")
    except InvalidUrl:
        return None
    return u.host, u.port


def image_src(
    src: str, base: ParsedUrl, image_hosts: frozenset[tuple[str, int]]
) -> tuple[ParsedUrl | None, str | None]:
    """(the URL a browser would load, the `src` to emit or None to drop the image).

    Allowed: this server's own origin (emitted as a path, so it means the same under any base),
    or an https URL on one of `image_hosts` (emitted normalised: no userinfo, no default port).
    """
    url = resolve_url(src, base)
    if url is None:
        return None, None
    if (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port):
        query = f"?{url.query}" if url.query else ""
        fragment = f"#{url.fragment}" if url.fragment else ""
        # A path like `//evil.example/t.png` (from `/.//evil...`) would be read as a host:
        # prefix `/.` as the WHATWG serializer does; the browser drops it again.
        path = f"/.{url.path}" if url.path.startswith("//") else url.path
        return url, f"{path}{query}{fragment}"
    if url.scheme == "https" and (url.host, url.port) in image_hosts:
        return url, url.normalized
    return url, None


class Renderer:
    """Renders aid bodies; image hosts come from settings, `base_url` is this server's public URL
    (the page the panel resolves relative image URLs against)."""

    def __init__(
        self, image_hosts: Iterable[str] = (), base_url: str = "http://127.0.0.1:8080"
    ) -> None:
        hosts = (_host_port(h) for h in image_hosts)
        self.image_hosts = frozenset(h for h in hosts if h is not None)
        self.base = parse_url(base_url)

    def _filter(self, tag: str, attr: str, value: str) -> str | None:
        if tag == "img" and attr == "src":
            return image_src(value, self.base, self.image_hosts)[1]
        if attr == "class":
            kept = [c for c in value.split() if c in ALLOWED_CLASSES.get(tag, ())]
            return " ".join(kept) or None
        return value

    def to_html(self, markdown: str) -> str:
        raw = _markdown().render(markdown)
        return nh3.clean(
            raw,
            tags=ALLOWED_TAGS,
            attributes=ALLOWED_ATTRIBUTES,
            url_schemes=URL_SCHEMES,
            link_rel="noopener noreferrer nofollow",
            attribute_filter=self._filter,
            strip_comments=True,
        )


class AsyncRenderer(Renderer):
    """Renders in a worker thread (big documents must not stall the event loop), with a small
    cache keyed by the body's hash."""

    def __init__(
        self,
        image_hosts: Iterable[str] = (),
        cache_size: int = 512,
        base_url: str = "http://127.0.0.1:8080",
    ) -> None:
        super().__init__(image_hosts, base_url)
        self._cache: dict[str, str] = {}
        self._cache_size = cache_size

    async def render(self, markdown: str) -> str:
        key = hashlib.sha256(markdown.encode()).hexdigest()
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        out = await asyncio.get_running_loop().run_in_executor(None, self.to_html, markdown)
        if len(self._cache) >= self._cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = out
        return out
