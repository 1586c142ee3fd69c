"""A website section: one aid per page, its main text (not the navigation) as Markdown.

Two modes (`Source.mode`):

- `sitemap`: `url` is a sitemap (`<urlset>`), a sitemap index (its sitemaps are read, up to
  `MAX_SITEMAPS`), either gzipped, or a plain text list of URLs. Pages on hosts the source does not
  allow are left out, and so are pages outside `path_prefix` when one is set. A page whose
  `<lastmod>` is older than when its aid was last read is not fetched at all (Unchanged).
- `crawl`: from the start page `url`, breadth first, following links on the same origin (scheme,
  host, port) whose path starts with `path_prefix` (empty: the start page's folder). Links to
  files that are not pages (PDF, images, archives...) are not followed, fragments are dropped,
  tracking parameters are dropped and at most `MAX_QUERY_VARIANTS` query strings of one path are
  followed (a calendar's `?month=` links do not explode a crawl). The pages the source made
  before are visited too (after what links reach), so a page whose parent answered 304 (and so
  gave no links) is still read. A page without main text that links on (an index page) is
  crossed, not made an aid.

Both: at most `page_cap` pages (a crawl counts every page it reads, index pages too;
`Listing.complete` is False when the cap cut the list: then nothing missing is archived).
robots.txt is obeyed (`FetchPolicy.robots`), its Crawl-delay too (one page at a time then, at most
`MAX_CRAWL_DELAY` apart), and so are a page's `<meta name="robots" content="noindex|nofollow">`
and `X-Robots-Tag`. A page whose aid exists is fetched with its ETag/Last-Modified and a 304 is
`Unchanged`. A page that answers an HTTP error, is not HTML, is refused by the fetcher (a redirect
to a host not allowed, too big) or has no main text is `Failed` with the reason (its old aid
stays); a page robots.txt disallows is left out.
A page whose `<link rel="canonical">` names another page of the listing is a copy and left out
(unless more than `MAX_COPIES` pages name that one: a site naming its home page everywhere).
Each page's external id is its canonical URL after redirects. The sitemap or start page failing
fails the whole run (`SyncError`): nothing changes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from server.fetch import FetchFailed, FetchPolicy, FetchRefused, FetchResult
from server.fetch.policy import host_allowed
from server.sources.connectors.base import (
    Entry,
    Failed,
    Item,
    Listing,
    SyncContext,
    SyncError,
    Unchanged,
)
from server.sources.connectors.website_extract import (
    BODY_MAX,
    Page,
    Sitemap,
    SitemapError,
    canonical,
    is_binary_link,
    is_html,
    parse_sitemap,
    read_page,
)

ACCEPT_HTML = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
ACCEPT_SITEMAP = "application/xml, text/xml;q=0.9, application/gzip;q=0.8, text/plain;q=0.5"
MAX_SITEMAPS = 50  # sitemaps read from one sitemap index (and its nested indexes)
MAX_QUERY_VARIANTS = 10  # query strings of one path a crawl follows
CONCURRENCY = 4  # pages in flight at once (the fetcher also limits requests per host)
# A page naming another page of the listing as its canonical URL (a print copy) is left out,
# unless more pages than this name it (a site that names its home page everywhere).
MAX_COPIES = 5
MAX_CRAWL_DELAY = 10.0  # seconds: a robots.txt Crawl-delay is obeyed up to this
# A sitemap's <lastmod> must be this much older than our last read to skip the page: the
# site's clock may be behind ours.
LASTMOD_MARGIN = dt.timedelta(hours=1)


class WebsiteConnector:
    """Reads a website section by its sitemap or by crawling from a start page."""

    async def list(self, ctx: SyncContext) -> Listing:
        policy = replace(ctx.policy, robots=True)
        if not policy.allowed_hosts:  # () would allow every host: never for a website
            policy = replace(policy, allowed_hosts=ctx.source.hosts())
        run = _Run(ctx, policy)
        if ctx.source.mode == "crawl":
            return await run.crawl()
        return await run.sitemap()


@dataclass
class _Read:
    """What reading one page gave."""

    entry: Entry | None  # None: left out of the listing
    final: str = ""  # the canonical URL after redirects ("" when nothing was fetched)
    page: Page | None = None  # a 200 HTML page


class _Run:
    def __init__(self, ctx: SyncContext, policy: FetchPolicy) -> None:
        self.ctx = ctx
        self.policy = policy
        self.cap = ctx.source.page_cap
        self.entries: list[Entry] = []
        self.done: set[str] = set()  # canonical URLs given an entry (or fetched), once each
        self.copies: dict[str, str] = {}  # an item's id -> the other URL it names as canonical
        self.concurrency = CONCURRENCY
        self.delay = 0.0  # seconds between requests: the site's robots.txt Crawl-delay

    async def _pace(self, url: str) -> None:
        """Obey the site's Crawl-delay (robots.txt, fetched already): one page at a time then."""
        try:
            delay = await self.ctx.fetcher.crawl_delay(url, self.policy)
        except (FetchRefused, FetchFailed):
            delay = 0.0
        if delay > 0:
            self.delay = min(delay, MAX_CRAWL_DELAY)
            self.concurrency = 1

    async def _wait(self, first: bool) -> None:
        if self.delay and not first:
            await asyncio.sleep(self.delay)

    # -- sitemap mode ----------------------------------------------------------------------------

    async def sitemap(self) -> Listing:
        top = self.ctx.source.url
        prefix = _prefix_path(self.ctx.source.path_prefix)
        self.ctx.progress(0, 0, "reading the sitemap")
        pages: dict[str, dt.datetime | None] = {}
        complete = True
        queue = deque([top])
        seen_maps = {canonical(top) or top}
        maps_read = 0
        capped = False
        while queue and not capped:
            if maps_read >= MAX_SITEMAPS:
                complete = False
                break
            map_url = queue.popleft()
            maps_read += 1
            try:
                sitemap = await self._read_sitemap(map_url)
            except SyncError as exc:
                if map_url == top:
                    raise
                # one sitemap of an index: its pages are unknown, so nothing may be archived
                complete = False
                self.entries.append(Failed(map_url, exc.reason))
                continue
            # up to 50,000 URLs a sitemap: sorted out in a thread, not on the loop
            hosts = self.policy.allowed_hosts
            chosen = await asyncio.to_thread(_choose, sitemap, hosts, prefix)
            for url, lastmod in chosen:
                if sitemap.index:
                    if url not in seen_maps:
                        seen_maps.add(url)
                        queue.append(url)
                elif url not in pages:
                    if len(pages) >= self.cap:
                        complete, capped = False, True
                        break
                    pages[url] = lastmod
        total = len(pages)
        todo: list[str] = []
        for url, lastmod in pages.items():
            if self._fresh(url, lastmod):
                self.done.add(url)
                self.entries.append(Unchanged(url))
            else:
                todo.append(url)
        self.ctx.progress(total - len(todo), total, f"{total} pages in the sitemap")
        if todo:
            await self._pace(todo[0])
        for start in range(0, len(todo), self.concurrency):
            await self._wait(first=start == 0)
            batch = todo[start : start + self.concurrency]
            reads = await asyncio.gather(*(self._read(url, conditional=True) for url in batch))
            for url, read in zip(batch, reads, strict=True):
                self._keep(url, read)
                if read.page is not None and read.entry is None and not read.page.noindex:
                    self._add(Failed(url, "nothing to extract: the page has no main text"))
            done = total - len(todo) + start + len(batch)
            self.ctx.progress(done, total, f"{done} of {total} pages read")
        return self.listing(complete)

    async def _read_sitemap(self, url: str) -> Sitemap:
        try:
            result = await self.ctx.fetcher.fetch(url, self.policy, accept=ACCEPT_SITEMAP)
        except FetchRefused as exc:
            raise SyncError(f"the sitemap {url} was refused: {exc.detail}") from exc
        except FetchFailed as exc:
            raise SyncError(f"the sitemap {url} could not be fetched: {exc.detail}") from exc
        if not result.ok:
            raise SyncError(f"the sitemap {url} answered HTTP {result.status}")
        try:
            return await asyncio.to_thread(parse_sitemap, result.body, self.policy.max_bytes)
        except SitemapError as exc:
            raise SyncError(f"the sitemap {url}: {exc}") from exc

    def _fresh(self, url: str, lastmod: dt.datetime | None) -> bool:
        """The sitemap says the page has not changed since its aid was last read."""
        previous = self.ctx.previous.get(url)
        if lastmod is None or previous is None or previous.state != "active":
            return False
        try:
            fetched = dt.datetime.fromisoformat(previous.fetched_at)
        except ValueError:
            return False
        if fetched.tzinfo is None:
            fetched = fetched.replace(tzinfo=dt.UTC)
        return lastmod < fetched - LASTMOD_MARGIN

    # -- crawl mode ------------------------------------------------------------------------------

    async def crawl(self) -> Listing:
        start = canonical(self.ctx.source.url)
        if start is None:
            raise SyncError("the start page's URL is not an http(s) URL")
        scope = _Scope(start, self.ctx.source.path_prefix)
        queue: deque[tuple[str, bool]] = deque([(start, False)])  # (url, only a known page)
        queued = {start}
        # the pages read before (not those gone: a page that comes back is linked again)
        seeds = [
            url
            for url in (
                canonical(key) for key, item in self.ctx.previous.items() if item.state != "removed"
            )
            if url is not None and scope.covers(url)
        ]
        tried = 0
        self.ctx.progress(0, 0, "reading the start page")
        first = await self._read(start, conditional=False)
        tried += 1
        _start_must_work(start, first)
        batch_reads: Iterable[tuple[tuple[str, bool], _Read]] = [((start, False), first)]
        queue.popleft()
        await self._pace(start)
        while True:
            for (url, known), read in batch_reads:
                if known and read.entry is None and not read.final:
                    continue  # a page made before that is gone (404/410) or now disallowed
                if read.final:
                    queued.add(read.final)  # a redirect's target is not read again
                page = read.page
                if page is not None and not page.nofollow:
                    for link in (*page.links, page.canonical):
                        if link not in queued and scope.follows(link):
                            queued.add(link)
                            queue.append((link, False))
                if read.final and not scope.covers(read.final):
                    continue  # the start page above the prefix, or a redirect out of it
                if page is not None and read.entry is None and not page.noindex:
                    if any(scope.covers(link) for link in page.links):
                        continue  # an index page: crossed, not an aid
                    self._add(Failed(url, "nothing to extract: the page has no main text"))
                    continue
                self._keep(url, read)
            if not queue:
                for url in seeds:
                    if url not in queued:
                        queued.add(url)
                        queue.append((url, True))
                seeds = []
            if not queue or tried >= self.cap:
                break
            await self._wait(first=False)
            size = min(self.concurrency, self.cap - tried, len(queue))
            batch = [queue.popleft() for _ in range(size)]
            tried += len(batch)
            reads = await asyncio.gather(
                *(self._read(url, conditional=True, known=known) for url, known in batch)
            )
            batch_reads = list(zip(batch, reads, strict=True))
            total = min(self.cap, tried + len(queue) + len(seeds))
            self.ctx.progress(tried, total, f"{tried} pages read, {len(queue)} to go")
        complete = not queue and not [url for url in seeds if url not in queued]
        self.ctx.progress(tried, tried, f"{tried} pages read")
        return self.listing(complete)

    # -- one page --------------------------------------------------------------------------------

    async def _read(self, url: str, *, conditional: bool, known: bool = False) -> _Read:
        """Fetch and extract one page; never raises for the page's own trouble."""
        previous = self.ctx.previous.get(url) if conditional else None
        try:
            result = await self.ctx.fetcher.fetch(
                url,
                self.policy,
                etag=previous.etag if previous else "",
                last_modified=previous.last_modified if previous else "",
                accept=ACCEPT_HTML,
            )
        except FetchRefused as exc:
            if exc.reason == "robots":
                return _Read(None)  # robots.txt says no: left out
            return _Read(Failed(url, f"refused: {exc.detail}"))
        except FetchFailed as exc:
            return _Read(Failed(url, f"could not be fetched: {exc.detail}"))
        final = canonical(result.url) or url
        if result.not_modified:
            return _Read(
                Unchanged(url) if previous else Failed(url, "HTTP 304 to an unconditional request"),
                final,
            )
        if not result.ok:
            if known and result.status in (404, 410):
                return _Read(None)  # gone, and nothing links to it any more
            return _Read(Failed(url, f"HTTP {result.status}"), final)
        return await self._page(url, final, result)

    async def _page(self, url: str, final: str, result: FetchResult) -> _Read:
        content_type = result.headers.get("Content-Type", "")
        if not is_html(content_type, result.body):
            kind = content_type.split(";", 1)[0].strip() or "no content type"
            return _Read(Failed(url, f"not an HTML page ({kind})"), final)
        page = await asyncio.to_thread(
            read_page,
            result.body,
            result.url,
            content_type,
            result.headers.get("X-Robots-Tag", ""),
        )
        if page.noindex or not page.body:
            return _Read(None, final, page)
        if len(page.body) > BODY_MAX:
            reason = f"the page's text is longer than an aid may be ({BODY_MAX} characters)"
            return _Read(Failed(url, reason), final, page)
        item = Item(
            external_id=final,
            url=final,
            title=page.title,
            body=page.body,
            summary=page.summary,
            etag=result.etag,
            last_modified=result.last_modified,
        )
        return _Read(item, final, page)

    def _keep(self, url: str, read: _Read) -> None:
        """Add what a page gave, once per canonical URL (two links redirecting to one page)."""
        if read.entry is None:
            return
        key = read.final or url
        if key in self.done:
            return
        self.done.add(key)
        self.entries.append(read.entry)
        page = read.page
        if isinstance(read.entry, Item) and page and page.canonical not in ("", key):
            self.copies[key] = page.canonical

    def listing(self, complete: bool) -> Listing:
        """The entries, without pages that are copies of another page of the listing."""
        present = {e.external_id for e in self.entries if not isinstance(e, Failed)}
        named = Counter(self.copies.values())
        copies = {
            url
            for url, original in self.copies.items()
            if original in present and named[original] <= MAX_COPIES
        }
        entries = [e for e in self.entries if e.external_id not in copies]
        return Listing(entries=entries, complete=complete)

    def _add(self, entry: Entry) -> None:
        if entry.external_id not in self.done:
            self.done.add(entry.external_id)
            self.entries.append(entry)


