"""The pure parts of the website connector: URLs, sitemaps and a page's main text.

Everything here is CPU work on bytes already fetched; the connector (website.py) runs it in a
thread (`asyncio.to_thread`), never on the event loop.

- `canonical(url)`: the one spelling of a page's address (scheme and host lower case, no default
  port, no user info, no fragment, tracking parameters dropped, the rest of the query sorted), so a
  page linked as `/a`, `/a#top` and `HTTP://Host:80/a` is read once.
- `parse_sitemap(body)`: a sitemap (`<urlset>`), a sitemap index (`<sitemapindex>`), gzipped or
  not, or a plain text sitemap (one URL a line), as sitemaps.org describes them. XML is parsed
  with entities, DTDs and network access off (no entity expansion bombs, no external fetches).
- `read_page(body, url, content_type)`: the page's title (`<title>`, `og:title` or its `<h1>`, as
  trafilatura judges), its meta description, its links (for a crawl) and its main text as
  Markdown by trafilatura with `favor_precision` (navigation, header, footer, cookie banners and
  comment sections dropped; links, lists, tables, emphasis and code kept).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import zlib
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import lxml.etree
import lxml.html
import trafilatura

TITLE_MAX = 200
SUMMARY_MAX = 500
BODY_MAX = 200_000  # an aid's body limit (server/models.py)

# Query parameters that only say where a click came from: links differing in them are one page.
_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|_ga|_hsenc|_hsmi)$")
# Links a crawl never follows: files that are not pages (read by their extension, before fetching).
_BINARY = """7z apk avi bin bmp bz2 css csv dmg doc docx eot eps exe flac gif gz ico ics iso jar
jpeg jpg js json m4a m4v mkv mov mp3 mp4 mpeg mpg msi odp ods odt ogg otf pdf png ppt pptx ps rar
rss rtf svg swf tar tgz tif tiff ttf txt wav webm webp wmv woff woff2 xls xlsx xml xz zip"""
BINARY_EXTENSIONS = frozenset(_BINARY.split())
_HTML_TYPES = ("text/html", "application/xhtml+xml")


# -- URLs ------------------------------------------------------------------------------------------


def canonical(url: str) -> str | None:
    """The canonical spelling of an http(s) URL, or None when it is not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in ("http", "https") or not host:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    path = quote(_remove_dot_segments(parts.path or "/"), safe="/%:@!$&'()*+,;=-._~")
    query = ""
    if parts.query:
        pairs = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING.match(k)
        ]
        query = urlencode(sorted(pairs))
    return urlunsplit((scheme, netloc, path, query, ""))


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
        elif segment == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def is_binary_link(url: str) -> bool:
    """A link to a file that is not a page (a PDF, an image, an archive...), by its extension."""
    last = urlsplit(url).path.rsplit("/", 1)[-1]
    return "." in last and last.rsplit(".", 1)[1].lower() in BINARY_EXTENSIONS


# -- sitemaps --------------------------------------------------------------------------------------


class SitemapError(ValueError):
    """Not a sitemap: the reason is shown to the admin."""


@dataclass(frozen=True)
class SitemapEntry:
    loc: str
    lastmod: dt.datetime | None = None  # aware; a date alone means the end of that day (UTC)


@dataclass(frozen=True)
class Sitemap:
    index: bool  # a sitemap index: `entries` are sitemaps, not pages
    entries: list[SitemapEntry] = field(default_factory=list)


_XML_PARSER_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}


