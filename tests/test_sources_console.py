"""Sources in the console (/admin/sources, server/console/sources.py): an admin adds a source with
the form, syncs it with "Sync now", follows the run and reads its summary, opens the aids it
made; the form's refusals name the field; a source-owned aid's editor says where to change it.

Real parts: the console with sessions made from forged tokens (tests/test_admin_console.py), the
sync against the real upstream server serving real RSS files (tests/upstream.py), a real
database and index. Ledgerly's library (tests/test_sources_sync.py), not the demo's.
"""

from __future__ import annotations

import html as htmllib
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.console.sources import progress_line
from server.settings import Settings
from server.sources.models import Source
from server.sources.service import SourceService
from tests.test_admin_console import sign_in
from tests.test_sources_sync import FEED_PATH, RSS, feed, ledgerly_settings, serve  # noqa: F401
from tests.tokens import TokenMaker
from tests.upstream import Upstream

BULK = "vendor-approve-invoices-in-bulk"


@pytest.fixture
async def cc(aiohttp_client: Any, ledgerly_settings: Settings) -> TestClient:  # noqa: F811
    return await aiohttp_client(create_app(ledgerly_settings))


@pytest.fixture
async def admin_csrf(cc: TestClient, tokens: TokenMaker) -> str:
    return await sign_in(cc, tokens.token(sub="admin-1", roles=("learner", "admin")))


def service(client: TestClient) -> SourceService:
    return client.server.app[keys.SOURCES]


def section(html: str, element_id: str) -> str:
    """The HTML of the element with this id, up to its closing tag's kind."""
    found = re.search(rf'<(\w+)[^>]*id="{element_id}".*?</\1>', html, re.S)
    assert found, f"no #{element_id}"
    return found.group(0)


def words(html: str) -> str:
    """The text a person reads (tags out, entities decoded, spaces folded)."""
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def page(client: TestClient, path: str, status: int = 200) -> str:
    resp = await client.get(path)
    body = await resp.text()
    assert resp.status == status, body[:800]
    return body


def feed_form(upstream: Upstream, csrf: str, **changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "csrf_token": csrf,
        "id": "vendor",
        "name": "Ledgerly release notes",
        "kind": "feed",
        "url": upstream.url(FEED_PATH),
        "apps": "ledgerly",
        "tags": "release-notes, ledgerly",
        "audience": "",
        "owner": "finance-ops@ledgerly.example",
        "aid_type": "faq",
        "publish": "auto",
        "on_remove": "archive",
        "interval_minutes": "360",
        "active": "1",
        # a website's fields left as the form shows them: ignored for a feed
        "mode": "sitemap",
        "path_prefix": "",
        "page_cap": "200",
        "ref": "main",
        "path": "",
        "allowed_hosts": "",
    }
    form.update(changes)
    return form


