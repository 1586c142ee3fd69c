"""Sources end to end, in the real Chromium against the real backend (a subprocess) and the real
Keycloak: an admin signs in to the console, adds a feed, a website section and a git repository
through the forms, syncs each with "Sync now" and reads the summary; the panel beside a demo page
shows a source's aid with "From <source>, updated today"; upstream, one entry changes and one
goes away, and the next sync says "1 changed" and "1 removed" and the panel shows the new text.

Upstream is a real HTTP server on 127.0.0.1 (tests/upstream.py) serving a real RSS file, an
intranet section with a sitemap and a real git repository (made with git in the test, served as
files: git's dumb HTTP). The backend may fetch from 127.0.0.1 (INFLOW_FETCH_ALLOW_PRIVATE=1), as
`make run` lets the demo sources do. Screenshots go to test-artifacts/sources/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ROOT, Backend, Browser, launch, own_backend
from tests.test_sources_git import Repo
from tests.upstream import Upstream

pytestmark = [pytest.mark.browser, pytest.mark.keycloak]
ARTIFACTS = ROOT / "test-artifacts" / "sources"
WAIT = 90_000  # ms: a sync on a machine shared with other test runs

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>Expensely release notes</title>
    <link>{base}/expensely/</link>
    <description>What changed in Expensely</description>
    {items}
  </channel>
</rss>
"""
ENTRY = """<item>
      <title>{title}</title>
      <link>{base}/expensely/{slug}</link>
      <guid isPermaLink="false">{slug}</guid>
      <pubDate>{date}</pubDate>
      <description><![CDATA[<p>{text}</p>]]></description>
    </item>"""
ENTRIES = {
    "cards": (
        "Corporate card transactions arrive within an hour",
        "Mon, 09 Nov 2026 08:00:00 GMT",
        "Card transactions now reach your Expensely wallet within an hour of the purchase.",
    ),
    "fx": (
        "Foreign currency receipts show the bank's rate",
        "Mon, 02 Nov 2026 08:00:00 GMT",
        "A receipt in another currency shows the rate your bank charged, not the daily rate.",
    ),
    "pdf": (
        "Print a report as PDF for your records",
        "Mon, 26 Oct 2026 08:00:00 GMT",
        "Any submitted report can be printed as a PDF with its receipts attached.",
    ),
}
CHANGED_FX = "A receipt in another currency now shows both the bank's rate and the daily rate."
FX_AID = "vendor-notes-foreign-currency-receipts-show-the-bank-s-rate"

PAGE = """<!doctype html><html lang="en"><head><title>{title} · Fabrikam intranet</title></head>
<body><header><nav><a href="/">Intranet home</a> <a href="/intranet/">Travel</a></nav></header>
<main><article><h1>{title}</h1>{body}</article></main>
<footer>Fabrikam intranet · travel desk · ext. 4100</footer></body></html>"""
PAGES = {
    "/intranet/rail.html": (
        "Book rail travel",
        "<p>Trains are booked through the travel desk for any trip under four hours. Second class "
        "is the rule; first class is allowed on trips longer than two hours.</p>"
        "<p>Print or download the ticket before you travel; the conductor checks it.</p>",
    ),
    "/intranet/hotels.html": (
        "Hotel rate caps by city",
        "<p>Hotels are booked at or below the city's cap: 180 EUR a night in Paris and London, "
        "140 EUR elsewhere. A higher rate needs your manager's approval before you book.</p>",
    ),
}


def feed(upstream: Upstream, entries: dict[str, tuple[str, str, str]]) -> str:
    base = upstream.url("").rstrip("/")
    items = "\n    ".join(
        ENTRY.format(base=base, slug=slug, title=t, date=d, text=x)
        for slug, (t, d, x) in entries.items()
    )
    return FEED.format(base=base, items=items)