def parse_sitemap(body: bytes, max_bytes: int) -> Sitemap:
    """A sitemap document's entries (runs in a thread). Raises SitemapError."""
    if body[:2] == b"\x1f\x8b":
        body = _gunzip(body, max_bytes)
    text_start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if text_start != b"<":
        return _text_sitemap(body)
    parser = lxml.etree.XMLParser(**_XML_PARSER_OPTIONS)
    try:
        root = lxml.etree.fromstring(body, parser)
    except lxml.etree.XMLSyntaxError as exc:
        raise SitemapError(f"the sitemap is not well-formed XML ({exc})") from exc
    kind = lxml.etree.QName(root).localname
    if kind not in ("urlset", "sitemapindex"):
        raise SitemapError(f"not a sitemap: the document is a <{kind}>, not a <urlset>")
    child = "url" if kind == "urlset" else "sitemap"
    entries = []
    for el in root:
        if not isinstance(el.tag, str) or lxml.etree.QName(el).localname != child:
            continue
        loc = lastmod = ""
        for part in el:
            if not isinstance(part.tag, str):
                continue
            name = lxml.etree.QName(part).localname
            if name == "loc":
                loc = (part.text or "").strip()
            elif name == "lastmod":
                lastmod = (part.text or "").strip()
        if loc:
            entries.append(SitemapEntry(loc, parse_lastmod(lastmod)))
    return Sitemap(index=kind == "sitemapindex", entries=entries)


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    """A gzipped sitemap, refused when it unpacks to more than max_bytes (a zip bomb)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise SitemapError(f"the gzipped sitemap is broken ({exc})") from exc
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise SitemapError(f"the gzipped sitemap unpacks to more than {max_bytes} bytes")
    return data


def _text_sitemap(body: bytes) -> Sitemap:
    text = body.decode("utf-8", errors="replace").lstrip("\ufeff")
    entries = [
        SitemapEntry(line.strip())
        for line in text.splitlines()
        if line.strip().lower().startswith(("http://", "https://"))
    ]
    if not entries and text.strip():
        raise SitemapError("not a sitemap: neither XML nor a list of URLs")
    return Sitemap(index=False, entries=entries)


def parse_lastmod(value: str) -> dt.datetime | None:
    """A W3C datetime (`2026-11-30`, `2026-11-30T10:00:00+01:00`, `...Z`) as an aware datetime; a
    date alone is the end of that day (UTC), so a page changed later that day is read again."""
    value = value.strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


# -- pages -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """What a page gives: its body is "" when trafilatura found no main text."""

    title: str
    summary: str
    body: str  # Markdown
    links: tuple[str, ...]  # canonical absolute http(s) URLs, in page order, each once
    noindex: bool = False  # <meta name="robots" content="noindex">: not to be made an aid
    nofollow: bool = False  # ... "nofollow": its links are not followed
    canonical: str = ""  # <link rel="canonical">: the URL the page names as its own (canonical)


def is_html(content_type: str, body: bytes) -> bool:
    """An HTML page by its Content-Type (or, without one, by its first bytes)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind:
        return kind in _HTML_TYPES
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def read_page(body: bytes, url: str, content_type: str = "", robots_header: str = "") -> Page:
    """Title, summary, links and main text of an HTML page (runs in a thread)."""
    tree = _parse_html(body, content_type)
    if tree is None:
        return Page(title=_title_from_url(url), summary="", body="", links=())
    robots = (
        robots_header.lower()
        + ","
        + ",".join(
            (meta.get("content") or "").lower()
            for meta in tree.iter("meta")
            if (meta.get("name") or "").strip().lower() == "robots"
        )
    )
    noindex = "noindex" in robots or "none" in robots.split(",")
    nofollow = "nofollow" in robots or "none" in robots.split(",")
    with contextlib.suppress(ValueError):  # resolves <base href> too
        tree.make_links_absolute(url, resolve_base_href=True, handle_failures="discard")
    links = () if nofollow else _links(tree)
    declared = _canonical_link(tree)
    h1 = _first_text(tree, "h1")
    head_title = _first_text(tree, "title")
    meta = trafilatura.extract_metadata(tree, default_url=url, extensive=False)
    title = _one_line(meta.title or "") or h1 or head_title or _title_from_url(url)
    summary = _one_line(meta.description or "")
    text = trafilatura.extract(
        tree,
        url=url,
        output_format="markdown",
        favor_precision=True,  # no navigation: without it short pages came back as their menus
        include_links=True,
        include_formatting=True,
        include_tables=True,
        include_images=False,
        include_comments=False,
        deduplicate=False,
    )
    markdown = tidy_markdown(text or "", title)
    return Page(
        title=cut(title, TITLE_MAX),
        summary=cut(summary, SUMMARY_MAX),
        body=markdown,
        links=links,
        noindex=noindex,
        nofollow=nofollow,
        canonical=declared,
    )