async def sync_now(client: TestClient, csrf: str, source_id: str = "vendor") -> None:
    """Press Sync now on the source's page and wait for the run to end."""
    resp = await client.post(
        f"/admin/sources/{source_id}/sync", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == f"/admin/sources/{source_id}?notice=sync-started"
    await service(client).wait(source_id)


async def test_add_a_feed_sync_it_and_read_what_changed(
    cc: TestClient, admin_csrf: str, upstream: Upstream
) -> None:
    serve(upstream, "vendor-notes.rss")
    # the nav leads to the list; the list offers a new source
    assert 'href="/admin/sources"' in await page(cc, "/admin")
    listing = await page(cc, "/admin/sources")
    assert "No sources yet" in listing and 'href="/admin/sources/new"' in listing
    form = await page(cc, "/admin/sources/new")
    # fields and limits from the declaration; a kind's own fields say so
    assert 'name="interval_minutes" type="number" value="360" min="15" max="10080"' in form
    assert "Only for website section sources" in words(section(form, "path_prefix-hint"))
    assert '<option value="git"' in form

    resp = await cc.post(
        "/admin/sources/new", data=feed_form(upstream, admin_csrf), allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/admin/sources/vendor?notice=created"
    row = words(section(await page(cc, "/admin/sources"), "source-vendor"))
    assert "Ledgerly release notes" in row and "never synced" in row and "RSS or Atom feed" in row

    await sync_now(cc, admin_csrf)
    html = await page(cc, "/admin/sources/vendor?notice=sync-started")
    assert 'http-equiv="refresh"' not in html  # it refreshes itself only while a run goes
    assert "Sync started" not in html  # the run is over: its summary says how it went
    assert "3 added, 0 changed, 0 unchanged, 0 removed, 0 failed" in words(
        section(html, "last-sync")
    )
    runs = words(section(html, "runs"))
    assert "Sync now (admin-1)" in runs and "3 added" in runs
    items = section(html, "items")
    assert f'href="/admin/aids/{BULK}"' in items and "Approve invoices in bulk" in items
    row = section(await page(cc, "/admin/sources"), "source-vendor")
    assert "up to date" in words(row) and "<td>3</td>" in row and "<time datetime=" in row

    # upstream: one entry changed, one gone, one new
    serve(upstream, "vendor-notes-next.rss")
    await sync_now(cc, admin_csrf)
    html = await page(cc, "/admin/sources/vendor")
    assert "1 added, 1 changed, 1 unchanged, 1 removed, 0 failed" in words(
        section(html, "last-sync")
    )
    assert "gone from the source" in words(section(html, "items"))
    aid = await page(cc, f"/admin/aids/{BULK}")
    assert "100 invoices" in aid


async def test_the_page_follows_a_run_in_progress(
    cc: TestClient, admin_csrf: str, upstream: Upstream
) -> None:
    """While a run goes the page says how far it got and refreshes itself (no JavaScript); a
    second Sync now is refused on the page, not with an error page."""
    resp = await cc.post(
        "/admin/sources/new",
        data=feed_form(upstream, admin_csrf, url=upstream.url("/slow?seconds=30")),
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    resp = await cc.post(
        "/admin/sources/vendor/sync", data={"csrf_token": admin_csrf}, allow_redirects=False
    )
    assert resp.status == 303
    html = await page(cc, "/admin/sources/vendor")
    assert '<meta http-equiv="refresh" content="2; url=/admin/sources/vendor">' in html
    assert "Syncing:" in words(section(html, "sync-progress"))
    assert 'id="sync-now"' not in html
    assert "syncing now" in words(section(await page(cc, "/admin/sources"), "source-vendor"))
    resp = await cc.post("/admin/sources/vendor/sync", data={"csrf_token": admin_csrf})
    assert resp.status == 409
    assert "running already" in words(await resp.text())


async def test_refused_form_says_which_field_and_keeps_what_was_typed(
    cc: TestClient, admin_csrf: str, upstream: Upstream
) -> None:
    resp = await cc.post(
        "/admin/sources/new",
        data=feed_form(upstream, admin_csrf, url="ftp://ledgerly.example/feed", name="Typed"),
    )
    assert resp.status == 422
    html = await resp.text()
    assert "http(s) URL" in words(section(html, "url-error"))
    assert 'value="Typed"' in html  # what was typed stays
    resp = await cc.post(
        "/admin/sources/new", data=feed_form(upstream, admin_csrf, interval_minutes="5")
    )
    assert resp.status == 422
    assert 'id="interval_minutes-error"' in await resp.text()
    assert await service(cc).list() == []


async def test_edit_and_delete_archive_the_aids(
    cc: TestClient, admin_csrf: str, upstream: Upstream
) -> None:
    serve(upstream, "vendor-notes.rss")
    await cc.post("/admin/sources/new", data=feed_form(upstream, admin_csrf))
    await sync_now(cc, admin_csrf)
    form = await page(cc, "/admin/sources/vendor/edit")
    assert 'value="Ledgerly release notes"' in form and "<code>vendor</code>" in form
    resp = await cc.post(
        "/admin/sources/vendor/edit",
        data=feed_form(upstream, admin_csrf, name="Ledgerly: what's new", interval_minutes="60"),
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    stored = await service(cc).get("vendor")
    assert stored.name == "Ledgerly: what's new" and stored.interval_minutes == 60
    assert stored.last_status == "ok"  # what the sync set stays

    resp = await cc.post(
        "/admin/sources/vendor/delete", data={"csrf_token": admin_csrf}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/admin/sources?notice=deleted"
    assert "No sources yet" in await page(cc, "/admin/sources")
    aid = await page(cc, f"/admin/aids/{BULK}")
    assert '<span class="badge archived">archived</span>' in aid
    assert "change it there" not in aid  # Inflow's own now


async def test_who_may_do_what(
    cc: TestClient, tokens: TokenMaker, upstream: Upstream, admin_csrf: str
) -> None:
    serve(upstream, "vendor-notes.rss")
    await cc.post("/admin/sources/new", data=feed_form(upstream, admin_csrf))
    # an author reads sources (source.read) but neither adds, changes nor syncs them
    csrf = await sign_in(cc, tokens.token(sub="author-1", roles=("learner", "author")))
    listing = await page(cc, "/admin/sources")
    assert 'href="/admin/sources/new"' not in listing and "Sync now" not in listing
    assert "Sync now" not in await page(cc, "/admin/sources/vendor")
    await page(cc, "/admin/sources/new", 403)
    resp = await cc.post("/admin/sources/vendor/sync", data={"csrf_token": csrf})
    assert resp.status == 403
    resp = await cc.post("/admin/sources/vendor/delete", data={"csrf_token": csrf})
    assert resp.status == 403
    assert (await service(cc).get("vendor")).last_status == "never"
    # a post without the session's CSRF token changes nothing
    await sign_in(cc, tokens.token(sub="admin-1", roles=("learner", "admin")))
    resp = await cc.post("/admin/sources/vendor/sync", data={"csrf_token": "forged"})
    assert resp.status == 403
    assert (await service(cc).get("vendor")).last_status == "never"


async def test_a_source_owned_aid_says_where_to_change_it(
    cc: TestClient, admin_csrf: str, upstream: Upstream
) -> None:
    """The editor of an aid a source made: its content fields read-only with "From <source>:
    change it there" and a link to the source; saving changes its mapping (tags) only."""
    serve(upstream, "vendor-notes.rss")
    await cc.post("/admin/sources/new", data=feed_form(upstream, admin_csrf))
    await sync_now(cc, admin_csrf)
    html = await page(cc, f"/admin/aids/{BULK}")
    note = section(html, "from-source")
    assert "From Ledgerly release notes: change it there" in words(note)
    assert 'href="/admin/sources/vendor"' in note
    assert re.search(r'<input name="title"[^>]*readonly', html)
    assert re.search(r'<textarea id="body"[^>]*readonly', html)
    assert not re.search(r'<input name="tags"[^>]*readonly', html)
    assert "Mark verified" not in html  # its sync verifies it
    assert "Delete this aid" not in html  # archived by its source, never deleted here
    etag = htmllib.unescape(re.search(r'name="etag" value="([^"]+)"', html).group(1))  # type: ignore[union-attr]
    resp = await cc.post(
        f"/admin/aids/{BULK}",
        data={
            "csrf_token": admin_csrf,
            "etag": etag,
            "action": "save",
            "title": "An edit that belongs at the source",
            "tags": "release-notes, approvals",
            "apps": "ledgerly",
            "owner": "finance-ops@ledgerly.example",
            "review_interval_days": "90",
            "body": "changed here",
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    aid = await cc.server.app[keys.LIBRARY].storage.call(
        lambda: cc.server.app[keys.LIBRARY].storage.get_aid_sync(BULK)
    )
    assert aid.title == "Approve invoices in bulk" and "50 invoices" in aid.body
    assert aid.tags == ("release-notes", "approvals") and aid.review_interval_days == 90


def test_the_progress_line_counts_what_the_kind_reads() -> None:
    website = Source(id="intra", name="Intranet", kind="website", url="https://intra.example/")
    line = progress_line(website, {"done": 12, "total": 40, "message": "reading /handbook/"})
    assert line == "12 of 40 pages: reading /handbook/"
    git = Source(id="docs", name="Docs", kind="git", url="https://git.example/docs.git")
    assert progress_line(git, {"done": 0, "total": 0, "message": "starting"}) == "starting"
    assert progress_line(git, None) == ""


async def test_a_field_of_another_kind_is_ignored_not_refused(
    cc: TestClient, admin_csrf: str, upstream: Upstream
) -> None:
    """The form shows every kind's fields (no script hides them): a website's crawl mode or a
    git branch typed on a feed's form is not sent, and the feed is saved."""
    resp = await cc.post(
        "/admin/sources/new",
        data=feed_form(upstream, admin_csrf, mode="crawl", ref="release", path="docs"),
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    stored = await service(cc).get("vendor")
    assert (stored.mode, stored.ref, stored.path) == ("sitemap", "main", "")


async def test_a_run_with_failures_lists_each_with_its_reason(
    cc: TestClient, admin_csrf: str, upstream: Upstream
) -> None:
    """A website whose sitemap lists a page and a PDF: the page becomes an aid, the PDF fails
    with its reason on the run's row, the list says some items failed."""
    upstream.set(
        "/handbook/leave.html",
        "<html><head><title>Parental leave</title></head><body><main><h1>Parental leave</h1>"
        "<p>Parents take up to sixteen weeks of paid leave in the first year, in one block or "
        "in two. Tell your manager and the people team eight weeks before it starts.</p>"
        "</main></body></html>",
        content_type="text/html",
    )
    upstream.set("/handbook/form.pdf", b"%PDF-1.4 not a page", content_type="application/pdf")
    urls = "".join(
        f"<url><loc>{upstream.url(p)}</loc></url>"
        for p in ("/handbook/leave.html", "/handbook/form.pdf")
    )
    upstream.set(
        "/handbook/sitemap.xml",
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>',
        content_type="application/xml",
    )
    form = feed_form(
        upstream,
        admin_csrf,
        id="handbook",
        name="People handbook",
        kind="website",
        url=upstream.url("/handbook/sitemap.xml"),
    )
    resp = await cc.post("/admin/sources/new", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    await sync_now(cc, admin_csrf, "handbook")
    html = await page(cc, "/admin/sources/handbook")
    run = words(section(html, "runs"))
    assert "1 added" in run and "1 failed" in run
    failure = section(html, "runs")
    assert upstream.url("/handbook/form.pdf") in failure and "<details>" in failure
    assert "not an HTML page" in words(failure)  # the reason, beside the item
    row = words(section(await page(cc, "/admin/sources"), "source-handbook"))
    assert "synced, some items failed" in row
