"""The console reads like a product (issue 11): analytics inside the console's layout with
readable labels and one colour per series, relative times, audit entries in words, HTML 404 and
403 pages, the pin picker, the stale list's actions, "Mark verified", the reviewer's comment when
sending an aid back, long text fields as textareas, and the favicon.

Content is a small library of its own (an "Acme field service" app and its aids), made through
the admin service, not the demo's.
"""

from __future__ import annotations

import datetime as dt
import html as htmllib
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.admin.service import AdminService, aid_etag
from server.console.words import audit_details, audit_sentence, relative, when_html
from tests.test_admin_console import etag_of, sign_in
from tests.tokens import TokenMaker

REVIEWER = ("learner", "author", "reviewer", "admin")
SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")


@pytest.fixture
def admin_token(tokens: TokenMaker) -> str:
    return tokens.token(sub="rosa", roles=REVIEWER)


async def service_for(client: TestClient, token: str) -> tuple[AdminService, Any]:
    app = client.server.app
    identity = await app[keys.AUTHENTICATOR].authenticate(token)
    return AdminService(app[keys.SETTINGS], app[keys.LIBRARY], app[keys.SUGGESTER]), identity


async def acme(client: TestClient, token: str) -> AdminService:
    """Another company's app, a page of it and four aids: two published, a draft, and a
    published aid of another app."""
    service, me = await service_for(client, token)
    await service.create_app(
        me,
        {
            "id": "acme-field",
            "name": "Acme field service",
            "rules": [{"pattern": "https://field.acme.test/**", "priority": 0}],
            "contexts": [
                {
                    "id": "acme-work-order",
                    "name": "Work order",
                    "rule": {"pattern": "https://field.acme.test/orders/*", "priority": 0},
                }
            ],
        },
    )
    await service.create_app(
        me,
        {
            "id": "acme-stock",
            "name": "Acme stock",
            "rules": [{"pattern": "https://stock.acme.test/**", "priority": 0}],
        },
    )
    aids = [
        ("acme-close-order", "Close a work order", "acme-field", "published"),
        ("acme-parts-return", "Return unused parts", "acme-field", "published"),
        ("acme-overtime-draft", "Overtime on call-outs", "acme-field", "draft"),
        ("acme-stock-count", "Count the van stock", "acme-stock", "published"),
    ]
    for aid_id, title, app, status in aids:
        await service.create_aid(
            me,
            {
                "id": aid_id,
                "title": title,
                "summary": f"{title} in the field app.",
                "type": "howto",
                "apps": [app],
                "status": status,
                "body": f"Steps to {title.lower()}.",
                "verified_at": "2026-01-05",
                "review_interval_days": 30,
            },
        )
    return service


def visible_text(page: str) -> str:
    """What a person reads: the body without tags, scripts, SVG titles or attributes."""
    body = page.split("<body", 1)[-1]
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", body))


# -- 1. analytics in the console -----------------------------------------------------------------


async def test_analytics_is_a_console_page_with_readable_labels_and_one_colour_per_series(
    client: TestClient, admin_token: str
) -> None:
    """The analytics dashboard was a page of its own (no console header or navigation), its
    totals table read `active_learners`, and 'Panel opens' was green on one chart and blue on
    the next (colours went by position in each chart)."""
    await sign_in(client, admin_token)
    resp = await client.get("/admin/analytics")
    assert resp.status == 200
    page = await resp.text()
    assert '<header class="top">' in page and 'aria-label="Main"' in page
    assert re.search(r'<a href="/admin/analytics" aria-current="page">Analytics</a>', page)
    assert 'href="/admin/static/admin.css"' in page
    text = visible_text(page)
    assert "Active learners" in text and "Panel opens" in text
    assert not SNAKE.findall(text), SNAKE.findall(text)
    by_series: dict[str, set[str]] = {}
    for colour, series in re.findall(
        r'(?:fill|stroke)="(#[0-9a-f]{6})"[^>]*data-series="([a-z_]+)"', page
    ):
        by_series.setdefault(series, set()).add(colour)
    assert {"active_learners", "panel_opens", "aids_opened", "zero_results"} <= set(by_series)
    for series, found in by_series.items():
        assert len(found) == 1, (series, found)  # one colour on every chart
    used = [next(iter(c)) for c in by_series.values()]
    assert len(used) == len(set(used)), by_series  # and no two series share one