def serve_intranet(upstream: Upstream) -> None:
    for path, (title, body) in PAGES.items():
        upstream.set(path, PAGE.format(title=title, body=body), content_type="text/html")
    urls = "".join(f"<url><loc>{upstream.url(p)}</loc></url>" for p in PAGES)
    upstream.set(
        "/intranet/sitemap.xml",
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>',
        content_type="application/xml",
    )


def make_repository(root: Path, upstream: Upstream) -> str:
    repo = Repo(root / "work", root / "static" / "handbook.git")
    repo.write(
        "docs/expenses/taxi-receipts.md",
        "---\ntitle: Taxi and ride-hailing receipts\napps: [expenses]\n"
        "tags: [taxi, receipt]\n---\nClaim a taxi with the driver's receipt showing the route "
        "and the fare; a ride-hailing app's e-mail receipt is enough.\n",
    )
    repo.write(
        "docs/hr/desk-booking.md",
        "# Book a desk for an office day\n\nDesks are booked in the workplace app up to two "
        "weeks ahead; a booking not checked in by 10:00 is released.\n",
    )
    repo.commit("handbook")
    upstream.serve_dir("/git", root / "static")
    return upstream.url("/git/handbook.git")


@pytest.fixture(scope="module")
def sources_backend(tmp_path_factory: pytest.TempPathFactory, keycloak: Any) -> Iterator[Backend]:
    """A backend of its own (the test adds sources and aids), allowed to fetch from 127.0.0.1
    where the upstream server runs; its scheduler off, so the admin's Sync now is what syncs (a
    new source would otherwise sync by itself two seconds after it is added)."""
    env = {"INFLOW_FETCH_ALLOW_PRIVATE": "1", "INFLOW_JOBS": "0"}
    with own_backend(tmp_path_factory, "inflow-sources-backend", env) as backend:
        yield backend


@pytest.fixture
def browser(chromium: str, sources_backend: Backend, tmp_path: Path) -> Iterator[Browser]:
    with launch(chromium, sources_backend, tmp_path / "profile") as b:
        yield b


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in_to_console(page: Any, base: str) -> None:
    page.goto(f"{base}/admin/sources")
    page.wait_for_selector("#username", timeout=20_000)
    page.fill("#username", "admin")
    page.fill("#password", "admin")
    page.click("#kc-login")
    page.wait_for_url(f"{base}/admin/sources", timeout=20_000)


def add_source(page: Any, base: str, fields: dict[str, str], apps: tuple[str, ...] = ()) -> None:
    """Fill the new-source form as a person would and create it."""
    page.goto(f"{base}/admin/sources")
    page.click("text=New source")
    page.wait_for_url(f"{base}/admin/sources/new")
    for name, value in fields.items():
        if page.locator(f'select[name="{name}"]').count():
            page.select_option(f'select[name="{name}"]', value)
        else:
            page.fill(f'input[name="{name}"]', value)
    for app in apps:
        page.check(f'input[name="apps"][value="{app}"]')
    page.select_option('select[name="publish"]', "auto")
    shot(page, f"new-{fields['kind']}-source-form")
    page.click("#source-form button[type=submit]")
    page.wait_for_url(f"{base}/admin/sources/{fields['id']}?notice=created")
    assert "never synced" in page.inner_text("#source-status")


def sync_now(page: Any, summary: str) -> str:
    """Press Sync now and wait (the page follows the run by itself) for the summary."""
    page.click("#sync-now button")
    page.wait_for_selector(f"#last-summary:has-text('{summary}')", timeout=WAIT)
    return str(page.inner_text("#last-summary"))


def open_in_panel(panel: Any, browser: Browser, query: str, aid_id: str) -> None:
    panel.fill("#q", query)
    browser.state(panel, "search")
    panel.wait_for_selector(f'#results .card[data-aid="{aid_id}"]', timeout=20_000)
    panel.click(f'#results .card[data-aid="{aid_id}"]')
    browser.state(panel, "aid")