def _parse_html(body: bytes, content_type: str) -> lxml.html.HtmlElement | None:
    charset = ""
    match = re.search(r"charset\s*=\s*\"?([\w.:-]+)", content_type, re.IGNORECASE)
    if match:
        charset = match.group(1)
    try:
        if charset:
            try:
                text = body.decode(charset, errors="replace")
            except LookupError:  # an unknown charset name: let lxml read the page's own
                tree = lxml.html.document_fromstring(body)
            else:
                # lxml refuses a str that still declares its encoding in an XML prolog
                text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
                tree = lxml.html.document_fromstring(text)
        else:
            tree = lxml.html.document_fromstring(body)
    except (lxml.etree.ParserError, ValueError):
        return None
    return tree


def _canonical_link(tree: lxml.html.HtmlElement) -> str:
    for link in tree.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split() and link.get("href"):
            return canonical(link.get("href") or "") or ""
    return ""


def _links(tree: lxml.html.HtmlElement) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for a in tree.iter("a", "area"):
        href = a.get("href")
        if not href or "nofollow" in (a.get("rel") or "").lower().split():
            continue
        url = canonical(href)
        if url is not None:
            seen.setdefault(url, None)
    return tuple(seen)


def _first_text(tree: lxml.html.HtmlElement, tag: str) -> str:
    for el in tree.iter(tag):
        text = _one_line(el.text_content())
        if text:
            return text
    return ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _title_from_url(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    last = path.rsplit("/", 1)[-1]
    last = re.sub(r"\.(html?|php|aspx?|jsp)$", "", last, flags=re.IGNORECASE)
    words = re.sub(r"[-_+]+", " ", last).strip()
    return words[:1].upper() + words[1:] if words else (urlsplit(url).hostname or url)


def cut(text: str, limit: int) -> str:
    """`text` within `limit` characters, cut at a word with an ellipsis when longer."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if " " in head[limit // 2 :]:
        head = head.rsplit(" ", 1)[0]
    return head.rstrip() + "…"


# -- Markdown --------------------------------------------------------------------------------------

_BLOCK_START = re.compile(r"^\s*(?:[-*+]\s|\d{1,9}[.)]\s|#{1,6}\s|>|\||```|~~~|---\s*$)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # not tab, not newline


def tidy_markdown(markdown: str, title: str) -> str:
    """trafilatura's Markdown, tidied: a paragraph's source line breaks and indentation joined
    (they render the same and would otherwise make a whitespace-only change of the HTML look
    like a changed page), control characters and undecodable bytes removed, blank runs
    collapsed, and a leading `# heading` equal to the aid's title dropped (the panel shows the
    title already). Code blocks are left exactly as they are."""
    out: list[str] = []
    fence = ""
    markdown = _CONTROL.sub("", markdown.replace("\r\n", "\n").replace("\ufffd", ""))
    for raw in markdown.split("\n"):
        if fence:
            out.append(raw)
            if raw.strip().startswith(fence):
                fence = ""
            continue
        line = raw.rstrip()
        opening = _FENCE.match(line)
        if opening:
            fence = opening.group(1)
            out.append(line)
            continue
        prev = out[-1] if out else ""
        if (
            line.strip()
            and prev.strip()
            and not _BLOCK_START.match(line)
            and not re.match(r"^\s*(?:#{1,6}\s|\||```|~~~)", prev)
        ):
            out[-1] = prev + " " + line.strip()
        else:
            out.append(line if line.strip() else "")
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip("\n")
    first, _, rest = text.partition("\n")
    heading = re.match(r"^#\s+(.*)$", first)
    if heading and _one_line(heading.group(1)).casefold() == _one_line(title).casefold():
        text = rest.strip("\n")
    return text.strip()
