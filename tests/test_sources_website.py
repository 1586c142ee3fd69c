"""The website connector against a real intranet: pages with navigation, headers, footers and
cookie banners served by the upstream fixture (a real aiohttp server on 127.0.0.1), fetched by the
real SafeFetcher. The content is a logistics company's handbook, not the demo's."""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.fetch import FetchPolicy, SafeFetcher
from server.models import validate
from server.settings import Settings
from server.sources.connectors import CONNECTORS
from server.sources.connectors.base import (
    Failed,
    Item,
    Listing,
    SyncContext,
    SyncError,
    Unchanged,
)
from server.sources.connectors.website import WebsiteConnector
from server.sources.connectors.website_extract import (
    canonical,
    parse_sitemap,
    read_page,
    tidy_markdown,
)
from server.sources.models import Source, SourceItem
from tests.upstream import Upstream

SITE = Path(__file__).parent / "fixtures" / "site"
PAGES = {
    "/handbook/": "index.html",
    "/handbook/book-freight-slot.html": "book-freight-slot.html",
    "/handbook/damaged-pallet.html": "damaged-pallet.html",
    "/handbook/forklift-licence.html": "forklift-licence.html",
    "/handbook/training/yard-map.html": "yard-map.html",
    "/news/": "news.html",
}
ARTICLES = (
    "/handbook/book-freight-slot.html",
    "/handbook/damaged-pallet.html",
    "/handbook/forklift-licence.html",
)


def serve_site(upstream: Upstream) -> None:
    for path, name in PAGES.items():
        upstream.set(path, (SITE / name).read_bytes())


def sitemap(upstream: Upstream, paths: Iterable[str], lastmod: str = "") -> str:
    rows = "".join(
        f"<url><loc>{upstream.url(path)}</loc>"
        + (f"<lastmod>{lastmod}</lastmod>" if lastmod else "")
        + "</url>"
        for path in paths
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{rows}</urlset>'
    )


def website(url: str, **fields: object) -> Source:
    data = {"id": "handbook", "name": "Tidewater handbook", "kind": "website", "url": url}
    return validate(Source, {**data, **fields})


@pytest.fixture
async def fetcher() -> AsyncIterator[SafeFetcher]:
    defaults = FetchPolicy(allow_private=True, timeout=10.0)
    async with SafeFetcher(user_agent="Inflow/1 (+http://inflow.test)", defaults=defaults) as f:
        yield f


async def read(
    fetcher: SafeFetcher,
    source: Source,
    tmp_path: Path,
    previous: Iterable[SourceItem] = (),
    progress: list[tuple[int, int, str]] | None = None,
) -> Listing:
    ctx = SyncContext(
        fetcher=fetcher,
        policy=fetcher.policy(allowed_hosts=source.hosts()),
        source=source,
        previous={item.external_id: item for item in previous},
        validators={},
        work_dir=tmp_path,
        on_progress=(lambda *args: progress.append(args)) if progress is not None else None,
    )
    return await CONNECTORS["website"].list(ctx)


def items(listing: Listing) -> dict[str, Item]:
    return {e.external_id: e for e in listing.entries if isinstance(e, Item)}


def of(listing: Listing, kind: type) -> set[str]:
    return {e.external_id for e in listing.entries if isinstance(e, kind)}


def remembered(listing: Listing, fetched_at: str = "") -> list[SourceItem]:
    """What the sync engine keeps of a listing's items for the next run."""
    stamp = fetched_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return [
        SourceItem(
            source_id="handbook",
            external_id=item.external_id,
            url=item.url,
            aid_id="handbook-" + item.external_id.rsplit("/", 1)[-1].removesuffix(".html"),
            etag=item.etag,
            last_modified=item.last_modified,
            fetched_at=stamp,
        )
        for item in items(listing).values()
    ]


# -- extraction ------------------------------------------------------------------------------------


