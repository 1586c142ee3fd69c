"""The side panel against the real backend, Keycloak and Chromium (see conftest.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.browser.conftest import Browser
from tests.keycloak import access_token_lifespan

pytestmark = pytest.mark.browser


def test_sign_in_and_pinned_aids_first(browser: Browser) -> None:
    """Open the demo CRM, sign in through the Keycloak form: pinned aids first, with reasons."""
    demo = browser.open_demo("/demo/crm/")
    demo.wait_for_selector("h1:has-text('Pipeline dashboard')")
    panel = browser.open_panel()
    browser.state(panel, "signed-out")
    browser.shot(panel, "01-signed-out")

    browser.sign_in(panel)
    browser.state(panel, "ready")
    browser.shot(panel, "02-ready-dashboard")

    assert panel.inner_text("#user") == "learner"
    assert "Northwind CRM" in panel.inner_text("#where")
    assert "Pipeline dashboard" in panel.inner_text("#where")
    pinned = panel.locator("#pinned .card")
    assert pinned.count() == 3
    assert pinned.nth(0).get_attribute("data-aid") == "crm-pipeline-review-checklist"
    for i in range(3):  # worded from the API's reason data ("Pinned by RevOps for ...")
        assert "Pinned" in pinned.nth(i).locator(".why").inner_text()
    # Pinned group first, then the rest (related / app-wide), each with its reason.
    cards = panel.locator("main .card")
    ids = [cards.nth(i).get_attribute("data-aid") for i in range(cards.count())]
    assert ids[:3] == [
        "crm-pipeline-review-checklist",
        "crm-stage-definitions",
        "crm-forecast-categories",
    ]
    related = panel.locator("#related .why")
    assert related.count() <= 3  # at most three related aids before "More"
    assert all(related.nth(i).inner_text().strip() for i in range(related.count()))


def test_panel_follows_spa_navigation(browser: Browser) -> None:
    """A pushState navigation inside the CRM (no page load) updates the panel."""
    demo = browser.open_demo("/demo/crm/")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")
    loads_before = demo.evaluate("performance.getEntriesByType('navigation').length")

    demo.click("#new-opportunity-link")
    demo.wait_for_url("**/demo/crm/opportunities/new")
    panel.wait_for_selector("#where:has-text('New opportunity')", timeout=15_000)
    browser.state(panel, "ready")
    browser.shot(panel, "03-ready-new-opportunity")
    first = panel.locator("#pinned .card").first.get_attribute("data-aid")
    assert first == "crm-create-opportunity"
    # It really was an SPA navigation: still the same document.
    assert demo.evaluate("performance.getEntriesByType('navigation').length") == loads_before

    # And back (popstate).
    demo.go_back()
    panel.wait_for_selector("#where:has-text('Pipeline dashboard')", timeout=15_000)


def test_search_open_aid_and_vote(browser: Browser) -> None:
    """Search as you type, open a result, vote helpful: the vote reaches the backend's database."""
    demo = browser.open_demo("/demo/crm/opportunities/1042")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")

    # Text selected on the page becomes a one-click search chip.
    demo.evaluate(
        """() => {
            const r = document.createRange();
            r.selectNodeContents(document.querySelector('h1'));
            getSelection().removeAllRanges();
            getSelection().addRange(r);
        }"""
    )
    chip = panel.wait_for_selector("#chip .chip", timeout=10_000)
    assert chip.inner_text().startswith("Search for “")

    panel.fill("#q", "discount approval")  # debounced, no Enter needed
    browser.state(panel, "search")
    panel.wait_for_selector('#results .card[data-aid="crm-discount-approval"]')
    assert panel.locator("#results .snippet b.match").count() >= 1
    browser.shot(panel, "04-search-results")

    panel.click('#results .card[data-aid="crm-discount-approval"]')
    browser.state(panel, "aid")
    panel.wait_for_selector("#aid-body p")
    assert panel.inner_text("#aid-title")
    browser.shot(panel, "05-aid")

    panel.click("#vote-yes")
    panel.wait_for_selector("#vote-status:has-text('Thanks')")
    # The vote waits for an optional comment ("What was missing?"); Back sends it without one.
    panel.wait_for_selector("#comment-form:not([hidden])")

    panel.click("#back")
    browser.state(panel, "search")
    assert panel.evaluate("document.activeElement.dataset.aid") == "crm-discount-approval"
    deadline = time.monotonic() + 15
    while ("crm-discount-approval", 1, "crm") not in browser.backend.feedback_rows():
        assert time.monotonic() < deadline, "the vote did not reach the feedback table"
        time.sleep(0.2)
    assert any(
        r["path"] == "/api/v1/feedback" and '"crm-discount-approval"' in r["body"]
        for r in browser.backend.requests()
    )

    # A misspelling that finds nothing: the corrected query's results, never "0 results" under a
    # "Did you mean"; "Search instead for" runs the original.
    panel.fill("#q", "discuont")
    panel.wait_for_selector("#corrected", timeout=10_000)
    assert panel.inner_text("#corrected strong") == "discount"
    panel.wait_for_selector('#results .card[data-aid="crm-discount-approval"]')
    assert "0 results" not in panel.inner_text("main")
    browser.shot(panel, "06-search-corrected")
    panel.click("#search-instead")
    panel.wait_for_selector("#result-count:has-text('0 results for “discuont”')")
    # The suggestion comes after the count, not above it.
    assert panel.evaluate(
        """() => document.getElementById('result-count').compareDocumentPosition(
            document.getElementById('did-you-mean')) & Node.DOCUMENT_POSITION_FOLLOWING"""
    )
    panel.click("#did-you-mean button")
    panel.wait_for_selector('#results .card[data-aid="crm-discount-approval"]')


