"""Every demo page, as the extension sees it, shows no off-topic related aid.

The pages are the demo work apps' HTML files (server/demo_site/); what the extension sends for a
page is its URL as served under /demo/, its <title> and its h1-h3 headings
(extension/src/content.js). The expectations below come from reading each page and the aids
(content/demo/aids/), not from what the ranker returns: a person looking at the panel beside the
page would call an aid in NOT_RELATED off-topic, and would expect those in RELATED to be offered.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "server" / "demo_site"
BASE = "http://127.0.0.1:8080/demo/"


class _PageReader(HTMLParser):
    """The document title and the text of every h1-h3, as textContent gives it."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.headings: list[str] = []
        self._in: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("title", "h1", "h2", "h3") and self._in is None:
            self._in, self._text = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            text = " ".join("".join(self._text).split())
            if tag == "title":
                self.title = text
            elif text:
                self.headings.append(text)
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._text.append(data)


def page_signals(path: Path) -> dict[str, Any]:
    reader = _PageReader()
    reader.feed(path.read_text(encoding="utf-8"))
    rel = path.relative_to(SITE).as_posix()
    return {"url": BASE + rel, "title": reader.title, "headings": reader.headings[:20]}


PAGES = sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html"))
UNMAPPED_SECTIONS = ("intranet/", "feeds/")  # pages the demo's sources read, of no work app

# Aids that make sense anywhere: never off-topic, but not expected either.
_SECURITY = {"phishing-check", "security-test-injection"}
_CRM = {
    "crm-account-hierarchy",
    "crm-build-report",
    "crm-close-won-checklist",
    "crm-closed-lost-reasons",
    "crm-create-opportunity",
    "crm-discount-approval",
    "crm-forecast-categories",
    "crm-legacy-quote-tool",
    "crm-quote-video",
    "crm-sales-playbook",
}
_EXPENSES = {
    "exp-approval-delegation",
    "exp-client-entertainment",
    "exp-corporate-card",
    "exp-foreign-currency",
    "exp-itemize-hotel",
    "exp-mileage-claims",
    "exp-mileage-rates",
    "exp-missing-receipt",
    "exp-travel-booking",
}
_PAY = {"hr-read-payslip", "hr-tax-withholding", "hr-direct-deposit"}
_LEAVE = {
    "hr-request-time-off",
    "hr-pto-policy",
    "hr-holiday-calendar",
    "hr-sick-leave",
    "hr-parental-leave",
    "hr-approve-time-off",
}
_BENEFITS = {
    "hr-benefits-enrollment",
    "hr-benefits-faq",
    "hr-life-events",
    "hr-open-enrollment-2026",
}
_ONBOARDING = {"hr-new-hire-checklist", "hr-first-week-faq"}

# page -> (related aids a person would call off-topic there, related aids they would expect)
EXPECTATIONS: dict[str, tuple[set[str], set[str]]] = {
    # The HR home greets the user and lists tasks and announcements: nothing specific to it.
    "hr/index.html": (_SECURITY | _PAY | _LEAVE | _BENEFITS | _EXPENSES | _CRM, set()),
    "hr/timeoff.html": (
        _SECURITY | _PAY | _BENEFITS | _ONBOARDING | {"hr-emergency-contacts"},
        set(),
    ),
    "hr/benefits.html": (_SECURITY | _PAY | _LEAVE - {"hr-parental-leave"} | _ONBOARDING, set()),
    # A new hire enrols in benefits, sets up pay and tax: those fit. Leave rules, managers'
    # approvals, last year's enrollment and life events do not.
    "hr/onboarding.html": (
        _SECURITY
        | {"hr-sick-leave", "hr-parental-leave", "hr-approve-time-off"}
        | {"hr-open-enrollment-2026", "hr-life-events"},
        set(),
    ),
    "hr/payslips.html": (_SECURITY | _LEAVE | _BENEFITS | _ONBOARDING, set()),
    # Its headings include "Bank details (direct deposit)": the direct deposit aid belongs.
    # (A phishing check beside bank details is fair: payroll diversion fraud starts there.)
    "hr/profile.html": (_LEAVE | _BENEFITS | _ONBOARDING, {"hr-direct-deposit"}),
    "crm/index.html": (_SECURITY | _EXPENSES, set()),
    "expenses/index.html": (_SECURITY | _CRM, set()),
    # Not a mapped app, and the index of demo apps: no aid at all.
    "unmapped/index.html": (set(), set()),
    "index.html": (set(), set()),
    # The demo sources' pages (an intranet section, a vendor's release notes): no app, no aid.
    **{p: (set(), set()) for p in PAGES if p.startswith(UNMAPPED_SECTIONS)},
}


def test_every_demo_page_has_expectations() -> None:
    """A new demo page must say what a person would not want to see beside it."""
    assert sorted(EXPECTATIONS) == PAGES


@pytest.mark.parametrize("page", PAGES)
async def test_no_off_topic_aid_beside_a_demo_page(client: Any, learner: Any, page: str) -> None:
    """Incident: the HR home page ("Good morning, Alex", "My tasks") showed a related aid that
    only shared "morning" and "tasks" with it, deep in its body: a person sees an aid about
    something else entirely. Related aids must be about the page; pinned ones are the authors'
    choice and are not judged here."""
    body = page_signals(SITE / page)
    resp = await client.post("/api/v1/suggest", json=body, headers=learner)
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    related = {a["id"]: a["reason"] for a in data["aids"] if a["reason_code"] == "related"}
    not_related, expected = EXPECTATIONS[page]
    assert {a: r for a, r in related.items() if a in not_related} == {}
    assert expected <= {a["id"] for a in data["aids"]}
    if page in ("unmapped/index.html", "index.html") or page.startswith(UNMAPPED_SECTIONS):
        assert data["aids"] == []


