"""Link health: every link of every published aid checked through the real safe fetcher against a
real HTTP server (tests/upstream.py), with results per aid and per owner, kept from run to run.

The library is a small one of another company (Fabrikam's ledger and roster apps), written into
the test's own content folder, never the demo's.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.health.api import checker_of
from server.health.links import aid_links, extract_links
from server.settings import Settings
from tests.tokens import TokenMaker
from tests.upstream import Upstream

LENA = "lena@fabrikam.example"  # owns the ledger app
RAJ = "raj@fabrikam.example"  # owns the roster app

LEDGER = """\
id: ledger
name: Fabrikam Ledger
rules:
  - pattern: "*://ledger.fabrikam.example/**"
owners: [lena@fabrikam.example]
contexts:
  - id: ledger-invoices
    name: Invoices
    rules: ["*://ledger.fabrikam.example/invoices/**"]
    aids: [ledger-post-invoice]
  - id: ledger-vendors
    name: Vendors
    rules: ["*://ledger.fabrikam.example/vendors/*"]
  - id: ledger-void
    name: Voided entries
    rules: ["*://ledger.fabrikam.example/void?kind=x&!kind"]
"""
ROSTER = """\
id: roster
name: Fabrikam Roster
rules:
  - pattern: "*://roster.fabrikam.example/**"
owners: [raj@fabrikam.example]
contexts:
  - id: roster-shifts
    name: Shift plan
    rules: ["*://roster.fabrikam.example/shifts/**"]
"""


def aid_file(
    aid_id: str, owner: str, app: str, body: str, source: str = "", status: str = "published"
) -> str:
    return (
        f"---\nid: {aid_id}\ntitle: {aid_id.replace('-', ' ').title()}\ntype: howto\n"
        f"apps: [{app}]\nowner: {owner}\nstatus: {status}\n"
        + (f"source: {source}\n" if source else "")
        + f"---\n{body}\n"
    )


def fabrikam(folder: Path, up: Upstream) -> Path:
    """Fabrikam's content: two apps, two published aids with links to `up`, one draft."""
    (folder / "apps").mkdir(parents=True)
    (folder / "aids").mkdir()
    (folder / "apps" / "ledger.yaml").write_text(LEDGER)
    (folder / "apps" / "roster.yaml").write_text(ROSTER)
    aids = {
        "ledger-post-invoice": aid_file(
            "ledger-post-invoice",
            LENA,
            "ledger",
            f"Open [the form]({up.url('/ok')}), then check {up.url('/gone')}.\n\n"
            f"Code is not a link: `{up.url('/in-code')}`",
            source=up.url("/moved"),
        ),
        "roster-swap-shift": aid_file(
            "roster-swap-shift",
            RAJ,
            "roster",
            f"Ask first: <{up.url('/nohead')}>. The policy: [here]({up.url('/ok')}).",
            source=up.url("/old-guide"),
        ),
        "ledger-draft": aid_file(
            "ledger-draft", LENA, "ledger", f"Not yet: {up.url('/draft-only')}", status="draft"
        ),
    }
    for aid_id, text in aids.items():
        (folder / "aids" / f"{aid_id}.md").write_text(text)
    return folder


def serve_pages(up: Upstream) -> None:
    up.set("/ok", "<h1>fine</h1>", content_type="text/html")
    up.set("/target", "<h1>new home</h1>", content_type="text/html")
    up.set("/moved", status=301, headers={"Location": up.url("/target")})
    up.set("/nohead", "<h1>GET only</h1>", content_type="text/html", methods=("GET",))
    # /gone and /old-guide are not set: 404


@pytest.fixture
def health_settings(
    make_settings: Callable[..., Settings], tmp_path: Path, upstream: Upstream
) -> Callable[..., Settings]:
    content = fabrikam(tmp_path / "fabrikam", upstream)

    def make(**changes: Any) -> Settings:
        base: dict[str, Any] = {
            "content_dir": content,
            "fetch_allow_private": True,  # the upstream is on 127.0.0.1
            "link_check_delay_seconds": 0.0,
            "jobs": False,
        }
        return make_settings(**{**base, **changes})

    return make


@pytest.fixture
async def hc(aiohttp_client: Any, health_settings: Callable[..., Settings]) -> TestClient:
    return await aiohttp_client(create_app(health_settings()))


def staff(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="author-1", roles=("learner", "author"), email="ann@fabrikam.example")


def owner(tokens: TokenMaker, email: str) -> dict[str, str]:
    """An app owner whose only role is learner."""
    return tokens.auth(sub=email.split("@")[0], roles=("learner",), email=email)