def test_unmapped_page_never_reaches_the_server(browser: Browser) -> None:
    """Privacy: the URL, title and text of a page no app maps stay in the browser.

    Asserted on the server side, from the backend's request log (every API request with its body).
    """
    crm = browser.open_demo("/demo/crm/")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")

    unmapped = browser.open_demo("/demo/unmapped/?secret=lunch-order-42")
    unmapped.bring_to_front()
    unmapped.evaluate(
        """() => {
            const r = document.createRange();
            r.selectNodeContents(document.querySelector('h1'));
            getSelection().removeAllRanges();
            getSelection().addRange(r);
        }"""
    )
    browser.state(panel, "unmapped")
    panel.wait_for_selector("#unmapped")
    assert panel.locator(".card").count() == 0
    unmapped.wait_for_timeout(1500)  # debounce windows of the content script and the worker
    browser.shot(panel, "07-unmapped")

    # Tab switch back to the CRM: the panel follows.
    crm.bring_to_front()
    browser.state(panel, "ready")
    panel.wait_for_selector("#where:has-text('Pipeline dashboard')")

    logged = [json.dumps(r) for r in browser.backend.requests()]
    assert logged, "the request log is empty: is INFLOW_REQUEST_LOG honoured?"
    assert any("/demo/crm/" in line for line in logged)  # mapped pages are sent...
    for line in logged:  # ... unmapped ones never
        assert "unmapped" not in line
        assert "lunch" not in line.lower()


def test_worker_restart_and_silent_token_refresh(browser: Browser) -> None:
    """The worker can be stopped at any time; expired or rejected access tokens are refreshed
    silently, and concurrent callers share one refresh (refresh tokens rotate in the realm)."""
    with access_token_lifespan(30):
        browser.open_demo("/demo/crm/")
        panel = browser.open_panel()
        browser.sign_in(panel)
        browser.state(panel, "ready")
    first = browser.session_storage("tokens")
    assert first["expires_at"] - first["obtained_at"] <= 31_000

    # 1. Stop the service worker; the next request wakes a fresh one with state from storage.
    browser.worker.evaluate("globalThis.__beforeStop = true")
    browser.stop_worker(panel)
    panel.wait_for_timeout(500)
    search(panel, browser, "expense report")
    restarted = browser.worker.evaluate("globalThis.__beforeStop ?? null") is None
    assert restarted, "the worker kept its globals: it was not stopped"

    # 2. Let the access token expire (30 s lifespan, refreshed 20 s early): silent refresh.
    wait_ms = first["expires_at"] - 20_000 - int(time.time() * 1000) + 500
    panel.wait_for_timeout(max(wait_ms, 0))
    search(panel, browser, "pipeline stages")
    second = browser.session_storage("tokens")
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]  # rotated

    # 3. The server rejects the access token (401): one silent refresh, then the retry works.
    browser.worker.evaluate(
        """async () => {
            const {tokens} = await chrome.storage.session.get('tokens');
            tokens.access_token = 'not-a-token';
            tokens.expires_at = Date.now() + 600000;
            await chrome.storage.session.set({tokens});
        }"""
    )
    search(panel, browser, "forecast categories")
    third = browser.session_storage("tokens")
    assert third["access_token"] not in ("not-a-token", second["access_token"])

    # 4. Three requests at once with a stale token: one refresh serves them all (a second refresh
    # would spend an already-rotated refresh token and end the session).
    browser.worker.evaluate(
        """async () => {
            const {tokens} = await chrome.storage.session.get('tokens');
            tokens.expires_at = 0;
            await chrome.storage.session.set({tokens});
        }"""
    )
    answers = panel.evaluate(
        """() => Promise.all(['travel', 'receipts', 'benefits'].map(
            (q) => chrome.runtime.sendMessage({type: 'search', q})))"""
    )
    assert [a["ok"] for a in answers] == [True, True, True], answers
    assert browser.session_storage("expired") is not True
    assert browser.session_storage("tokens")["refresh_token"] != third["refresh_token"]