async def test_analytics_for_a_bearer_token_still_renders(
    client: TestClient, admin: dict[str, str]
) -> None:
    """API clients with a token (no console session) get the page too, without a nav."""
    resp = await client.get("/admin/analytics", headers=admin)
    assert resp.status == 200
    assert "Active learners" in await resp.text()


# -- 2. relative times, audit entries in words ---------------------------------------------------


def test_relative_times_read_like_speech() -> None:
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    assert relative("2026-12-01T11:59:40Z", now) == "just now"
    assert relative("2026-12-01T11:55:00Z", now) == "5 minutes ago"
    assert relative("2026-12-01T09:00:00Z", now) == "3 hours ago"
    assert relative("2026-11-30T08:00:00Z", now) == "yesterday"
    assert relative("2026-11-19T12:00:00Z", now) == "12 days ago"
    assert relative("2026-12-03T12:00:00Z", now) == "in 2 days"
    assert relative("2026-12-01", now) == "today"
    assert relative("2026-11-01", now) == "30 days ago"
    assert relative("2024-05-02T10:00:00Z", now) == "2 May 2024"
    assert relative("not a time", now) == ""
    tag = str(when_html("2026-12-01T09:00:00Z"))
    assert tag.startswith('<time datetime="2026-12-01T09:00:00Z" title="1 Dec 2026, 09:00 UTC">')


def test_audit_entries_are_sentences() -> None:
    entry = {
        "action": "aid.update",
        "who": {"username": "rosa", "subject": "s-1", "issuer": "i"},
        "target_type": "aid",
        "target_id": "acme-close-order",
        "detail": {"version": 3, "fields": ["title", "review_interval_days"], "status": "draft"},
    }
    names = {"aid:acme-close-order": "Close a work order"}
    assert audit_sentence(entry, names) == "rosa edited the aid Close a work order"
    assert audit_details(entry) == [
        "changed the title and review interval",
        "status draft",
        "version 3",
    ]
    odd = {**entry, "action": "aid.bulk_retag", "detail": {"tags_added": ["van", "parts"]}}
    assert audit_sentence(odd, names) == "rosa bulk retag the aid Close a work order"
    assert audit_details(odd) == ["tags added: van and parts"]


async def test_the_audit_log_says_who_did_what_to_which_resource(
    client: TestClient, admin_token: str
) -> None:
    """The audit log showed `aid.update` and a raw JSON detail (`{"version": 2, "fields":
    ["title"]...}`) with an ISO timestamp: people had to decode every line."""
    service = await acme(client, admin_token)
    csrf = await sign_in(client, admin_token)
    page = await (await client.get("/admin/aids/acme-overtime-draft")).text()
    resp = await client.post(
        "/admin/aids/acme-overtime-draft",
        data={
            "csrf_token": csrf,
            "etag": etag_of(page),
            "title": "Overtime on emergency call-outs",
            "summary": "Overtime on call-outs in the field app.",
            "type": "howto",
            "apps": "acme-field",
            "owner": "rosa",
            "verified_at": "2026-01-05",
            "review_interval_days": "30",
            "body": "Steps.",
        },
        allow_redirects=False,
    )
    assert resp.status == 303
    page = await (await client.get("/admin/audit")).text()
    table = page.split('<table class="audit">', 1)[1].split("</table>", 1)[0]
    text = visible_text(table)
    assert "rosa edited the aid Overtime on emergency call-outs" in text
    assert "changed the body and title" in text
    assert "rosa created the app Acme field service" in text
    assert "{" not in text and '"version"' not in text  # no raw JSON
    assert re.search(
        r'<time datetime="\d{4}-\d\d-\d\dT[\d:]+Z" title="[^"]+">just now</time>', table
    )
    assert service is not None
    dashboard = await (await client.get("/admin")).text()
    assert "rosa edited the aid Overtime on emergency call-outs" in visible_text(dashboard)


# -- 3. HTML 404 and 403 pages -------------------------------------------------------------------