def test_admin_adds_each_kind_syncs_and_the_panel_shows_where_aids_come_from(
    browser: Browser, sources_backend: Backend, upstream: Upstream, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = sources_backend.url
    upstream.set("/expensely/releases.rss", feed(upstream, ENTRIES), content_type="text/xml")
    serve_intranet(upstream)
    git_url = make_repository(tmp_path, upstream)

    console = browser.context.new_page()
    console.set_viewport_size({"width": 1280, "height": 900})
    sign_in_to_console(console, base)
    assert "No sources yet" in console.inner_text("#sources")
    shot(console, "00-no-sources")

    # A feed: the vendor's release notes, for the expenses app.
    add_source(
        console,
        base,
        {
            "id": "vendor-notes",
            "name": "Expensely release notes",
            "kind": "feed",
            "url": upstream.url("/expensely/releases.rss"),
        },
        apps=("expenses",),
    )
    shot(console, "01-feed-created")
    assert "3 added, 0 changed, 0 unchanged, 0 removed, 0 failed" in sync_now(console, "3 added")
    assert console.locator(f'#items a[href="/admin/aids/{FX_AID}"]').count() == 1
    shot(console, "02-feed-synced")

    # A website section, by its sitemap.
    add_source(
        console,
        base,
        {
            "id": "travel-desk",
            "name": "Intranet · Travel desk",
            "kind": "website",
            "url": upstream.url("/intranet/sitemap.xml"),
            "mode": "sitemap",
        },
        apps=("expenses",),
    )
    assert "2 added" in sync_now(console, "2 added")
    shot(console, "03-website-synced")

    # A git repository of Markdown.
    add_source(
        console,
        base,
        {
            "id": "handbook",
            "name": "Fabrikam handbook",
            "kind": "git",
            "url": git_url,
            "ref": "main",
            "path": "docs",
        },
    )
    assert "2 added" in sync_now(console, "2 added")
    shot(console, "04-git-synced")

    console.goto(f"{base}/admin/sources")
    for source_id in ("vendor-notes", "travel-desk", "handbook"):
        assert "up to date" in console.inner_text(f"#source-{source_id}")
    shot(console, "05-sources-list")

    # The aid editor says where a source's aid is changed.
    console.goto(f"{base}/admin/aids/{FX_AID}")
    assert "From Expensely release notes: change it there" in console.inner_text("#from-source")
    assert console.locator('input[name="title"][readonly]').count() == 1
    shot(console, "06-source-owned-aid")

    # The panel beside a demo page: the aid with where it comes from.
    browser.open_demo("/demo/expenses/#/reports")
    panel = browser.open_panel()
    browser.sign_in(panel, ("admin", "admin"))
    browser.state(panel, "ready")
    open_in_panel(panel, browser, "foreign currency bank rate", FX_AID)
    provenance = panel.wait_for_selector("#provenance", timeout=10_000)
    assert provenance.inner_text() == "From Expensely release notes, updated today"
    link = panel.locator("#provenance-link")
    assert link.get_attribute("href") == upstream.url("/expensely/fx")
    assert "the rate your bank charged" in panel.inner_text("#aid-body")
    shot(panel, "07-panel-provenance")

    # Upstream: one entry changed, one gone. The next sync says so, the panel shows the change.
    changed = {
        "cards": ENTRIES["cards"],
        "fx": (ENTRIES["fx"][0], ENTRIES["fx"][1], CHANGED_FX),
    }
    upstream.set("/expensely/releases.rss", feed(upstream, changed), content_type="text/xml")
    console.goto(f"{base}/admin/sources/vendor-notes")
    summary = sync_now(console, "1 changed")
    assert summary == "0 added, 1 changed, 1 unchanged, 1 removed, 0 failed"
    assert "gone from the source" in console.inner_text("#items")
    shot(console, "08-feed-changed-and-removed")

    panel.click("#back")
    browser.state(panel, "search")
    panel.fill("#q", "")
    browser.state(panel, "ready")
    open_in_panel(panel, browser, "foreign currency bank rate", FX_AID)
    panel.wait_for_selector("#aid-body:has-text('both the bank')", timeout=10_000)
    shot(panel, "09-panel-after-change")