def search(panel: Any, browser: Browser, q: str) -> None:
    panel.fill("#q", q)
    browser.state(panel, "search")
    panel.wait_for_selector("#results .card", timeout=15_000)
    panel.fill("#q", "")
    browser.state(panel, "ready")


def test_injection_aid_renders_inert(browser: Browser) -> None:
    """The aid `security-test-injection` holds script, handlers, javascript: links and an iframe:
    in the panel they are inert (no dialog fires) and absent from the DOM."""
    browser.open_demo("/demo/crm/")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")
    panel.fill("#q", "formatting tips for notes")
    panel.wait_for_selector('#results .card[data-aid="security-test-injection"]', timeout=15_000)
    panel.click('#results .card[data-aid="security-test-injection"]')
    browser.state(panel, "aid")
    panel.wait_for_selector("#aid-body:has-text('bold with a handler')")
    panel.wait_for_timeout(1000)
    browser.shot(panel, "08-injection-inert")

    assert browser.dialogs == []
    found = panel.evaluate(
        """() => {
            const body = document.querySelector('main');
            const bad = [];
            // The panel's own "What was missing?" form is ours, not the aid's (and Playwright's
            // full-page screenshot leaves an empty style attribute on its textarea).
            const own = document.getElementById('comment-form');
            for (const el of body.querySelectorAll('*')) {
                if (own && own.contains(el)) continue;
                if (['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'FORM', 'STYLE'].includes(el.tagName))
                    bad.push(el.tagName);
                for (const a of el.attributes) {
                    if (a.name.startsWith('on') || a.name === 'style' || a.name === 'srcdoc')
                        bad.push(`${el.tagName}[${a.name}]`);
                    if (['href', 'src'].includes(a.name) && !/^(https?:|mailto:)/i.test(a.value))
                        bad.push(`${el.tagName}[${a.name}=${a.value}]`);
                }
            }
            return bad;
        }"""
    )
    assert found == []
    assert panel.locator("#aid-body form, #aid-body textarea").count() == 0
    # The harmless parts survive.
    link = '#aid-body a[href="https://intranet.example.com/sales/proposals/acme"]'
    assert panel.locator(link).count() == 1


def test_session_expired_then_sign_in_again_and_sign_out(browser: Browser) -> None:
    """A dead refresh token ends in "session expired, sign in again"; sign-out clears tokens."""
    browser.open_demo("/demo/crm/")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")
    browser.worker.evaluate(
        """async () => {
            const {tokens} = await chrome.storage.session.get('tokens');
            tokens.access_token = 'dead'; tokens.refresh_token = 'dead'; tokens.expires_at = 0;
            await chrome.storage.session.set({tokens});
        }"""
    )
    panel.fill("#q", "expenses")
    browser.state(panel, "expired")
    assert "session expired" in panel.inner_text("main").lower()
    browser.shot(panel, "09-session-expired")

    browser.sign_in(panel)
    browser.state(panel, "ready")
    panel.click("#sign-out")
    browser.state(panel, "signed-out")
    assert browser.session_storage("tokens") is None


