"""Link and rule health in the console: /admin/health per owner, the "broken link" mark on the aid
list, the aid's page and the stale list, "Check now", and an app owner who sees their app only.

Real parts: the console with sessions made from forged tokens (tests/test_admin_console.py), the
safe fetcher against the real upstream server, events through POST /api/v1/events. Fabrikam's
library (tests/test_health_links.py), not the demo's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.settings import Settings
from tests.test_admin_console import sign_in
from tests.test_health_links import (  # noqa: F401
    LENA,
    RAJ,
    health_settings,
    serve_pages,
)
from tests.test_health_rules import event, opened
from tests.tokens import TokenMaker
from tests.upstream import Upstream


@pytest.fixture
async def cc(aiohttp_client: Any, health_settings: Callable[..., Settings]) -> TestClient:  # noqa: F811
    return await aiohttp_client(create_app(health_settings()))


def section(html: str, element_id: str) -> str:
    """The HTML of the element with this id, up to its closing tag's kind."""
    found = re.search(rf'<(\w+)[^>]*id="{element_id}".*?</\1>', html, re.S)
    assert found, f"no #{element_id}"
    return found.group(0)


async def page(client: TestClient, path: str, status: int = 200) -> str:
    resp = await client.get(path)
    html = await resp.text()
    assert resp.status == status, html[:500]
    return html


async def check_now(client: TestClient, csrf: str) -> None:
    """Press "Check now" on /admin/health and wait for the job to end."""
    resp = await client.post(
        "/admin/health/check", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/admin/health?done=started"
    await client.server.app[keys.JOBS].wait("link-check")


async def test_links_per_owner_and_the_broken_link_marks(
    cc: TestClient, tokens: TokenMaker, upstream: Upstream
) -> None:
    serve_pages(upstream)
    csrf = await sign_in(cc, tokens.token(sub="admin-1", roles=("learner", "admin")))
    await check_now(cc, csrf)
    html = await page(cc, "/admin/health")
    links = section(html, "links")
    # grouped by the aid's owner, failing first, with since when
    assert links.index(f"<h3>{LENA}") < links.index(f"<h3>{RAJ}")
    lena = links[links.index(f"<h3>{LENA}") : links.index(f"<h3>{RAJ}")]
    assert upstream.url("/gone") in lena and "HTTP 404" in lena and "<time" in lena
    assert upstream.url("/target") in lena  # the redirect, with where it ends now
    assert upstream.url("/ok") not in links  # working links are not listed by default
    assert "2 broken" in links and "1 redirected" in links

    # the aid whose source is broken is marked on the list, its page and the stale list
    aids = await page(cc, "/admin/aids")
    row = re.search(r"<tr>(?:(?!</tr>).)*roster-swap-shift(?:(?!</tr>).)*</tr>", aids, re.S)
    assert row and "broken link" in row.group(0)
    row = re.search(r"<tr>(?:(?!</tr>).)*ledger-post-invoice(?:(?!</tr>).)*</tr>", aids, re.S)
    assert row and "broken link" not in row.group(0)  # its source only redirects
    aid_page = await page(cc, "/admin/aids/roster-swap-shift")
    note = section(aid_page, "broken-link")
    assert upstream.url("/old-guide") in note and "HTTP 404" in note
    assert 'id="broken-link"' not in await page(cc, "/admin/aids/ledger-post-invoice")
    stale = await page(cc, "/admin/stale")
    assert "broken link" in section(stale, "stale-roster-swap-shift")
    assert "broken link" not in section(stale, "stale-ledger-post-invoice")
    by_owner = section(stale, "link-health")
    assert f"<h3>{LENA}" in by_owner and f"<h3>{RAJ}" in by_owner
    assert upstream.url("/old-guide") in by_owner

    # the page is fixed upstream: the next check takes the mark away
    upstream.set("/old-guide", "<h1>here again</h1>", content_type="text/html")
    await check_now(cc, csrf)
    aids = await page(cc, "/admin/aids")
    assert "broken link" not in aids
    assert 'id="broken-link"' not in await page(cc, "/admin/aids/roster-swap-shift")


async def test_rule_health_per_app(cc: TestClient, tokens: TokenMaker) -> None:
    await opened(cc, tokens, [event("ledger", "ledger-invoices")])
    await sign_in(cc, tokens.token(sub="author-1", roles=("learner", "author")))
    rules = section(await page(cc, "/admin/health"), "rules")
    roster = section(rules, "rules-roster")
    assert "no panel opening" in roster and "Shift plan" in roster
    ledger = section(rules, "rules-ledger")
    assert "no panel opening" not in ledger
    assert "2 of 3 contexts unused" in ledger and "Vendors" in ledger
    assert "Can never match" in ledger and "ledger-void" in ledger
    # authors may start a check (they fix the aids), as the permission table says
    assert "Check now" in await page(cc, "/admin/health")


async def test_an_owner_sees_their_app_only(
    cc: TestClient, tokens: TokenMaker, upstream: Upstream
) -> None:
    serve_pages(upstream)
    await cc.server.app[keys.JOBS].run_now("link-check")
    await cc.server.app[keys.JOBS].wait("link-check")
    await sign_in(cc, tokens.token(sub="lena", roles=("learner",), email=LENA))
    html = await page(cc, "/admin/health")
    assert 'href="/admin/health"' in html  # the nav shows it to an owner
    assert "ledger-post-invoice" in html and upstream.url("/gone") in html
    assert "roster-swap-shift" not in html and upstream.url("/old-guide") not in html
    assert 'id="rules-ledger"' in html and 'id="rules-roster"' not in html
    assert "Check now" not in html
    resp = await cc.post("/admin/health/check", data={}, allow_redirects=False)
    assert resp.status == 403


async def test_someone_who_owns_nothing_is_kept_out(cc: TestClient, tokens: TokenMaker) -> None:
    await sign_in(cc, tokens.token(sub="clerk", roles=("learner",), email="clerk@fabrikam.example"))
    html = await page(cc, "/admin/health", 403)
    assert "owners of an app" in html


async def test_the_page_follows_a_running_check(
    cc: TestClient, tokens: TokenMaker, upstream: Upstream
) -> None:
    """While a check runs the page says how far it is and refreshes itself (no JavaScript);
    when it has ended, neither."""
    serve_pages(upstream)
    upstream.set("/ok", status=301, headers={"Location": upstream.url("/slow") + "?seconds=1"})
    csrf = await sign_in(cc, tokens.token(sub="admin-1", roles=("learner", "admin")))
    resp = await cc.post("/admin/health/check", data={"csrf_token": csrf})
    html = await resp.text()
    assert "Checking now" in html and 'http-equiv="refresh"' in html
    assert "Check now</button>" not in html
    await cc.server.app[keys.JOBS].wait("link-check")
    html = await page(cc, "/admin/health")
    assert "Checking now" not in html and 'http-equiv="refresh"' not in html
    assert "Check now</button>" in html
