"""Markdown to safe HTML (markdown-it-py, then nh3), and to plain text for the index.

Only http, https and mailto links survive; no scripts, event handlers, iframes, forms or styles;
images only from this server (relative URLs) or from configured hosts over https.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt

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
    "ol": {"start"},
    "abbr": {"title"},
}
URL_SCHEMES = {"http", "https", "mailto"}
_TAG_RE = re.compile(r"<[^>]+>")
_WS_RE = re.compile(r"\s+")


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True, "linkify": False}).enable(
        ["table", "strikethrough"]
    )


class Renderer:
    """Renders aid bodies; image hosts come from settings."""

    def __init__(self, image_hosts: Iterable[str] = ()) -> None:
        self.image_hosts = frozenset(h.lower() for h in image_hosts)

    def _filter(self, tag: str, attr: str, value: str) -> str | None:
        if tag == "img" and attr == "src":
            parts = urlsplit(value)
            if not parts.scheme and not parts.netloc and value.startswith("/"):
                return value  # served by this server
            if parts.scheme == "https" and (parts.hostname or "").lower() in self.image_hosts:
                return value
            return None
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


_SCRIPT_RE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_IMAGE_RE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK_RE = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_REF_DEF_RE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$", re.MULTILINE)
_MARKUP_RE = re.compile(
    r"^\s{0,3}(?:#{1,6}\s+|>\s?|[-*+]\s+|\d+[.)]\s+)|[*_`~|]+|^[-=:| ]{3,}$", re.MULTILINE
)


def to_text(markdown: str) -> str:
    """Plain text of a Markdown body, for indexing and snippets (never rendered as HTML).

    A handful of regexes rather than a full Markdown parse: about ten times faster, which
    matters for index builds, and the words that come out are the same.
    """
    text = _SCRIPT_RE.sub(" ", markdown)
    text = _IMAGE_RE.sub(r"\1", text)
    text = _LINK_RE.sub(r"\1", text)
    text = _REF_DEF_RE.sub(" ", text)
    text = _TAG_RE.sub(" ", text)
    text = _MARKUP_RE.sub(" ", text)
    return _WS_RE.sub(" ", html.unescape(text)).strip()


class AsyncRenderer(Renderer):
    """Renders in a worker thread (big documents must not stall the event loop), with a small
    cache keyed by the body's hash."""

    def __init__(self, image_hosts: Iterable[str] = (), cache_size: int = 512) -> None:
        super().__init__(image_hosts)
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