def open_aid(browser: Browser, panel: Any, query: str, aid_id: str) -> None:
    panel.fill("#q", query)
    card = f'#results .card[data-aid="{aid_id}"]'
    panel.wait_for_selector(card, timeout=15_000)
    panel.click(card)
    browser.state(panel, "aid")
    panel.wait_for_selector("#aid-body *")


def test_checklist_ticks_are_kept_for_the_session(browser: Browser) -> None:
    """Checklist aids showed a literal `[ ]` before each step; now each step is a checkbox, and a
    tick survives leaving the aid and coming back (storage.session, per aid and version)."""
    browser.open_demo("/demo/crm/")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")
    open_aid(browser, panel, "pipeline hygiene checklist", "crm-pipeline-review-checklist")
    boxes = panel.locator("#aid-body li.task input[type=checkbox]")
    assert boxes.count() >= 5
    assert "[ ]" not in panel.inner_text("#aid-body")
    boxes.nth(0).check()
    boxes.nth(2).check()
    panel.wait_for_timeout(300)
    browser.shot(panel, "30-checklist")
    panel.click("#back")
    panel.fill("#q", "")
    browser.state(panel, "ready")
    panel.click('.card[data-aid="crm-pipeline-review-checklist"]')
    browser.state(panel, "aid")
    panel.wait_for_selector("#aid-body li.task input[type=checkbox]")
    panel.wait_for_timeout(300)
    boxes = panel.locator("#aid-body li.task input[type=checkbox]")
    assert [boxes.nth(i).is_checked() for i in range(3)] == [True, False, True]


def test_stale_aid_is_flagged_and_verified_line_shown(browser: Browser) -> None:
    """An aid past its review date looked as authoritative as a fresh one: it now says when it was
    verified and by whom, and warns that it may be out of date."""
    browser.open_demo("/demo/crm/")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")
    open_aid(browser, panel, "account ownership territory", "crm-account-ownership-policy")
    assert panel.inner_text("#verified") == "Verified May 2025 by Sales Ops Leadership"
    assert "may be out of date" in panel.inner_text("#stale")
    assert panel.is_visible("#stale")
    browser.shot(panel, "31-stale-warning")

    panel.click("#back")
    open_aid(browser, panel, "pipeline hygiene checklist", "crm-pipeline-review-checklist")
    assert panel.inner_text("#verified").startswith("Verified November 2026 by Revops")
    assert panel.locator("#stale").count() == 0


def test_video_block_and_tables_in_360px(browser: Browser) -> None:
    """A video aid was a small "Open in a new tab" link: it is a video block with its title and
    duration, and the chapter times open the video at that moment (#t=). Its table scrolls
    sideways in the 360 px panel instead of breaking words mid-word."""
    browser.open_demo("/demo/crm/")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")
    open_aid(browser, panel, "build a quote video", "crm-quote-video")
    watch = panel.locator("#watch-video")
    assert watch.get_attribute("href") == "https://video.example.com/northwind/crm-build-a-quote"
    assert "Watch: build a quote in five minutes" in watch.inner_text()
    assert "5:12" in panel.inner_text("#video-facts")
    chapter = panel.locator('#aid-body td a[href$="#t=115"]')
    assert chapter.inner_text() == "1:55"
    browser.shot(panel, "32-video")

    # No word in a table cell is broken across lines: each cell is at least as wide as its
    # longest word, and the wrapper (not the panel) scrolls when the table is wider.
    broken = panel.evaluate(
        """() => {
            const out = [];
            for (const cell of document.querySelectorAll('#aid-body td, #aid-body th')) {
                const r = document.createRange();
                for (const word of cell.textContent.split(/\\s+/).filter(Boolean)) {
                    const probe = document.createElement('span');
                    probe.textContent = word;
                    probe.style.whiteSpace = 'nowrap';
                    probe.style.position = 'absolute';
                    cell.append(probe);
                    if (probe.getBoundingClientRect().width > cell.clientWidth + 1) out.push(word);
                    probe.remove();
                }
            }
            return out;
        }"""
    )
    assert broken == []
    assert panel.locator("#aid-body .table-wrap table").count() >= 1
    assert panel.evaluate("document.documentElement.scrollWidth") <= 360
    # The chapters table, scrolled sideways inside its wrapper.
    panel.evaluate("document.querySelector('#aid-body .table-wrap').scrollLeft = 9999")
    browser.shot(panel, "33-table")


