"""The panel follows quick navigations: the last page wins, and the old aids stay on screen until
the new ones arrive (speed work in the worker moved the "loading" view and the "is this answer
still for the current page?" check off the request's path: docs/extension.md, Speed)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Browser

pytestmark = pytest.mark.browser

# In the panel: note if the list ever went empty, and every page it said it showed.
WATCH = """() => {
  const main = document.querySelector("main");
  window.__emptied = false;
  window.__shown = [];
  new MutationObserver(() => {
    if (main.dataset.state === "ready" && !main.querySelector(".card")) window.__emptied = true;
    const url = (main.dataset.shown || "").split("\\n")[1];
    if (url && window.__shown.at(-1) !== url) window.__shown.push(url);
  }).observe(main, { attributes: true, childList: true, subtree: true });
}"""

# In the CRM: three in-app navigations, each reported on its own (the content script waits for
# 25 ms of quiet), so the first answers are still on their way when the next page is reported.
HOP = """async (paths) => {
  for (const path of paths) {
    document.querySelector(`a[href="${path}"]`)?.click() ??
      (history.pushState({}, "", path), dispatchEvent(new PopStateEvent("popstate")));
    await new Promise((r) => setTimeout(r, 40));
  }
}"""


def test_quick_navigations_end_on_the_last_page_without_emptying(browser: Browser) -> None:
    """Incident guarded: answers for pages left a moment ago must not overwrite the page the user
    is on now, and the panel must not flash empty while the new answer loads."""
    demo = browser.open_demo("/demo/crm/")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")
    base = browser.backend.url
    panel.evaluate(WATCH)

    demo.evaluate(HOP, ["/demo/crm/opportunities/new", "/demo/crm/accounts/", "/demo/crm/reports"])
    demo.wait_for_url("**/demo/crm/reports")
    panel.wait_for_selector(
        f'main[data-shown*="{base}/demo/crm/reports\\a"]', state="attached", timeout=15_000
    )
    browser.state(panel, "ready")
    panel.wait_for_timeout(1_000)  # any late answer for an earlier page would land by now

    assert f"{base}/demo/crm/reports" in panel.get_attribute("main", "data-shown")
    assert "Reports" in panel.inner_text("#where")
    shown = panel.evaluate("window.__shown")
    assert shown[-1] == f"{base}/demo/crm/reports", shown
    assert not panel.evaluate("window.__emptied"), "the panel went empty while loading"
