"""The side panel against the real backend, Keycloak and Chromium (see conftest.py)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Browser

pytestmark = pytest.mark.browser


def test_sign_in_and_pinned_aids_first(browser: Browser) -> None:
    """Open the demo CRM, sign in through the Keycloak form: pinned aids come first, with reasons."""
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
    for i in range(3):
        assert "Pinned to this page" in pinned.nth(i).inner_text()
    # Pinned group first, then the rest (related / app-wide), each with its reason.
    cards = panel.locator("main .card")
    ids = [cards.nth(i).get_attribute("data-aid") for i in range(cards.count())]
    assert ids[:3] == [
        "crm-pipeline-review-checklist", "crm-stage-definitions", "crm-forecast-categories",
    ]
    related = panel.locator("#related .why")
    assert related.count() >= 1
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
    panel.wait_for_function(
        "document.querySelector('#where')?.textContent.includes('New opportunity')",
        timeout=15_000,
    )
    browser.state(panel, "ready")
    browser.shot(panel, "03-ready-new-opportunity")
    first = panel.locator("#pinned .card").first.get_attribute("data-aid")
    assert first == "crm-create-opportunity"
    # It really was an SPA navigation: still the same document.
    assert demo.evaluate("performance.getEntriesByType('navigation').length") == loads_before

    # And back (popstate).
    demo.go_back()
    panel.wait_for_function(
        "document.querySelector('#where')?.textContent.includes('Pipeline dashboard')",
        timeout=15_000,
    )