async def test_main_text_keeps_the_article_and_its_links_and_drops_the_navigation(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """An intranet page is mostly menus, a cookie banner and a footer; the aid must be the
    article: its steps, its links (relative ones made absolute), its title and description."""
    serve_site(upstream)
    upstream.set("/sitemap.xml", sitemap(upstream, ARTICLES), content_type="application/xml")
    listing = await read(fetcher, website(upstream.url("/sitemap.xml")), tmp_path)

    assert listing.complete
    got = items(listing)
    assert set(got) == {upstream.url(path) for path in ARTICLES}
    slot = got[upstream.url("/handbook/book-freight-slot.html")]
    assert slot.title == "Book a freight slot"  # <title> without the site's name
    assert slot.url == slot.external_id
    assert slot.summary == (
        "Reserve a loading dock slot in the Dockyard planner before a truck arrives."
    )
    assert "Every inbound truck needs a loading dock slot" in slot.body
    assert "1. Open the Dockyard planner" in slot.body
    assert "Press **Reserve**" in slot.body
    assert (
        "[hazardous goods dock rules](https://safety.tidewater.example/hazmat-docks)" in slot.body
    )
    assert "## Steps" in slot.body
    assert not slot.body.startswith("# ")  # the title is the aid's, not repeated in its body
    assert "Renew a forklift licence" not in slot.body  # the sidebar
    for chrome in ("Canteen menu", "People directory", "cookies", "All rights reserved", "Imprint"):
        assert chrome not in slot.body, chrome
    assert slot.etag and slot.last_modified  # kept for the next conditional GET

    pallet = got[upstream.url("/handbook/damaged-pallet.html")]
    assert pallet.title == "Report a damaged pallet"  # from <h1>: its <title> is the site's name
    link = upstream.url("/handbook/book-freight-slot.html")
    assert f"[how to book a freight slot]({link})" in pallet.body
    assert "This site uses cookies" not in pallet.body
    assert "Privacy" not in pallet.body


def test_a_page_without_main_text_gives_no_body_and_its_links() -> None:
    """A page that is only menus must not become an aid made of its menu."""
    html = (SITE / "index.html").read_bytes()
    page = read_page(html, "http://intranet.test/handbook/", "text/html; charset=utf-8")
    assert page.body == ""
    assert "http://intranet.test/handbook/book-freight-slot.html" in page.links
    assert "http://intranet.test/handbook/damaged-pallet.html" in page.links  # no #fragment
    # the tracking parameter is dropped: the link is the page itself
    assert "http://intranet.test/handbook/forklift-licence.html" in page.links


def test_markdown_is_tidied_but_code_is_left_alone() -> None:
    """Source line breaks inside a paragraph or a list item are joined (an HTML re-indent must
    not look like a changed page), stray control bytes go, code blocks stay byte for byte."""
    raw = (
        "# Dock rules\n\nTrucks wait\n        at the gate\x00 until called.\n\n"
        "1. Check the seal\n   and the plate.\n2. Sign.\n\n"
        "```\nif seal:\n    open()\n```\n\n\n\n| Dock | Use |\n|---|---|\n| 7 | Hazmat |"
    )
    assert tidy_markdown(raw, "Dock rules") == (
        "Trucks wait at the gate until called.\n\n"
        "1. Check the seal and the plate.\n2. Sign.\n\n"
        "```\nif seal:\n    open()\n```\n\n| Dock | Use |\n|---|---|\n| 7 | Hazmat |"
    )
    assert tidy_markdown(raw, "Other title").startswith("# Dock rules\n\nTrucks wait")


def test_canonical_urls() -> None:
    assert canonical("HTTP://Intranet.Test:80/a/./b/../c.html?utm_source=x&b=2&a=1#top") == (
        "http://intranet.test/a/c.html?a=1&b=2"
    )
    assert canonical("https://intranet.test") == "https://intranet.test/"
    assert canonical("https://intranet.test:8443/a b") == "https://intranet.test:8443/a%20b"
    assert canonical("mailto:someone@intranet.test") is None
    assert canonical("javascript:void(0)") is None


def test_a_gzipped_sitemap_that_unpacks_too_big_is_refused() -> None:
    """A gzip bomb posing as a sitemap must not be unpacked into memory."""
    bomb = gzip.compress(b"<urlset>" + b" " * 2_000_000 + b"</urlset>")
    with pytest.raises(ValueError, match="unpacks to more than"):
        parse_sitemap(bomb, max_bytes=100_000)


def test_a_sitemap_with_entities_is_not_expanded() -> None:
    """An XML entity expansion (billion laughs) in a sitemap must not be expanded."""
    doc = (
        b'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY a "http://intranet.test/x">]>'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>&a;</loc></url><url><loc>http://intranet.test/y</loc></url></urlset>"
    )
    parsed = parse_sitemap(doc, max_bytes=100_000)
    assert [e.loc for e in parsed.entries] == ["http://intranet.test/y"]


# -- sitemap mode ----------------------------------------------------------------------------------


async def test_sitemap_index_gzip_hosts_and_prefix(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """A sitemap index with a gzipped sitemap and a plain one: pages on a host the source does
    not allow and pages outside the prefix are left out, and never fetched."""
    serve_site(upstream)
    first = sitemap(upstream, ["/handbook/book-freight-slot.html", "/news/"])
    other_host = f"<url><loc>{upstream.url('/handbook/yard.html', host='localhost')}</loc></url>"
    second = sitemap(upstream, ["/handbook/damaged-pallet.html"]).replace(
        "</urlset>", other_host + "</urlset>"
    )
    upstream.set(
        "/sitemaps/a.xml.gz", gzip.compress(first.encode()), content_type="application/gzip"
    )
    upstream.set("/sitemaps/b.xml", second, content_type="text/xml")
    index = (
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{upstream.url('/sitemaps/a.xml.gz')}</loc></sitemap>"
        f"<sitemap><loc>{upstream.url('/sitemaps/b.xml')}</loc></sitemap>"
        "</sitemapindex>"
    )
    upstream.set("/sitemap.xml", index, content_type="application/xml")
    source = website(upstream.url("/sitemap.xml"), path_prefix="/handbook/")

    listing = await read(fetcher, source, tmp_path)

    assert listing.complete
    assert set(items(listing)) == {
        upstream.url("/handbook/book-freight-slot.html"),
        upstream.url("/handbook/damaged-pallet.html"),
    }
    assert upstream.hits["/news/"] == 0
    assert upstream.hits["/handbook/yard.html"] == 0


async def test_lastmod_older_than_the_last_read_skips_the_fetch(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """A sitemap whose <lastmod> says a page has not changed since we read it: not fetched."""
    serve_site(upstream)
    paths = ["/handbook/book-freight-slot.html", "/handbook/damaged-pallet.html"]
    upstream.set("/sitemap.xml", sitemap(upstream, paths), content_type="application/xml")
    source = website(upstream.url("/sitemap.xml"))
    first = await read(fetcher, source, tmp_path)
    assert len(items(first)) == 2

    ten_days_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).isoformat(timespec="seconds")
    upstream.set("/sitemap.xml", sitemap(upstream, paths, lastmod=ten_days_ago))
    upstream.reset_counts()
    second = await read(fetcher, source, tmp_path, previous=remembered(first))

    assert of(second, Unchanged) == {upstream.url(p) for p in paths}
    assert all(upstream.hits[p] == 0 for p in paths)

    # changed today (a date alone is the end of that day): read again
    today = dt.datetime.now(dt.UTC).date().isoformat()
    upstream.set("/sitemap.xml", sitemap(upstream, paths, lastmod=today))
    third = await read(fetcher, source, tmp_path, previous=remembered(first))
    assert all(upstream.hits[p] == 1 for p in paths)
    assert of(third, Unchanged) == {upstream.url(p) for p in paths}  # by 304


async def test_sitemap_page_cap_gives_an_incomplete_listing(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """More pages than the cap: the listing says it is incomplete, so nothing missing is
    archived."""
    serve_site(upstream)
    upstream.set("/sitemap.xml", sitemap(upstream, ARTICLES), content_type="application/xml")
    listing = await read(fetcher, website(upstream.url("/sitemap.xml"), page_cap=2), tmp_path)
    assert not listing.complete
    assert len(listing.entries) == 2
    assert upstream.hits["/handbook/forklift-licence.html"] == 0


async def test_a_broken_sitemap_fails_the_run(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """A sitemap that answers 500 or is not a sitemap fails the whole run: an empty listing would
    archive every aid of the source."""
    upstream.set("/sitemap.xml", "oops", status=500)
    with pytest.raises(SyncError, match="HTTP 500"):
        await read(fetcher, website(upstream.url("/sitemap.xml")), tmp_path)
    upstream.set("/sitemap.xml", "<html><body>Not here</body></html>", content_type="text/xml")
    with pytest.raises(SyncError, match="not a sitemap"):
        await read(fetcher, website(upstream.url("/sitemap.xml")), tmp_path)


# -- crawl mode ------------------------------------------------------------------------------------


async def test_crawl_follows_links_under_the_prefix(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """From the handbook's start page, breadth first: pages under /handbook/ become aids (a
    page linked with a #fragment or a tracking parameter is read once, and its print copy, which
    names it as canonical, is no second aid); the news, the PDF form and the index page itself
    (only links) do not."""
    serve_site(upstream)
    upstream.set("/handbook/forms/licence-renewal.pdf", b"%PDF-1.4", content_type="application/pdf")
    progress: list[tuple[int, int, str]] = []
    listing = await read(
        fetcher, website(upstream.url("/handbook/"), mode="crawl"), tmp_path, progress=progress
    )

    assert listing.complete
    assert of(listing, Failed) == set()
    got = items(listing)
    assert set(got) == {
        upstream.url("/handbook/book-freight-slot.html"),
        upstream.url("/handbook/damaged-pallet.html"),
        upstream.url("/handbook/forklift-licence.html"),
        upstream.url("/handbook/training/yard-map.html"),
    }
    licence = got[upstream.url("/handbook/forklift-licence.html")]
    assert licence.title == "Renew a forklift licence"
    assert "[renewal form](" + upstream.url("/handbook/forms/licence-renewal.pdf") in licence.body
    assert upstream.hits["/news/"] == 0
    assert upstream.hits["/handbook/forms/licence-renewal.pdf"] == 0
    assert upstream.hits["/handbook/damaged-pallet.html"] == 1
    assert upstream.hits["/handbook/forklift-licence.html"] == 2  # itself and ?print=1
    # breadth first: the index's pages before the page only the licence page links to
    order = [s.path_qs for s in upstream.requests if s.path_qs.startswith("/handbook/")]
    assert order.index("/handbook/training/yard-map.html") > order.index(
        "/handbook/damaged-pallet.html"
    )
    assert progress and progress[-1][0] == progress[-1][1]


async def test_crawl_prefix_is_respected(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """A start page above the section and a narrower prefix: only pages under the prefix."""
    serve_site(upstream)
    source = website(upstream.url("/handbook/"), mode="crawl", path_prefix="/handbook/training/")
    upstream.set(
        "/handbook/",
        (SITE / "index.html")
        .read_text()
        .replace("</ul>", '<li><a href="training/yard-map.html">Yard</a></li></ul>', 1),
    )
    listing = await read(fetcher, source, tmp_path)
    assert set(items(listing)) == {upstream.url("/handbook/training/yard-map.html")}
    assert upstream.hits["/handbook/book-freight-slot.html"] == 0


async def test_crawl_page_cap_gives_an_incomplete_listing(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    serve_site(upstream)
    listing = await read(
        fetcher, website(upstream.url("/handbook/"), mode="crawl", page_cap=3), tmp_path
    )
    assert not listing.complete
    assert len(upstream.requests) - upstream.hits["/robots.txt"] == 3
    assert len(items(listing)) == 2  # the index page counts, it is read too


async def test_robots_disallow_skips_the_page(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """The intranet's robots.txt keeps crawlers out of a page: it is not fetched, not an aid,
    and not a failure either."""
    serve_site(upstream)
    upstream.set(
        "/robots.txt",
        "User-agent: *\nDisallow: /handbook/damaged-pallet.html\n",
        content_type="text/plain",
    )
    listing = await read(fetcher, website(upstream.url("/handbook/"), mode="crawl"), tmp_path)
    assert upstream.url("/handbook/damaged-pallet.html") not in items(listing)
    assert of(listing, Failed) == set()
    assert upstream.hits["/handbook/damaged-pallet.html"] == 0
    assert upstream.url("/handbook/book-freight-slot.html") in items(listing)


async def test_robots_disallowing_the_start_page_fails_the_run(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    serve_site(upstream)
    upstream.set("/robots.txt", "User-agent: Inflow\nDisallow: /\n", content_type="text/plain")
    with pytest.raises(SyncError, match=r"robots\.txt"):
        await read(fetcher, website(upstream.url("/handbook/"), mode="crawl"), tmp_path)
    assert upstream.hits["/handbook/"] == 0


# -- incremental -----------------------------------------------------------------------------------


async def test_unchanged_pages_answer_304_and_a_changed_one_is_read_again(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """The second crawl asks with each page's ETag: unchanged pages are Unchanged (304, no body),
    a changed page is read again, and a page reached only through an unchanged page (which gave
    no links this time) is still visited."""
    serve_site(upstream)
    source = website(upstream.url("/handbook/"), mode="crawl")
    first = await read(fetcher, source, tmp_path)
    assert len(items(first)) == 4

    changed = (SITE / "damaged-pallet.html").read_text().replace("two working days", "one day")
    upstream.set("/handbook/damaged-pallet.html", changed)
    upstream.reset_counts()
    second = await read(fetcher, source, tmp_path, previous=remembered(first))

    assert second.complete
    assert set(items(second)) == {upstream.url("/handbook/damaged-pallet.html")}
    assert "one day" in items(second)[upstream.url("/handbook/damaged-pallet.html")].body
    assert of(second, Unchanged) == {
        upstream.url("/handbook/book-freight-slot.html"),
        upstream.url("/handbook/forklift-licence.html"),
        upstream.url("/handbook/training/yard-map.html"),  # linked only from the 304 licence page
    }
    asked = [s for s in upstream.requests if s.path_qs == "/handbook/book-freight-slot.html"]
    assert asked and asked[0].headers.get("If-None-Match")


async def test_a_page_removed_upstream_leaves_the_crawl(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """A page gone (404) and no longer linked is left out of the listing, so its aid is
    archived; it is not reported as a failure. Once removed, it is not asked for again."""
    serve_site(upstream)
    source = website(upstream.url("/handbook/"), mode="crawl")
    first = await read(fetcher, source, tmp_path)
    yard = upstream.url("/handbook/training/yard-map.html")
    upstream.remove("/handbook/training/yard-map.html")
    yard_link = '<a href="/handbook/training/yard-map.html">Map of the training yard</a>'
    licence = (SITE / "forklift-licence.html").read_text().replace(yard_link, "")
    upstream.set("/handbook/forklift-licence.html", licence)
    known = remembered(first)
    second = await read(fetcher, source, tmp_path, previous=known)
    assert yard not in {e.external_id for e in second.entries}
    assert of(second, Failed) == set()
    assert second.complete
    assert upstream.hits["/handbook/training/yard-map.html"] == 2  # read, then found gone

    gone = [replace(i, state="removed") if i.external_id == yard else i for i in known]
    await read(fetcher, source, tmp_path, previous=gone)
    assert upstream.hits["/handbook/training/yard-map.html"] == 2


# -- failures --------------------------------------------------------------------------------------


async def test_a_failing_page_is_failed_with_its_reason_and_the_others_are_read(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """One page answering 500, one PDF and one page with nothing but menus: each is Failed with
    a reason the admin can act on; the rest of the section syncs."""
    serve_site(upstream)
    upstream.set("/handbook/broken.html", "Internal error", status=500)
    upstream.set("/handbook/form.pdf", b"%PDF-1.4", content_type="application/pdf")
    upstream.set("/handbook/empty.html", (SITE / "index.html").read_bytes())  # only menus
    paths = [*ARTICLES, "/handbook/broken.html", "/handbook/form.pdf", "/handbook/empty.html"]
    upstream.set("/sitemap.xml", sitemap(upstream, paths), content_type="application/xml")

    listing = await read(fetcher, website(upstream.url("/sitemap.xml")), tmp_path)

    assert set(items(listing)) == {upstream.url(p) for p in ARTICLES}
    reasons = {e.external_id: e.reason for e in listing.entries if isinstance(e, Failed)}
    assert reasons == {
        upstream.url("/handbook/broken.html"): "HTTP 500",
        upstream.url("/handbook/form.pdf"): "not an HTML page (application/pdf)",
        upstream.url("/handbook/empty.html"): "nothing to extract: the page has no main text",
    }


async def test_a_redirect_off_the_allowed_hosts_is_refused(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """A page that redirects to a host the source does not allow (the same server by another
    name here) is Failed as refused, and the other host is never asked."""
    serve_site(upstream)
    elsewhere = upstream.url("/elsewhere.html", host="localhost")
    upstream.set("/handbook/moved.html", status=302, headers={"Location": elsewhere})
    upstream.set("/elsewhere.html", (SITE / "news.html").read_bytes())
    paths = ["/handbook/book-freight-slot.html", "/handbook/moved.html"]
    upstream.set("/sitemap.xml", sitemap(upstream, paths), content_type="application/xml")

    listing = await read(fetcher, website(upstream.url("/sitemap.xml")), tmp_path)

    assert set(items(listing)) == {upstream.url("/handbook/book-freight-slot.html")}
    [failed] = [e for e in listing.entries if isinstance(e, Failed)]
    assert failed.external_id == upstream.url("/handbook/moved.html")
    assert failed.reason.startswith("refused: ")
    assert "localhost" in failed.reason
    assert upstream.hits["/elsewhere.html"] == 0


async def test_noindex_nofollow_and_crawl_delay_are_obeyed(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """A page that asks not to be indexed is no aid (and no failure); a page that asks not to be
    followed leads nowhere; a robots.txt Crawl-delay makes the crawl read one page at a time."""
    serve_site(upstream)
    upstream.set("/robots.txt", "User-agent: *\nCrawl-delay: 1\n", content_type="text/plain")
    quiet = '<meta name="robots" content="noindex, nofollow">'
    licence = (SITE / "forklift-licence.html").read_text().replace("<head>", "<head>" + quiet)
    upstream.set("/handbook/forklift-licence.html", licence)
    upstream.set(
        "/handbook/damaged-pallet.html",
        (SITE / "damaged-pallet.html").read_bytes(),
        headers={"X-Robots-Tag": "noindex"},
    )
    listing = await read(fetcher, website(upstream.url("/handbook/"), mode="crawl"), tmp_path)
    assert set(items(listing)) == {upstream.url("/handbook/book-freight-slot.html")}
    assert of(listing, Failed) == set()
    assert upstream.hits["/handbook/training/yard-map.html"] == 0  # only the licence links to it
    assert upstream.active_max == 1


async def test_a_plain_text_sitemap(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    serve_site(upstream)
    lines = "\n".join(upstream.url(path) for path in ARTICLES[:2])
    upstream.set("/sitemap.txt", lines + "\n", content_type="text/plain")
    listing = await read(fetcher, website(upstream.url("/sitemap.txt")), tmp_path)
    assert set(items(listing)) == {upstream.url(path) for path in ARTICLES[:2]}


async def test_a_site_naming_one_page_canonical_everywhere_keeps_its_pages(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """Some sites put the home page in every page's rel=canonical: the pages are not copies
    then, and each stays an aid (a print copy's canonical is honoured: test above)."""
    serve_site(upstream)
    home = f'<link rel="canonical" href="{upstream.url("/handbook/book-freight-slot.html")}">'
    paths = []
    for n in range(6):
        page = (SITE / "damaged-pallet.html").read_text()
        page = page.replace("<head>", "<head>" + home).replace("pallet", f"pallet {n}")
        upstream.set(f"/handbook/pallet-{n}.html", page)
        paths.append(f"/handbook/pallet-{n}.html")
    paths.append("/handbook/book-freight-slot.html")
    upstream.set("/sitemap.xml", sitemap(upstream, paths), content_type="application/xml")
    listing = await read(fetcher, website(upstream.url("/sitemap.xml")), tmp_path)
    assert set(items(listing)) == {upstream.url(p) for p in paths}


async def test_the_connector_is_registered() -> None:
    assert isinstance(CONNECTORS["website"], WebsiteConnector)


# -- a whole sync ----------------------------------------------------------------------------------


async def test_a_website_source_syncs_into_aids_with_provenance(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    admin: dict[str, str],
    learner: dict[str, str],
    upstream: Upstream,
) -> None:
    """An admin adds the handbook section as a crawled source and syncs it: each page becomes a
    published aid with the page's text and its provenance; at the next sync a page edited on the
    intranet is rewritten, a page taken down is archived and the others are unchanged."""
    serve_site(upstream)
    client: TestClient = await aiohttp_client(
        create_app(make_settings(fetch_allow_private=True, jobs=False))
    )
    body = {
        "id": "tidewater",
        "name": "Tidewater handbook",
        "kind": "website",
        "url": upstream.url("/handbook/"),
        "mode": "crawl",
        "publish": "auto",
        "tags": ["warehouse"],
    }
    resp = await client.post("/api/v1/admin/sources", json=body, headers=admin)
    assert resp.status == 201, await resp.text()

    async def sync() -> dict[str, Any]:
        resp = await client.post("/api/v1/admin/sources/tidewater/sync", headers=admin)
        assert resp.status == 202, await resp.text()
        run_id = (await resp.json())["run"]["id"]
        await client.server.app[keys.SOURCES].wait("tidewater")
        resp = await client.get(f"/api/v1/admin/sources/tidewater/runs/{run_id}", headers=admin)
        run: dict[str, Any] = await resp.json()
        return run

    run = await sync()
    assert (run["status"], run["added"], run["failed"]) == ("ok", 4, 0), run
    resp = await client.get("/api/v1/admin/sources/tidewater/items", headers=admin)
    made = {i["external_id"]: i["aid_id"] for i in (await resp.json())["items"]}
    slot_id = made[upstream.url("/handbook/book-freight-slot.html")]
    pallet_id = made[upstream.url("/handbook/damaged-pallet.html")]
    yard_id = made[upstream.url("/handbook/training/yard-map.html")]

    aid = await (await client.get(f"/api/v1/admin/aids/{slot_id}", headers=admin)).json()
    assert aid["title"] == "Book a freight slot"
    assert aid["origin"] == "tidewater" and aid["status"] == "published"
    assert aid["source"] == upstream.url("/handbook/book-freight-slot.html")
    assert "warehouse" in aid["tags"]
    assert "Every inbound truck needs a loading dock slot" in aid["body"]
    assert "Canteen menu" not in aid["body"]
    seen = await (await client.get(f"/api/v1/aids/{slot_id}", headers=learner)).json()
    assert seen["provenance"]["source_id"] == "tidewater"
    assert seen["provenance"]["kind"] == "website"

    changed = (SITE / "damaged-pallet.html").read_text().replace("two working days", "one day")
    upstream.set("/handbook/damaged-pallet.html", changed)
    upstream.remove("/handbook/training/yard-map.html")
    yard_link = '<a href="/handbook/training/yard-map.html">Map of the training yard</a>'
    licence = (SITE / "forklift-licence.html").read_text().replace(yard_link, "")
    upstream.set("/handbook/forklift-licence.html", licence)
    run = await sync()
    # changed: the pallet page, and the licence page lost a link
    assert (run["added"], run["changed"], run["removed"], run["failed"]) == (0, 2, 1, 0), run
    assert run["unchanged"] == 1
    pallet = await (await client.get(f"/api/v1/admin/aids/{pallet_id}", headers=admin)).json()
    assert "one day" in pallet["body"]
    yard = await (await client.get(f"/api/v1/admin/aids/{yard_id}", headers=admin)).json()
    assert yard["status"] == "archived"