def _choose(
    sitemap: Sitemap, hosts: tuple[str, ...], prefix: str
) -> list[tuple[str, dt.datetime | None]]:
    """A sitemap's entries as canonical URLs on the allowed hosts (pages: under the prefix)."""
    out = []
    for entry in sitemap.entries:
        url = canonical(entry.loc)
        if url is None:
            continue
        parts = urlsplit(url)
        if not host_allowed(parts.hostname or "", hosts):
            continue
        if sitemap.index or parts.path.startswith(prefix):
            out.append((url, entry.lastmod))
    return out


def _start_must_work(start: str, read: _Read) -> None:
    """The start page is where a crawl finds everything: without it the listing would be empty
    and every aid archived, so its failure fails the run."""
    if isinstance(read.entry, Failed):
        raise SyncError(f"the start page {start} could not be read: {read.entry.reason}")
    if read.entry is None and read.page is None:
        raise SyncError(f"the start page {start} may not be crawled (robots.txt)")


def _prefix_path(prefix: str) -> str:
    """A path prefix as given (a path or a full URL) as a path: '' = every path."""
    prefix = prefix.strip()
    if prefix.lower().startswith(("http://", "https://")):
        prefix = urlsplit(prefix).path
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    return prefix


class _Scope:
    """Which links a crawl follows, and which pages become aids."""

    def __init__(self, start: str, prefix: str) -> None:
        parts = urlsplit(start)
        self.origin = (parts.scheme, parts.netloc)
        self.prefix = _prefix_path(prefix) or parts.path[: parts.path.rfind("/") + 1] or "/"
        self.variants: Counter[str] = Counter()

    def covers(self, url: str) -> bool:
        """A page of the section: same origin, under the prefix, not a file."""
        parts = urlsplit(url)
        return (
            (parts.scheme, parts.netloc) == self.origin
            and parts.path.startswith(self.prefix)
            and not is_binary_link(url)
        )

    def follows(self, url: str) -> bool:
        """`covers`, and not one query string too many of one path (counted when followed)."""
        if not self.covers(url):
            return False
        parts = urlsplit(url)
        if parts.query:
            if self.variants[parts.path] >= MAX_QUERY_VARIANTS:
                return False
            self.variants[parts.path] += 1
        return True
