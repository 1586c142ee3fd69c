"""The feed connector (server/sources/connectors/feed.py) against a real HTTP server on 127.0.0.1
(tests/upstream.py) serving real RSS 2.0 and Atom files (tests/fixtures/feeds/), fetched by the
real safe fetcher.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.fetch import FetchPolicy, SafeFetcher
from server.sources.connectors.base import Item, SyncContext, SyncError
from server.sources.connectors.feed import FeedConnector, html_to_markdown
from server.sources.models import Source
from tests.upstream import Upstream

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
RSS = "application/rss+xml"
ATOM = "application/atom+xml"


def feed(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


@pytest.fixture
async def fetcher() -> AsyncIterator[SafeFetcher]:
    async with SafeFetcher(user_agent="Inflow-test/1", defaults=FetchPolicy()) as f:
        yield f


def context(
    fetcher: SafeFetcher,
    url: str,
    tmp_path: Path,
    *,
    validators: dict[str, str] | None = None,
    allowed_hosts: tuple[str, ...] = ("127.0.0.1",),
) -> SyncContext:
    source = Source(id="ledgerly", name="Ledgerly release notes", kind="feed", url=url)
    return SyncContext(
        fetcher=fetcher,
        policy=FetchPolicy(allowed_hosts=allowed_hosts, allow_private=True),
        source=source,
        previous={},
        validators=validators or {},
        work_dir=tmp_path,
    )


async def test_rss_entries_become_items_with_markdown_bodies(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    upstream.set("/releases.rss", feed("vendor-notes.rss"), content_type=RSS)
    listing = await FeedConnector().list(context(fetcher, upstream.url("/releases.rss"), tmp_path))
    assert listing.complete and not listing.not_modified
    items = {e.external_id: e for e in listing.entries if isinstance(e, Item)}
    assert list(items) == ["ledgerly-2024-031", "ledgerly-2024-027", "ledgerly-2024-019"]
    bulk = items["ledgerly-2024-031"]
    assert bulk.title == "Approve invoices in bulk"
    assert bulk.url == "https://ledgerly.example/releases/bulk-approval"
    assert bulk.tags == ("invoices",)
    # the full content (content:encoded) is the body; the description its summary
    assert bulk.summary == "Approvers can now approve up to 50 invoices at once."
    assert "**50 invoices**" in bulk.body and "*Pending*" in bulk.body
    assert "## How to" in bulk.body
    assert "1. Open [Pending invoices](<https://ledgerly.example/invoices?status=pending>)" in (
        bulk.body
    )
    assert "`Approve selected`" in bulk.body
    assert "alert" not in bulk.body  # the feed's script is not content
    # a relative link in an entry is resolved against the feed's address
    credit = items["ledgerly-2024-027"]
    assert f"[credit notes](<{upstream.url('/help/credit-notes')}>)" in credit.body
    assert listing.validators["etag"] and listing.validators["last_modified"]


async def test_atom_entries_and_video_enclosures(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    upstream.set("/updates.atom", feed("product-updates.atom"), content_type=ATOM)
    listing = await FeedConnector().list(context(fetcher, upstream.url("/updates.atom"), tmp_path))
    items = [e for e in listing.entries if isinstance(e, Item)]
    assert [i.title for i in items] == [
        "Swap shifts without a manager",  # an HTML title becomes its text
        "Clocking in from the kiosk (video)",
        "Availability reminders",
    ]
    swap, kiosk, availability = items
    assert swap.type == "" and swap.url == "https://shiftboard.example/updates/shift-swap"
    assert swap.body == (
        "Two colleagues with the same qualification can swap a shift themselves.\n\n"
        "- Open the shift\n- Choose **Offer swap**"
    )
    assert swap.summary == "Two colleagues can swap shifts when both are qualified."
    assert swap.tags == ("scheduling",)
    # a video enclosure, or media:content of a video: a video item at the video's URL
    assert kiosk.type == "video"
    assert kiosk.url == "https://media.shiftboard.example/kiosk-clock-in.mp4"
    assert kiosk.body == "A two-minute video on clocking in at the kiosk with your badge."
    assert availability.type == "video"
    assert availability.url == "https://media.shiftboard.example/availability.webm"
    assert availability.external_id == "urn:uuid:1f0e6f0a-8a59-4a3d-8d1e-6a3c2b1e9f03"


async def test_a_conditional_request_answered_304_is_not_modified(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    upstream.set("/releases.rss", feed("vendor-notes.rss"), content_type=RSS)
    url = upstream.url("/releases.rss")
    first = await FeedConnector().list(context(fetcher, url, tmp_path))
    again = await FeedConnector().list(context(fetcher, url, tmp_path, validators=first.validators))
    assert again.not_modified and again.entries == []
    assert again.validators == first.validators  # kept for the next run
    last = upstream.requests[-1]
    assert last.headers.get("If-None-Match") == first.validators["etag"]
    # changed upstream: read again
    upstream.set("/releases.rss", feed("vendor-notes-next.rss"), content_type=RSS)
    changed = await FeedConnector().list(
        context(fetcher, url, tmp_path, validators=first.validators)
    )
    assert not changed.not_modified
    assert [e.external_id for e in changed.entries] == [
        "ledgerly-2024-040",
        "ledgerly-2024-031",
        "ledgerly-2024-027",
    ]


async def test_a_page_that_is_not_a_feed_fails_the_source(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """A sign-in page served where the feed was (an expired proxy session) must not read as a
    feed without entries: that would archive every aid of the source."""
    upstream.set("/releases.rss", feed("not-a-feed.html"), content_type="text/html")
    with pytest.raises(SyncError) as caught:
        await FeedConnector().list(context(fetcher, upstream.url("/releases.rss"), tmp_path))
    assert "not a feed" in caught.value.reason


async def test_a_feed_cut_off_in_transit_is_an_incomplete_listing(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    """A truncated feed still has its first entries, but what it lost is not gone upstream:
    the listing says it is incomplete (nothing is archived), and the cut entry is no item."""
    upstream.set("/releases.rss", feed("truncated.rss"), content_type=RSS)
    listing = await FeedConnector().list(context(fetcher, upstream.url("/releases.rss"), tmp_path))
    assert not listing.complete
    assert [e.external_id for e in listing.entries] == ["ledgerly-2024-040"]


async def test_http_errors_and_refused_fetches_fail_the_source(
    upstream: Upstream, fetcher: SafeFetcher, tmp_path: Path
) -> None:
    with pytest.raises(SyncError) as missing:
        await FeedConnector().list(context(fetcher, upstream.url("/gone.rss"), tmp_path))
    assert "HTTP 404" in missing.value.reason
    upstream.set("/releases.rss", feed("vendor-notes.rss"), content_type=RSS)
    with pytest.raises(SyncError) as refused:
        await FeedConnector().list(
            context(
                fetcher,
                upstream.url("/releases.rss"),
                tmp_path,
                allowed_hosts=("feeds.ledgerly.example",),
            )
        )
    assert "refused" in refused.value.reason
    assert upstream.hits["/releases.rss"] == 0  # never asked


def test_html_to_markdown_keeps_structure_and_links() -> None:
    html = (
        "<p>Hello <a href='https://x.example/a b'>the <b>docs</b></a> 2*3</p>"
        "<ul><li>one</li><li>two<ul><li>nested</li></ul></li></ul>"
        "<blockquote><p>quoted</p></blockquote><pre>code\n  indented</pre>"
        "<p>line<br>break</p><img src='https://x.example/i.png' alt='diagram'>"
        "<a href='javascript:alert(1)'>bad</a><style>p{}</style>"
    )
    md = html_to_markdown(html)
    assert md.splitlines()[0] == r"Hello [the **docs**](<https://x.example/a%20b>) 2\*3"
    assert "- one\n- two\n\n  - nested" in md
    assert "> quoted" in md
    assert "```\ncode\n  indented\n```" in md
    assert "line\\\nbreak" in md
    assert "[diagram](<https://x.example/i.png>)" in md
    assert "javascript" not in md and "bad" in md
    assert "p{}" not in md