async def test_people_get_html_error_pages_the_api_keeps_problem_json(
    client: TestClient, admin_token: str, tokens: TokenMaker, admin: dict[str, str]
) -> None:
    """A mistyped console address answered with the API's problem+json (a JSON blob in the
    browser, no way back)."""
    await sign_in(client, admin_token)
    for path in ("/admin/no-such-page", "/admin/aids/no-such-aid", "/admin/contexts/gone/x"):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert resp.content_type == "text/html", path
        page = await resp.text()
        assert '<header class="top">' in page and 'aria-label="Main"' in page
        assert "Back to the dashboard" in page and 'href="/admin"' in page
    resp = await client.get("/api/v1/no-such-route", headers=admin)
    assert resp.status == 404 and resp.content_type == "application/problem+json"
    resp = await client.get("/api/v1/admin/aids/no-such-aid", headers=admin)
    assert resp.status == 404 and resp.content_type == "application/problem+json"
    # 403: an author opening the audit log gets the console's page saying why.
    await sign_in(client, tokens.token(sub="ana", roles=("learner", "author")))
    resp = await client.get("/admin/audit")
    assert resp.status == 403 and resp.content_type == "text/html"
    page = await resp.text()
    assert "Not allowed" in page and "admin" in visible_text(page)
    assert 'aria-label="Main"' in page and "Back to the dashboard" in page


# -- 4. the pin picker ---------------------------------------------------------------------------


async def test_the_pin_picker_offers_the_apps_published_aids_and_refuses_unknown_ids(
    client: TestClient, admin_token: str
) -> None:
    """Pinning meant scrolling a select of every aid of every app, drafts included."""
    await acme(client, admin_token)
    csrf = await sign_in(client, admin_token)
    page = await (await client.get("/admin/contexts/acme-work-order")).text()
    assert re.search(r'<input name="aid" id="pin-aid" list="pin-aid-choices"', page)
    choices = page.split('<datalist id="pin-aid-choices">', 1)[1].split("</datalist>", 1)[0]
    offered = re.findall(r'<option value="([^"]+)">([^<]+)</option>', choices)
    assert offered == [
        ("acme-close-order", "Close a work order"),
        ("acme-parts-return", "Return unused parts"),
    ]  # not the draft, not the other app's aid
    resp = await client.post(
        "/admin/contexts/acme-work-order/pins",
        data={"csrf_token": csrf, "etag": etag_of(page), "aid": "acme-nope", "move": "add"},
    )
    assert resp.status == 422
    refused = await resp.text()
    assert 'aria-invalid="true">' in refused.split('id="pin-aid"', 1)[1].split("\n", 2)[1]
    beside = refused.split('<datalist id="pin-aid-choices">', 1)[1].split("<button", 1)[0]
    assert re.search(r'class="field-error"[^>]*>Unknown aid\(s\) pinned: acme-nope\.<', beside)
    resp = await client.post(
        "/admin/contexts/acme-work-order/pins",
        data={"csrf_token": csrf, "etag": etag_of(page), "aid": "acme-parts-return", "move": "add"},
        allow_redirects=False,
    )
    assert resp.status == 303
    catalog = client.server.app[keys.LIBRARY].catalog
    assert catalog.contexts["acme-work-order"].aids == ("acme-parts-return",)


# -- 5. the stale list's actions and Mark verified -----------------------------------------------