async def run_check(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    """Start a check through the API and wait until the job has finished; its state."""
    resp = await client.post("/api/v1/admin/health/links/check", headers=headers)
    assert resp.status == 202, await resp.text()
    while True:
        resp = await client.get("/api/v1/admin/health/links", headers=headers)
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        if not data["job"]["running"]:
            return data
        await asyncio.sleep(0.05)


async def links(client: TestClient, headers: dict[str, str], **query: str) -> dict[str, Any]:
    resp = await client.get("/api/v1/admin/health/links", params=query, headers=headers)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


def by_link(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(item["aid"]["id"], item["url"].rsplit("/", 1)[1]): item for item in data["links"]}


# -- finding links --------------------------------------------------------------------------------


def test_links_are_found_in_markdown_autolinks_and_text_but_not_in_code() -> None:
    body = (
        '[guide](https://a.example/x#step-2 "Guide") and <https://b.example/> and, in text, '
        "https://c.example/p?q=1. Also ![chart](https://img.example/c.png) and "
        "(see https://w.example/a_(b)).\n\n"
        "`https://code.example/x`\n\n    https://indented.example/x\n\n"
        "[again](https://a.example/x) mailto:help@a.example ftp://f.example/x\n"
        "[ref link][r]\n\n[r]: https://ref.example/doc\n"
    )
    assert extract_links(body) == [
        "https://a.example/x",
        "https://b.example/",
        "https://c.example/p?q=1",
        "https://img.example/c.png",
        "https://w.example/a_(b)",
        "https://ref.example/doc",
    ]
    # the source is the primary link, listed once even when the body repeats it
    assert aid_links(body, "https://a.example/x") == [
        ("https://a.example/x", True),
        *[(u, False) for u in extract_links(body)[1:]],
    ]
    assert aid_links("", "") == []


# -- checking -------------------------------------------------------------------------------------


async def test_each_kind_of_result_per_aid_and_per_owner(
    hc: TestClient, tokens: TokenMaker, upstream: Upstream
) -> None:
    serve_pages(upstream)
    data = await run_check(hc, staff(tokens))
    found = by_link(data)
    # every link of the published aids, once per aid; the draft's link and code are not checked
    assert set(found) == {
        ("ledger-post-invoice", "moved"),
        ("ledger-post-invoice", "ok"),
        ("ledger-post-invoice", "gone"),
        ("roster-swap-shift", "old-guide"),
        ("roster-swap-shift", "nohead"),
        ("roster-swap-shift", "ok"),
    }
    assert upstream.hits["/draft-only"] == 0 and upstream.hits["/in-code"] == 0
    moved = found[("ledger-post-invoice", "moved")]
    assert moved["status"] == "redirected" and moved["primary"] is True
    assert moved["final_url"] == upstream.url("/target") and moved["http_status"] == 200
    gone = found[("ledger-post-invoice", "gone")]
    assert (gone["status"], gone["http_status"], gone["primary"]) == ("broken", 404, False)
    assert gone["failing_since"] == gone["checked_at"] != ""
    # when the last check wrote its results
    assert data["checked_at"] == max(i["checked_at"] for i in data["links"])
    assert found[("roster-swap-shift", "old-guide")]["status"] == "broken"
    assert found[("roster-swap-shift", "old-guide")]["primary"] is True
    # HEAD answered 405: checked again with GET, which works
    nohead = found[("roster-swap-shift", "nohead")]
    assert (nohead["status"], nohead["http_status"]) == ("ok", 200)
    methods = [s.method for s in upstream.requests if s.path_qs == "/nohead"]
    assert methods == ["HEAD", "GET"]
    # /ok is named by two aids: one request, a result for each aid
    assert found[("roster-swap-shift", "ok")]["status"] == "ok"
    assert [s.method for s in upstream.requests if s.path_qs == "/ok"] == ["HEAD"]
    # failing first
    assert [item["status"] for item in data["links"]][:2] == ["broken", "broken"]
    assert data["counts"] == {"ok": 3, "redirected": 1, "broken": 2, "refused": 0, "error": 0}

    # per owner, per app, per status
    raj = await links(hc, staff(tokens), owner=RAJ.upper())
    assert {i["aid"]["id"] for i in raj["links"]} == {"roster-swap-shift"}
    ledger = await links(hc, staff(tokens), app="ledger", status="broken")
    assert [(i["aid"]["id"], i["url"]) for i in ledger["links"]] == [
        ("ledger-post-invoice", upstream.url("/gone"))
    ]
    # the counts are of every status, for the same app
    assert ledger["counts"] == {"ok": 1, "redirected": 1, "broken": 1, "refused": 0, "error": 0}
    resp = await hc.get(
        "/api/v1/admin/health/links", params={"status": "dead"}, headers=staff(tokens)
    )
    assert resp.status == 422 and resp.content_type == "application/problem+json"


async def test_failing_since_is_kept_and_a_fixed_link_goes_back_to_ok(
    hc: TestClient, tokens: TokenMaker, upstream: Upstream
) -> None:
    serve_pages(upstream)
    first = by_link(await run_check(hc, staff(tokens)))[("ledger-post-invoice", "gone")]
    second = by_link(await run_check(hc, staff(tokens)))[("ledger-post-invoice", "gone")]
    assert second["status"] == "broken"
    assert second["checked_at"] >= first["checked_at"]
    assert second["failing_since"] == first["failing_since"]  # since the first failure

    upstream.set("/gone", "<h1>back</h1>", content_type="text/html")  # the page is fixed
    third = by_link(await run_check(hc, staff(tokens)))[("ledger-post-invoice", "gone")]
    assert (third["status"], third["http_status"], third["failing_since"]) == ("ok", 200, "")


async def test_links_no_longer_in_a_published_aid_are_dropped(
    hc: TestClient, tokens: TokenMaker, upstream: Upstream, admin: dict[str, str]
) -> None:
    serve_pages(upstream)
    await run_check(hc, staff(tokens))
    resp = await hc.get("/api/v1/admin/aids/ledger-post-invoice", headers=admin)
    aid = await resp.json()
    etag = resp.headers["ETag"]
    aid["body"] = f"Only this now: {upstream.url('/ok')}"
    aid["source"] = ""
    resp = await hc.put(
        "/api/v1/admin/aids/ledger-post-invoice",
        json=aid,
        headers={**admin, "If-Match": etag},
    )
    assert resp.status == 200, await resp.text()
    resp = await hc.get("/api/v1/admin/aids/roster-swap-shift", headers=admin)
    resp = await hc.post(
        "/api/v1/admin/aids/roster-swap-shift/transitions",
        json={"to": "archived"},
        headers={**admin, "If-Match": resp.headers["ETag"]},
    )
    assert resp.status == 200, await resp.text()
    found = by_link(await run_check(hc, staff(tokens)))
    assert set(found) == {("ledger-post-invoice", "ok")}


async def test_refusals_and_failures_say_why(
    aiohttp_client: Any,
    health_settings: Callable[..., Settings],
    tokens: TokenMaker,
    upstream: Upstream,
    tmp_path: Path,
) -> None:
    """Private addresses are refused unless the setting allows them; robots.txt is obeyed; no
    answer in time is an error."""
    serve_pages(upstream)
    client = await aiohttp_client(create_app(health_settings(fetch_allow_private=False)))
    data = await run_check(client, staff(tokens))
    assert {i["status"] for i in data["links"]} == {"refused"}
    assert "INFLOW_FETCH_ALLOW_PRIVATE" in data["links"][0]["detail"]
    assert not upstream.requests  # nothing was fetched

    # a polite crawler's robots.txt: one page kept out, a pause between requests
    upstream.set(
        "/robots.txt",
        "User-agent: *\nDisallow: /gone\nCrawl-delay: 0.1\n",
        content_type="text/plain",
    )
    client = await aiohttp_client(
        create_app(health_settings(fetch_timeout_seconds=1.0, data_dir=tmp_path / "second"))
    )
    resp = await client.get("/api/v1/admin/aids/roster-swap-shift", headers=staff(tokens))
    aid, etag = await resp.json(), resp.headers["ETag"]
    aid["body"] = f"A slow page: {upstream.url('/slow')}?seconds=5"
    resp = await client.put(
        "/api/v1/admin/aids/roster-swap-shift",
        json=aid,
        headers={**tokens.auth(sub="admin-1", roles=("admin",)), "If-Match": etag},
    )
    assert resp.status == 200, await resp.text()
    found = by_link(await run_check(client, staff(tokens)))
    robots = found[("ledger-post-invoice", "gone")]
    assert robots["status"] == "refused" and "robots.txt" in robots["detail"]
    assert upstream.hits["/gone"] == 0
    slow = found[("roster-swap-shift", "slow?seconds=5")]
    assert slow["status"] == "error" and "time" in slow["detail"]


async def test_an_owner_sees_the_links_of_their_apps_only(
    hc: TestClient, tokens: TokenMaker, upstream: Upstream
) -> None:
    serve_pages(upstream)
    await run_check(hc, staff(tokens))
    lena = await links(hc, owner(tokens, LENA))
    assert {i["aid"]["id"] for i in lena["links"]} == {"ledger-post-invoice"}
    # asking for another app's links shows nothing of it
    assert (await links(hc, owner(tokens, LENA), app="roster"))["links"] == []
    # someone who owns nothing and may not read aids sees nothing
    nobody = await links(hc, owner(tokens, "someone@fabrikam.example"))
    assert nobody["links"] == []
    # only the table's roles may start a check
    resp = await hc.post("/api/v1/admin/health/links/check", headers=owner(tokens, LENA))
    assert resp.status == 403 and resp.content_type == "application/problem+json"


async def test_a_second_check_while_one_runs_is_a_conflict(
    hc: TestClient, tokens: TokenMaker, upstream: Upstream
) -> None:
    serve_pages(upstream)
    upstream.set("/ok", status=301, headers={"Location": upstream.url("/slow") + "?seconds=1"})
    resp = await hc.post("/api/v1/admin/health/links/check", headers=staff(tokens))
    assert resp.status == 202
    resp = await hc.post("/api/v1/admin/health/links/check", headers=staff(tokens))
    assert resp.status == 409 and resp.content_type == "application/problem+json"
    await run_check_done(hc, staff(tokens))
    assert hc.server.app[keys.JOBS].state("link-check")["last_error"] in ("", None)


async def run_check_done(client: TestClient, headers: dict[str, str]) -> None:
    while (await links(client, headers))["job"]["running"]:
        await asyncio.sleep(0.05)


def _in(stamp: str) -> float:
    """Seconds from now to an ISO time."""
    at = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (at - dt.datetime.now(dt.UTC)).total_seconds()


async def test_the_schedule_follows_the_last_check(
    aiohttp_client: Any,
    health_settings: Callable[..., Settings],
    tokens: TokenMaker,
    upstream: Upstream,
) -> None:
    """A new installation checks its links minutes after it starts, not a day later; a restart
    does not check again at once but one interval after the last check."""
    serve_pages(upstream)
    settings = health_settings(jobs=True, link_check_hours=24)
    client = await aiohttp_client(create_app(settings))
    state = client.server.app[keys.JOBS].state("link-check")
    assert state["every_seconds"] == 24 * 3600
    assert 240 < _in(state["next_at"]) <= 300  # never checked: five minutes after start-up
    await run_check(client, staff(tokens))
    await client.close()

    restarted = await aiohttp_client(create_app(settings))
    state = restarted.server.app[keys.JOBS].state("link-check")
    assert 23 * 3600 < _in(state["next_at"]) <= 24 * 3600

    off = await aiohttp_client(
        create_app(settings.with_(link_check_hours=0, data_dir=settings.data_dir.parent / "off"))
    )
    state = off.server.app[keys.JOBS].state("link-check")
    assert state["registered"] and state["next_at"] is None  # only by hand


async def test_a_link_no_encoding_accepts_does_not_cost_the_other_results(
    hc: TestClient, tokens: TokenMaker, upstream: Upstream, admin: dict[str, str]
) -> None:
    """Incident: a body link to `http://a..b/` (an empty label) made the fetcher raise
    UnicodeError from the IDNA codec; the whole run failed and no link of any aid was
    reported. Now that link is `refused` as not a URL and every other link is checked."""
    serve_pages(upstream)
    resp = await hc.get("/api/v1/admin/aids/roster-swap-shift", headers=admin)
    aid, etag = await resp.json(), resp.headers["ETag"]
    aid["body"] += "\n\nOld wiki: http://a..b/x, http://a..b/y and the form: " + upstream.url("/ok")
    resp = await hc.put(
        "/api/v1/admin/aids/roster-swap-shift", json=aid, headers={**admin, "If-Match": etag}
    )
    assert resp.status == 200, await resp.text()
    data = await run_check(hc, staff(tokens))
    assert data["job"]["last_error"] == ""
    bad = [i for i in data["links"] if "a..b" in i["url"]]
    assert [(i["status"], i["detail"]) for i in bad] == [("refused", "Not a valid URL.")] * 2
    assert by_link(data)[("ledger-post-invoice", "gone")]["status"] == "broken"
    assert len(data["links"]) == 8


async def test_results_are_kept_as_they_come(
    hc: TestClient, tokens: TokenMaker, upstream: Upstream
) -> None:
    """A check that a restart cuts short (hours on a big intranet) keeps what it found so far:
    results are written as they come, not all at the end."""
    serve_pages(upstream)
    slow = upstream.url("/slow") + "?seconds=30"
    upstream.set("/nohead", status=301, headers={"Location": slow})
    checker = checker_of(hc.server.app)
    checker.chunk = 1
    run = asyncio.create_task(checker.run())
    while len((await links(hc, staff(tokens)))["links"]) < 5:  # all but the slow one
        assert not run.done()
        await asyncio.sleep(0.05)
    run.cancel()  # the server stops while the slow link is being checked
    with contextlib.suppress(asyncio.CancelledError):
        await run
    found = by_link(await links(hc, staff(tokens)))
    assert ("roster-swap-shift", "nohead") not in found
    assert found[("ledger-post-invoice", "gone")]["status"] == "broken"
    assert found[("roster-swap-shift", "ok")]["status"] == "ok"