def test_fewer_aids_more_button_and_calm_empty_related(browser: Browser) -> None:
    """Seven to nine related aids used to follow the pinned ones, padded with off-topic filler:
    at most three show, "More" reveals the rest, and an empty related list says so calmly.

    The view is the worker's (storage.session "view"); this sets one with many related aids,
    then one with none, as the worker would after two answers, and looks at the panel."""
    browser.open_demo("/demo/crm/")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")

    def related(i: int) -> dict[str, Any]:
        return {
            "id": f"r{i}",
            "title": f"Related aid {i}",
            "summary": "",
            "type": "howto",
            "reason_code": "related",
            "reason": "Related to this page's text",
            "why": {"kind": "related", "terms": ["discount", "quote"], "signals": []},
        }

    pinned = {
        "id": "p1",
        "title": "Create an opportunity",
        "summary": "",
        "type": "howto",
        "reason_code": "pinned",
        "reason": "Pinned to this page",
        "why": {
            "kind": "pinned",
            "pinned_by": {"context": "New opportunity", "owner": "Sales Enablement"},
            "terms": [],
            "signals": [],
        },
    }
    helpful = related(1)
    helpful["why"]["signals"] = [{"kind": "helpful", "count": 12}]
    mentor = {
        "id": "m1",
        "name": "Dana Lee",
        "contact": "dana@example.com",
        "can_help_with": "Quotes",
        "reason": "Helps with quotes",
    }
    set_view = """async ([aids, mentors]) => {
        const {view} = await chrome.storage.session.get('view');
        await chrome.storage.session.set({view: {...view, aids, mentors, loading: false}});
    }"""
    browser.worker.evaluate(set_view, [[pinned, helpful, *map(related, range(2, 8))], [mentor]])
    panel.wait_for_selector("#more")
    assert panel.locator("#related .card").count() == 3
    assert "Pinned by Sales Enablement for New opportunity" in panel.inner_text("#pinned")
    why = panel.locator("#related .why")
    assert why.nth(0).inner_text() == (
        "Mentions discount and quote · Colleagues on this page found it helpful (12)"
    )
    # People who can help come right after the short list, not far down the panel.
    top = panel.evaluate("document.getElementById('mentors-heading').getBoundingClientRect().top")
    assert top < 720
    browser.shot(panel, "34-pinned-related-more")
    assert panel.inner_text("#more") == "More (4)"
    panel.click("#more")
    panel.wait_for_selector("#related .card >> nth=6")
    assert panel.locator("#related .card").count() == 7
    assert panel.locator("#more").count() == 0
    assert panel.evaluate("document.activeElement.dataset.aid") == "r4"

    browser.worker.evaluate(set_view, [[pinned], []])
    panel.wait_for_selector("#no-related")
    assert panel.inner_text("#no-related") == "Nothing else here matches this page."
    assert panel.locator("#related").count() == 0
    browser.shot(panel, "35-empty-related")


def test_long_page_title_still_gets_help(browser: Browser) -> None:
    """The extension sent titles up to 1,024 characters; the server refuses over 500 with 422, so
    a page with a long title got an error instead of its aids. Signals are now clamped."""
    demo = browser.open_demo("/demo/crm/")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")
    demo.bring_to_front()
    demo.evaluate("document.title = 'Pipeline dashboard ' + 'x'.repeat(1000)")
    deadline = time.monotonic() + 15
    while not any(
        r["path"] == "/api/v1/suggest" and "xxxxxxxxxx" in r["body"]
        for r in browser.backend.requests()
    ):
        assert time.monotonic() < deadline, "the long title was never sent"
        time.sleep(0.2)
    browser.state(panel, "ready")
    assert panel.locator("#pinned .card").count() >= 1
    sent = [
        json.loads(r["body"])["title"]
        for r in browser.backend.requests()
        if r["path"] == "/api/v1/suggest" and "xxxxxxxxxx" in r["body"]
    ]
    assert sent and all(len(t) == 500 for t in sent)
    logged = browser.backend.requests_logged("/api/v1/suggest")
    assert logged and not [line for line, status in logged if status == 422]