async def test_stale_rows_have_actions_that_go_through_the_permission_table(
    client: TestClient, admin_token: str, tokens: TokenMaker
) -> None:
    """The stale list was a list of links: verifying an aid meant opening it, finding the
    date field and typing today's date."""
    await acme(client, admin_token)
    csrf = await sign_in(client, admin_token)
    page = await (await client.get("/admin/stale")).text()
    row = page.split('id="stale-acme-close-order"', 1)[1].split("</tr>", 1)[0]
    assert "Mark verified" in row and ">Open</a>" in row and ">Archive</button>" in row
    assert re.search(r'<time datetime="2026-01-05" title="5 Jan 2026">', row)
    resp = await client.post(
        "/admin/aids/acme-close-order/verify",
        data={"csrf_token": csrf, "etag": etag_of(row), "back": "stale"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/admin/stale?notice=verified"
    library = client.server.app[keys.LIBRARY]
    aid = await library.storage.get_aid("acme-close-order")
    assert aid.verified_at == dt.date.today().isoformat() and aid.status == "published"
    page = await (await client.get("/admin/stale?notice=verified")).text()
    assert 'id="stale-acme-close-order"' not in page and "Marked verified today." in page
    audit = await (await client.get("/admin/audit?target_id=acme-close-order")).text()
    assert "rosa marked the aid Close a work order verified" in visible_text(audit)
    # Archive from the row: the workflow step.
    row = page.split('id="stale-acme-parts-return"', 1)[1].split("</tr>", 1)[0]
    resp = await client.post(
        "/admin/aids/acme-parts-return/transition",
        data={"csrf_token": csrf, "etag": etag_of(row), "to": "archived", "back": "stale"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/admin/stale?notice=archived"
    assert (await library.storage.get_aid("acme-parts-return")).status == "archived"
    # An author: the table gives no edits of a published aid, so no buttons, and a hand-made
    # POST is refused.
    csrf = await sign_in(client, tokens.token(sub="ana", roles=("learner", "author")))
    page = await (await client.get("/admin/stale")).text()
    row = page.split('id="stale-acme-stock-count"', 1)[1].split("</tr>", 1)[0]
    assert ">Open</a>" in row and "Mark verified" not in row and "Archive" not in row
    stock = await library.storage.get_aid("acme-stock-count")
    resp = await client.post(
        "/admin/aids/acme-stock-count/verify",
        data={"csrf_token": csrf, "etag": aid_etag(stock)},
        allow_redirects=False,
    )
    assert resp.status == 403
    assert (await library.storage.get_aid("acme-stock-count")).verified_at == "2026-01-05"


async def test_every_aid_page_has_mark_verified(client: TestClient, admin_token: str) -> None:
    await acme(client, admin_token)
    csrf = await sign_in(client, admin_token)
    page = await (await client.get("/admin/aids/acme-overtime-draft")).text()
    assert 'action="/admin/aids/acme-overtime-draft/verify"' in page
    resp = await client.post(
        "/admin/aids/acme-overtime-draft/verify",
        data={"csrf_token": csrf, "etag": etag_of(page)},
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/admin/aids/acme-overtime-draft?notice=verified"
    page = await (await client.get("/admin/aids/acme-overtime-draft")).text()
    assert re.search(r"verified <time datetime=\"[\d-]{10}\" title=\"[^\"]+\">today</time>", page)


# -- 6. the reviewer's comment -------------------------------------------------------------------


async def test_sending_an_aid_back_needs_a_comment_the_author_then_reads(
    client: TestClient, admin_token: str, tokens: TokenMaker
) -> None:
    """A reviewer sent an aid back to draft with no way to say why: the author found a draft
    and had to ask around."""
    service, me = await service_for(client, admin_token)
    await acme(client, admin_token)
    aid = await service.get_aid("acme-overtime-draft")
    await service.transition(me, aid.id, "review", aid_etag(aid))
    csrf = await sign_in(client, admin_token)
    page = await (await client.get("/admin/aids/acme-overtime-draft")).text()
    assert re.search(r'<textarea id="send-back-comment" name="comment" rows="3" required>', page)
    resp = await client.post(
        "/admin/aids/acme-overtime-draft/transition",
        data={"csrf_token": csrf, "etag": etag_of(page), "to": "draft", "comment": "  "},
    )
    assert resp.status == 422
    assert "needs a comment" in await resp.text()
    assert (await service.get_aid("acme-overtime-draft")).status == "review"
    comment = "Add the <b>rate</b> table\nand the union rule.<script>alert(1)</script>"
    resp = await client.post(
        "/admin/aids/acme-overtime-draft/transition",
        data={"csrf_token": csrf, "etag": etag_of(page), "to": "draft", "comment": comment},
        allow_redirects=False,
    )
    assert resp.status == 303
    entries, _ = await service.audit({"target_id": "acme-overtime-draft"}, None, 1)
    assert entries[0]["action"] == "aid.draft" and entries[0]["detail"]["comment"] == comment
    # The author sees who sent it back, when, and why, as text.
    await sign_in(client, tokens.token(sub="ana", roles=("learner", "author")))
    page = await (await client.get("/admin/aids/acme-overtime-draft")).text()
    box = page.split('id="sent-back"', 1)[1].split("</div>", 1)[0]
    assert "Sent back by rosa, " in box and ">just now</time>" in box
    assert "Add the &lt;b&gt;rate&lt;/b&gt; table\nand the union rule." in box
    assert "<script>" not in box and "<b>" not in box
    # Once submitted again, the note is gone.
    aid = await service.get_aid("acme-overtime-draft")
    await service.transition(me, aid.id, "review", aid_etag(aid))
    page = await (await client.get("/admin/aids/acme-overtime-draft")).text()
    assert 'id="sent-back"' not in page


# -- 7, 8. textareas for long text, the favicon --------------------------------------------------


async def test_long_text_fields_are_textareas_and_the_favicon_is_served(
    client: TestClient, admin_token: str
) -> None:
    """An app's description (up to 2,000 characters) was a one-line input."""
    await acme(client, admin_token)
    await sign_in(client, admin_token)
    for path in ("/admin/apps", "/admin/apps/acme-field"):
        page = await (await client.get(path)).text()
        assert re.search(r'<textarea name="description" rows="4" maxlength="2000"', page), path
        assert '<input name="name"' in page  # short text stays one line
        assert '<link rel="icon" href="/admin/static/favicon.svg" type="image/svg+xml">' in page
    resp = await client.get("/admin/static/favicon.svg")
    assert resp.status == 200 and resp.content_type == "image/svg+xml"
    assert (await resp.text()).startswith("<svg")


# -- the navigation shows only what the person may open (issue 12) -------------------------------


def nav_links(page: str) -> list[str]:
    nav = page.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'<a href="([^"]+)"', nav)


async def test_the_nav_offers_only_pages_the_person_may_open(
    client: TestClient, admin_token: str, tokens: TokenMaker
) -> None:
    """An app owner holding only the learner role, and a mentor, saw Dashboard, Apps, Tester,
    Aids, Stale and Mentors in the console's navigation: every one of them led to a 403 page."""
    service, me = await service_for(client, admin_token)
    await service.create_app(
        me,
        {
            "id": "acme-fleet",
            "name": "Acme fleet",
            "owners": ["olga@acme.test"],
            "rules": [{"pattern": "https://fleet.acme.test/**", "priority": 0}],
        },
    )
    people = {
        "owner": (
            tokens.token(sub="olga", roles=("learner",), email="olga@acme.test"),
            "/admin/tips",
        ),
        "mentor": (tokens.token(sub="mia", roles=("learner", "mentor")), "/admin/questions"),
        "author": (tokens.token(sub="ana", roles=("learner", "author")), "/admin"),
        "admin": (admin_token, "/admin"),
    }
    seen: dict[str, list[str]] = {}
    for who, (token, landing) in people.items():
        client.session.cookie_jar.clear()
        await sign_in(client, token)
        resp = await client.get(landing)
        assert resp.status == 200, who
        page = await resp.text()
        seen[who] = nav_links(page)
        [home] = re.findall(r'<a class="brand" href="([^"]+)"', page)
        seen[who].append(home)
        for href in seen[who]:
            resp = await client.get(href, allow_redirects=False)
            assert resp.status == 200, (who, href, resp.status)
    # an owner: their apps' link and rule health (docs/health.md), questions, tips
    assert seen["owner"] == [
        "/admin/health",
        "/admin/questions",
        "/admin/tips",
        "/admin/questions",
    ]
    assert seen["mentor"] == ["/admin/questions", "/admin/questions"]
    assert "/admin/apps" in seen["author"] and "/admin/audit" not in seen["author"]
    assert {"/admin", "/admin/aids", "/admin/mentors", "/admin/audit"} <= set(seen["admin"])


ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


async def test_console_lists_and_editors_show_times_in_words(
    client: TestClient, admin_token: str
) -> None:
    """The aids list printed '2026-01-05' as the verified date and the mentor editor
    'updated 2026-11-30T09:12:44.120931+00:00 ... vetted on 2026-11-30T...': raw ISO timestamps
    while every other console page says '3 days ago' with the exact time as a tooltip."""
    await acme(client, admin_token)
    csrf = await sign_in(client, admin_token)
    page = await (await client.get("/admin/mentors/ana-costa")).text()
    for vetted in ("0", "1"):  # whatever the demo says, vetted now: a vetted_at to show
        resp = await client.post(
            "/admin/mentors/ana-costa/vetting",
            data={"csrf_token": csrf, "vetted": vetted, "etag": etag_of(page)},
        )
        assert resp.status == 200
        page = await resp.text()
    for path in ("/admin/aids?app=acme-field", "/admin/mentors", "/admin/mentors/ana-costa"):
        page = await (await client.get(path)).text()
        main = page.split('<main id="main">', 1)[1].split("</main>", 1)[0]
        shown = visible_text(main)
        assert not ISO_DATE.search(shown), (path, ISO_DATE.findall(shown))
        assert re.search(r'<time datetime="\d{4}-\d{2}-\d{2}[^"]*" title="[^"]+">', main), path
