"""RSS and Atom feeds: one item per entry (e.g. a SaaS vendor's release notes).

The feed is fetched with the source's stored validators (ETag, Last-Modified): a 304 means
nothing changed (`Listing(not_modified=True)`, no entry is read). feedparser parses it in a
thread; it resolves relative links against the feed's URL and sanitises entry HTML, which is
turned into Markdown here (links kept; the renderer sanitises again when the aid is shown).

An entry's external id is its `id` (Atom id, RSS guid), else its link, else a hash of its title
and date. An entry whose enclosure or `media:content` is a video becomes a `video` item whose URL
is the video's. A feed feedparser could not parse and that has no entries is a `SyncError` with
feedparser's reason (a feed with a small error but entries is read: feeds in the wild often have
one).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from collections.abc import Iterable
from typing import Any

import feedparser
import lxml.html

from server.fetch import FetchFailed, FetchRefused
from server.sources.connectors.base import Item, Listing, SyncContext, SyncError

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
TITLE_MAX = 200
SUMMARY_MAX = 500
BODY_MAX = 200_000


class FeedConnector:
    """Reads an RSS 2.0 or Atom feed (RSS 1.0/RDF too: feedparser reads them all)."""

    async def list(self, ctx: SyncContext) -> Listing:
        url = ctx.source.url
        ctx.progress(0, 1, "fetching the feed")
        try:
            result = await ctx.fetcher.fetch(
                url,
                ctx.policy,
                etag=ctx.validators.get("etag", ""),
                last_modified=ctx.validators.get("last_modified", ""),
                accept=ACCEPT,
            )
        except FetchRefused as exc:
            raise SyncError(f"fetch refused: {exc}") from exc
        except FetchFailed as exc:
            raise SyncError(f"fetch failed: {exc}") from exc
        if result.not_modified:
            ctx.progress(1, 1, "not modified")
            return Listing(entries=[], not_modified=True, validators=dict(ctx.validators))
        if not result.ok:
            raise SyncError(f"the feed answered HTTP {result.status}")
        headers = {
            "content-location": result.url,
            "content-type": result.headers.get("Content-Type", "application/xml"),
        }
        ctx.progress(0, 1, "reading the feed")
        items, complete = await asyncio.to_thread(parse_feed, result.body, result.url, headers)
        ctx.progress(1, 1, f"{len(items)} entries")
        validators = {}
        if result.etag:
            validators["etag"] = result.etag
        if result.last_modified:
            validators["last_modified"] = result.last_modified
        return Listing(entries=list(items), complete=complete, validators=validators)


def parse_feed(
    body: bytes, url: str, headers: dict[str, str] | None = None
) -> tuple[list[Item], bool]:
    """Items of a feed document (runs in a thread), and whether the list is complete: a feed
    that is not well-formed (cut off in transit, say) may have lost entries, so what it lacks is
    not taken as removed. Raises SyncError for a broken feed without entries."""
    # A file-like object: feedparser treats a str or bytes as a URL or file name to open.
    headers = headers or {"content-location": url, "content-type": "application/xml"}
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    entries = parsed.get("entries") or []
    if not entries and (parsed.get("bozo") or not parsed.get("version")):
        reason = parsed.get("bozo_exception")
        raise SyncError(f"not a feed: {reason}" if reason else "not an RSS or Atom feed")
    items: list[Item] = []
    seen: set[str] = set()
    for entry in entries:
        if not (entry.get("title") or entry.get("link") or entry.get("summary")):
            continue  # nothing to make an aid of (the tail of a feed cut off in transit)
        item = entry_item(entry, url)
        if item.external_id in seen:  # a feed listing an entry twice: the first one counts
            continue
        seen.add(item.external_id)
        items.append(item)
    return items, _well_formed(parsed)


def _well_formed(parsed: Any) -> bool:
    """Whether the feed was read whole: no XML error (a charset or content-type remark
    feedparser makes about a feed it read fine does not count)."""
    if not parsed.get("bozo"):
        return True
    benign = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
    return isinstance(parsed.get("bozo_exception"), benign)


def entry_item(entry: Any, feed_url: str) -> Item:
    title = _text(entry.get("title", "")) or "Untitled"
    link = str(entry.get("link") or "")
    # dict.get: feedparser's own `updated` falls back to `published` with a DeprecationWarning
    date = str(dict.get(entry, "updated") or dict.get(entry, "published") or "")
    external_id = str(entry.get("id") or "") or link
    if not external_id:
        external_id = "sha256:" + hashlib.sha256(f"{title}\n{date}".encode()).hexdigest()[:32]
    content_html = ""
    for content in entry.get("content") or ():
        if content.get("value"):
            content_html = str(content["value"])
            break
    summary_html = str(entry.get("summary") or "")
    body_html = content_html or summary_html
    body = html_to_markdown(body_html) if _looks_html(body_html) else body_html.strip()
    summary = ""
    if content_html and summary_html and summary_html.strip() != content_html.strip():
        summary = _text(summary_html)
    video = _video_url(entry)
    tags = tuple(str(tag.get("term")).strip() for tag in entry.get("tags") or () if tag.get("term"))
    return Item(
        external_id=external_id[:2000],
        url=video or link or feed_url,
        title=_cut(title, TITLE_MAX),
        body=body[:BODY_MAX],
        summary=_cut(summary, SUMMARY_MAX),
        type="video" if video else "",
        tags=tags,
    )


def _video_url(entry: Any) -> str:
    candidates: list[Any] = list(entry.get("enclosures") or ()) + list(
        entry.get("media_content") or ()
    )
    for media in candidates:
        kind = str(media.get("type") or "")
        url = str(media.get("href") or media.get("url") or "")
        if url.startswith(("http://", "https://")) and (
            kind.startswith("video/") or media.get("medium") == "video"
        ):
            return url
    return ""


def _looks_html(text: str) -> bool:
    return bool(re.search(r"<[a-zA-Z!/]", text))


def _text(html: str) -> str:
    """Plain text of an HTML fragment (titles, summaries), whitespace collapsed."""
    if not html.strip():
        return ""
    if not _looks_html(html):
        return " ".join(html.split())
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (ValueError, lxml.etree.ParserError):
        return " ".join(html.split())
    return " ".join(root.text_content().split())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- HTML to Markdown --------------------------------------------------------------------------

_BLOCK = {"p", "div", "section", "article", "header", "footer", "figure", "figcaption", "table"}
_SKIP = {"script", "style", "template", "iframe", "object", "embed", "form", "button", "head"}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>])")


def html_to_markdown(html: str) -> str:
    """A small converter for feed entry HTML: paragraphs, headings, lists, links, emphasis,
    code, quotes and images (as links). What it does not know becomes its text."""
    if not html.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (ValueError, lxml.etree.ParserError):
        return html.strip()
    out = _blocks(root)
    text = re.sub(r"\n{3,}", "\n\n", out).strip()
    return text


def _inline(el: Any) -> str:
    parts: list[str] = []
    if el.text:
        parts.append(_escape(el.text))
    for child in el:
        parts.append(_inline_el(child))
        if child.tail:
            parts.append(_escape(child.tail))
    return "".join(parts)


def _inline_el(el: Any) -> str:
    tag = el.tag if isinstance(el.tag, str) else ""
    if tag in _SKIP or not tag:
        return ""
    if tag == "br":
        return "\\\n"
    if tag == "a":
        text = _inline(el).strip() or _escape(el.get("href", ""))
        href = _url(el.get("href") or "")
        if href.startswith(("http://", "https://", "mailto:")):
            return f"[{text}](<{href}>)"
        return text
    if tag == "img":
        src = _url(el.get("src") or "")
        alt = _escape(el.get("alt") or "image")
        return f"[{alt}](<{src}>)" if src.startswith(("http://", "https://")) else alt
    if tag in ("strong", "b"):
        inner = _inline(el).strip()
        return f"**{inner}**" if inner else ""
    if tag in ("em", "i"):
        inner = _inline(el).strip()
        return f"*{inner}*" if inner else ""
    if tag == "code":
        code = el.text_content()
        fence = "``" if "`" in code else "`"
        return f"{fence}{code}{fence}" if code else ""
    if tag in _BLOCK or tag in ("ul", "ol", "pre", "blockquote") or re.fullmatch(r"h[1-6]", tag):
        return "\n\n" + _blocks_of(el) + "\n\n"
    return _inline(el)


def _blocks(el: Any) -> str:
    """The block content of an element: its children joined by blank lines."""
    chunks: list[str] = []
    line: list[str] = []

    def flush() -> None:
        text = re.sub(r"[ \t]+", " ", "".join(line)).strip()
        text = re.sub(r" ?\n ?", "\n", text)
        if text:
            chunks.append(text)
        line.clear()

    if el.text:
        line.append(_escape(el.text))
    for child in el:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag and (
            tag in _BLOCK
            or tag in ("ul", "ol", "pre", "blockquote", "hr", "li")
            or re.fullmatch(r"h[1-6]", tag)
        ):
            flush()
            block = _blocks_of(child)
            if block:
                chunks.append(block)
        else:
            line.append(_inline_el(child))
        if child.tail:
            line.append(_escape(child.tail))
    flush()
    return "\n\n".join(chunks)


def _blocks_of(el: Any) -> str:
    tag = el.tag if isinstance(el.tag, str) else ""
    if tag in _SKIP:
        return ""
    heading = re.fullmatch(r"h([1-6])", tag)
    if heading:
        text = " ".join(_inline(el).split())
        return f"{'#' * int(heading.group(1))} {text}" if text else ""
    if tag == "hr":
        return "---"
    if tag == "pre":
        code = el.text_content().rstrip("\n")
        fence = "~~~~" if "```" in code else "```"
        return f"{fence}\n{code}\n{fence}"
    if tag == "blockquote":
        inner = _blocks(el)
        return "\n".join(f"> {line}" if line else ">" for line in inner.splitlines())
    if tag in ("ul", "ol"):
        return "\n".join(_list_items(el, ordered=tag == "ol"))
    return _blocks(el)


def _list_items(el: Any, *, ordered: bool) -> Iterable[str]:
    n = 0
    for child in el:
        if not isinstance(child.tag, str) or child.tag != "li":
            continue
        n += 1
        marker = f"{n}. " if ordered else "- "
        inner = _blocks(child) or ""
        lines = inner.splitlines() or [""]
        yield marker + lines[0]
        pad = " " * len(marker)
        for line in lines[1:]:
            yield (pad + line) if line else ""


def _url(url: str) -> str:
    """A URL fit for `[text](<url>)`."""
    return url.strip().replace(" ", "%20").replace("<", "%3C").replace(">", "%3E")


def _escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", re.sub(r"\s+", " ", text))
