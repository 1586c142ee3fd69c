"""People who can help (vetted peer mentors) and the comment that goes with a vote, in the real
panel against the real backend, Keycloak and Chromium (see conftest.py).

Demo mentors (content/demo/mentors/): for the CRM, María López (email) and Dev Patel (@handle) are
vetted and for everyone; Sam Okafor is for the CRM but not vetted; Tom Becker is vetted but for
managers only (Expensely and HR). Ana Costa is Expensely's mentor for everyone.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.browser.conftest import Browser

pytestmark = pytest.mark.browser

OPPORTUNITY = "/demo/crm/opportunities/1042"
APPROVALS = "/demo/expenses/#/approvals"


def mentor_ids(panel: Any) -> list[str]:
    items = panel.locator("#mentors > li")
    return [items.nth(i).get_attribute("data-mentor") or "" for i in range(items.count())]


def wait_rows(browser: Browser, aid_id: str, count: int, timeout: float = 15.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        rows = browser.backend.feedback_comments(aid_id)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_mentors_listed_with_contact_and_reason(browser: Browser) -> None:
    """The opportunity page lists the CRM's vetted mentors after the aids, each with name,
    contact (a mailto: link for an email, a handle with Copy) and reason; the unvetted one is
    not there. On an Expensely page the managers-only mentor is hidden from the learner and
    shown to a manager."""
    browser.open_demo(OPPORTUNITY)
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")
    panel.wait_for_selector("#mentors")

    # In the server's order (best fit for the page first; unit-tested in the extension).
    assert sorted(mentor_ids(panel)) == ["dev-patel", "maria-lopez"]
    assert "sam-okafor" not in mentor_ids(panel)  # not vetted
    heading = panel.locator("#mentors-heading")
    assert heading.text_content() == "People who can help"
    assert panel.get_attribute("#mentors", "aria-labelledby") == "mentors-heading"
    # After the aids.
    assert panel.evaluate(
        """() => {
            const last = [...document.querySelectorAll('main .card')].pop();
            const mentors = document.getElementById('mentors');
            return Boolean(last.compareDocumentPosition(mentors)
                & Node.DOCUMENT_POSITION_FOLLOWING);
        }"""
    )

    maria = panel.locator('#mentors li[data-mentor="maria-lopez"]')
    assert maria.locator("h3").inner_text() == "María López"
    assert "Forecast calls, pipeline hygiene" in maria.inner_text()
    assert maria.locator(".why").inner_text().startswith(("Knows about", "Mentor for"))
    mail = maria.locator("a")
    assert mail.get_attribute("href") == "mailto:maria.lopez@example.com"
    assert mail.inner_text() == "maria.lopez@example.com"

    dev = panel.locator('#mentors li[data-mentor="dev-patel"]')
    assert dev.locator("h3").inner_text() == "Dev Patel"
    assert dev.locator("code.handle").inner_text() == "@dev.patel"
    assert dev.locator(".why").inner_text().startswith(("Knows about", "Mentor for"))
    assert dev.locator("a").count() == 0  # a handle is never a link

    # Copy, by keyboard: to the clipboard; where the clipboard refuses, the text is selected.
    panel.evaluate(
        """() => { window.__copied = [];
            navigator.clipboard.writeText = async (t) => { window.__copied.push(t); }; }"""
    )
    panel.focus('[data-focus="copy:dev-patel"]')
    panel.keyboard.press("Enter")
    dev.locator(".copied:has-text('Copied')").wait_for()
    assert panel.evaluate("window.__copied") == ["@dev.patel"]
    panel.evaluate(
        "() => { navigator.clipboard.writeText = async () => { throw new Error('denied'); }; }"
    )
    panel.keyboard.press("Space")
    dev.locator(".copied:has-text('Ctrl+C')").wait_for()
    assert panel.evaluate("getSelection().toString()") == "@dev.patel"

    # Readable at 280 px: nothing wider than the panel.
    panel.set_viewport_size({"width": 280, "height": 900})
    panel.locator("#mentors").scroll_into_view_if_needed()
    assert panel.evaluate("document.documentElement.scrollWidth") <= 280
    browser.shot(panel, "21-mentors-280px")
    panel.set_viewport_size({"width": 360, "height": 720})

    # Expensely: Ana Costa for everyone; Tom Becker (managers only) not for the learner.
    expenses = browser.open_demo(APPROVALS)
    expenses.bring_to_front()
    panel.wait_for_selector('#mentors li[data-mentor="ana-costa"]', timeout=15_000)
    browser.state(panel, "ready")
    assert mentor_ids(panel) == ["ana-costa"]
    browser.shot(panel, "22-mentors-learner-expenses")

    # ... while a manager sees him (so the learner's list above is the audience at work).
    panel.click("#sign-out")
    browser.state(panel, "signed-out")
    browser.sign_in(panel, ("manager", "manager"))
    panel.wait_for_selector('#mentors li[data-mentor="tom-becker"]', timeout=15_000)
    assert sorted(mentor_ids(panel)) == ["ana-costa", "tom-becker"]
    browser.shot(panel, "23-mentors-manager-expenses")
    panel.click("#sign-out")
    browser.state(panel, "signed-out")


def test_comment_sent_with_the_vote(browser: Browser) -> None:
    """Vote, then "What was missing?": vote and comment reach the backend's feedback table as
    one row (not a vote row plus a comment row, which would count the vote twice). All by
    keyboard. A vote left without a comment (Escape back, or the panel closed) is one row too."""
    aid = "crm-close-won-checklist"
    before = len(browser.backend.feedback_comments(aid))
    browser.open_demo(OPPORTUNITY)
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")

    panel.focus(f'#pinned .card[data-aid="{aid}"]')
    panel.keyboard.press("Enter")
    browser.state(panel, "aid")
    panel.wait_for_selector("#aid-body p")
    panel.focus("#vote-no")
    panel.keyboard.press("Enter")
    panel.wait_for_selector("#comment-form:not([hidden])")
    assert panel.evaluate("document.activeElement.id") == "comment"
    assert panel.get_attribute("#comment", "maxlength") == "1000"
    comment = "Step 3 says <b>Finance</b> but the button is now in Legal's queue."
    panel.keyboard.type(comment)
    assert panel.inner_text("#comment-count") == f"{len(comment)}/1000"
    browser.shot(panel, "24-vote-comment")
    panel.keyboard.press("Tab")
    assert panel.evaluate("document.activeElement.id") == "comment-send"
    panel.keyboard.press("Enter")
    panel.wait_for_selector("#vote-status:has-text('Thanks for your feedback')")
    assert panel.locator("#comment-form").is_hidden()
    browser.shot(panel, "25-vote-comment-sent")

    app_id = "crm"  # feedback keeps the app id, never the page URL
    rows = wait_rows(browser, aid, before + 1)
    assert rows[before:] == [(0, comment, app_id)]

    # Leaving with Back (no comment): still one row.
    panel.click("#back")
    browser.state(panel, "ready")
    other = "crm-log-activity"
    others = len(browser.backend.feedback_comments(other))
    panel.click(f'#pinned .card[data-aid="{other}"]')
    browser.state(panel, "aid")
    panel.click("#vote-yes")
    panel.wait_for_selector("#comment-form:not([hidden])")
    assert browser.backend.feedback_comments(other)[others:] == []  # held for the comment
    panel.keyboard.press("Escape")  # back, by keyboard
    browser.state(panel, "ready")
    assert wait_rows(browser, other, others + 1)[others:] == [(1, "", app_id)]
    # Closing the panel while the comment box is open (pagehide) sends the vote too.
    third = "crm-closed-lost-reasons"
    thirds = len(browser.backend.feedback_comments(third))
    panel.click(f'#pinned .card[data-aid="{third}"]')
    browser.state(panel, "aid")
    panel.click("#vote-no")
    panel.wait_for_selector("#comment-form:not([hidden])")
    panel.close()
    assert wait_rows(browser, third, thirds + 1)[thirds:] == [(0, "", app_id)]

    time.sleep(1)
    assert len(browser.backend.feedback_comments(aid)) == before + 1
    assert len(browser.backend.feedback_comments(other)) == others + 1
    assert len(browser.backend.feedback_comments(third)) == thirds + 1
    assert (
        browser.worker.evaluate(
            "async () => (await chrome.storage.local.get('heldVotes')).heldVotes"
        )
        == []
    )