# The CRM and expenses apps are single-page apps: app.js renders each view's title and headings
# into <main id="view">, replacing the shell's <h1>. Here is what the extension reads on each view
# (copied from server/demo_site/*/app.js; the test below checks the words are still there).
_OFF = {"phishing-check", "writing-job-aids"}  # a security check, a guide for authors
SPA_VIEWS: dict[str, tuple[str, list[str], set[str], set[str]]] = {
    # url: (title, headings, related aids a person would call off-topic, aids expected)
    "crm/": (
        "Pipeline · Northwind CRM",
        ["Pipeline dashboard", "Open opportunities", "Tasks due this week"],
        _OFF | {"crm-custom-fields-admin", "crm-export-data-policy", "crm-duplicate-accounts"},
        set(),
    ),
    "crm/accounts": (
        "Accounts · Northwind CRM",
        ["Accounts", "My accounts (7)"],
        _OFF | {"crm-build-report", "crm-forecast-categories", "crm-quote-video"},
        {"crm-duplicate-accounts"},
    ),
    "crm/opportunities/new": (
        "New Opportunity · Northwind CRM",
        ["New opportunity", "Opportunity information"],
        _OFF | {"crm-build-report", "crm-export-data-policy", "crm-duplicate-accounts"},
        {"crm-create-opportunity"},
    ),
    "crm/opportunities/1042": (
        "Opportunity #1042 · Acme Freight \u2013 2027 renewal · Northwind CRM",
        ["Acme Freight \u2013 2027 renewal", "Details", "Activity", "Products"],
        _OFF | {"crm-build-report", "crm-account-hierarchy", "crm-duplicate-accounts"},
        {"crm-log-activity"},
    ),
    "crm/reports": (
        "Reports · Northwind CRM",
        ["Reports", "Folders", "Recent reports"],
        _OFF
        | {"crm-create-opportunity", "crm-lead-conversion", "crm-account-hierarchy"}
        | {"crm-duplicate-accounts"},
        {"crm-build-report"},
    ),
    "expenses/#/reports": (
        "Expense reports · Expensely",
        ["Expense reports", "My reports"],
        _OFF | {"exp-mileage-rates", "exp-itemize-hotel", "exp-client-entertainment"},
        {"exp-submit-report"},
    ),
    "expenses/#/reports/new": (
        "New report · Expensely",
        ["New expense report", "Report header"],
        _OFF | {"exp-approve-reports", "exp-approval-delegation", "exp-mileage-rates"},
        {"exp-submit-report"},
    ),
    "expenses/#/reports/123/edit": (
        "Edit report 123 · Expensely",
        ["Chicago customer visit \u2013 Acme Freight", "Expenses", "Add expense"],
        _OFF | {"exp-approve-reports", "exp-approval-delegation"},
        set(),
    ),
    "expenses/#/receipts": (
        "Receipts · Expensely",
        ["Receipts"],
        _OFF | {"exp-approve-reports", "exp-approval-delegation", "exp-mileage-rates"},
        {"exp-receipt-capture"},
    ),
    "expenses/#/approvals": (  # an approver's page: asked as a manager
        "Approvals · Expensely",
        ["Approvals", "Waiting for you (4)"],
        _OFF | {"exp-receipt-capture", "exp-mileage-rates", "exp-travel-booking"},
        {"exp-approve-reports"},
    ),
    "expenses/#/mileage": (
        "Mileage · Expensely",
        ["Mileage claim"],
        _OFF | {"exp-itemize-hotel", "exp-approve-reports", "exp-client-entertainment"},
        {"exp-mileage-claims"},
    ),
}

# Off-topic aids the panel still shows today: a person would not want them there, and the
# ranker does not yet tell them apart. Listed, not hidden: remove an entry once it is fixed
# (the test fails when a listed aid no longer shows, so the list cannot go stale).
KNOWN_OFF_TOPIC: dict[str, set[str]] = {}


def test_spa_views_match_their_apps_code() -> None:
    """The table above is what the apps render: a renamed view must be re-read and re-judged."""
    code = {app: (SITE / app / "app.js").read_text(encoding="utf-8") for app in ("crm", "expenses")}
    for url, (title, headings, _, _) in SPA_VIEWS.items():
        app = url.split("/")[0]
        for text in [title.split(" · ")[0], *headings]:
            words = text.replace("#1042", "").replace("(7)", "").replace("(4)", "").split()
            assert all(w in code[app] for w in words), (url, text)


@pytest.mark.parametrize("url", sorted(SPA_VIEWS))
async def test_no_off_topic_aid_beside_a_demo_app_view(
    client: Any, learner: Any, manager: Any, url: str
) -> None:
    """The same as above for the single-page apps' views, as they render: a person beside the
    expense approvals queue or the CRM reports list sees only aids about what is in front of
    them."""
    title, headings, not_related, expected = SPA_VIEWS[url]
    body = {"url": BASE + url, "title": title, "headings": headings}
    who = manager if "approvals" in url else learner
    resp = await client.post("/api/v1/suggest", json=body, headers=who)
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    related = {a["id"]: a["reason"] for a in data["aids"] if a["reason_code"] == "related"}
    known = KNOWN_OFF_TOPIC.get(url, set())
    assert {a: r for a, r in related.items() if a in not_related - known} == {}
    assert known <= set(related), "fixed: remove it from KNOWN_OFF_TOPIC"
    assert expected <= {a["id"] for a in data["aids"]}
