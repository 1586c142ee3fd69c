"""The console's screens as an admin sees them at 1280x800, in the real Chromium, against the
real backend (a subprocess with the demo content) and the real Keycloak: sign in on Keycloak's
login page, then open every main page, screenshot it into test-artifacts/console-*.png and check
what a person would notice: the header is one line, nothing scrolls sideways, the favicon is
served, the analytics page reads in words (no `snake_case` labels) inside the console's layout.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, Backend, own_backend

pytestmark = [pytest.mark.browser, pytest.mark.keycloak]
ARTIFACTS = ROOT / "test-artifacts"
SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")
SCREENS = [
    ("dashboard", "/admin"),
    ("apps", "/admin/apps"),
    ("app", "/admin/apps/hr"),
    ("context", "/admin/contexts/hr-timeoff"),
    ("aids", "/admin/aids"),
    ("aid", "/admin/aids/hr-request-time-off"),
    ("stale", "/admin/stale"),
    ("audit", "/admin/audit"),
    ("analytics", "/admin/analytics"),
    ("tester", "/admin/tester?url=http%3A%2F%2F127.0.0.1%2Fdemo%2Fhr%2Ftimeoff.html&role=learner"),
]
# The header's parts and the nav's links, and whether the page scrolls sideways.
LAYOUT = """() => {
    const header = document.querySelector("header.top");
    const tops = (els) => Array.from(els).map((e) => Math.round(e.getBoundingClientRect().top));
    const root = document.documentElement;
    return {
        headerHeight: header.getBoundingClientRect().height,
        partTops: tops(header.children),
        itemTops: tops(header.querySelectorAll("nav > a, nav > details > summary")),
        links: header.querySelectorAll("nav a").length,
        groups: Array.from(header.querySelectorAll("nav summary")).map((s) => s.textContent.trim()),
        scrollWidth: root.scrollWidth,
        clientWidth: root.clientWidth,
        current: Array.from(header.querySelectorAll('nav a[aria-current="page"]'))
            .map((a) => a.textContent.trim()),
    };
}"""


@pytest.fixture(scope="module")
def console_backend(tmp_path_factory: pytest.TempPathFactory, keycloak: Any) -> Iterator[Backend]:
    with own_backend(tmp_path_factory, "inflow-console-screens") as backend:
        yield backend


@pytest.fixture
def page(console_backend: Backend) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            tab = context.new_page()
            yield tab
            context.close()
        finally:
            browser.close()


def test_console_screens_at_1280(page: Any, console_backend: Backend) -> None:
    """At 1280 px the header took two or three lines (the nav wrapped under the brand), the
    analytics dashboard was a separate page without the console's navigation that read
    `active_learners`, and the console had no favicon."""
    base = console_backend.url
    page.goto(f"{base}/admin")
    page.wait_for_selector("#username", timeout=20_000)
    page.fill("#username", "admin")
    page.fill("#password", "admin")
    page.click("#kc-login")
    page.wait_for_url(f"{base}/admin", timeout=20_000)

    # One change, so the audit log and the dashboard have an entry in words.
    page.goto(f"{base}/admin/aids/hr-request-time-off")
    page.click('form[action$="/verify"] button')
    page.wait_for_url(re.compile(r".*notice=verified$"), timeout=20_000)

    expected_current = {
        "dashboard": "Dashboard",
        "apps": "Apps",
        "app": "Apps",
        "context": "Apps",
        "aids": "Aids",
        "aid": "Aids",
        "stale": "Stale",
        "audit": "Audit log",
        "analytics": "Analytics",
        "tester": "Tester",
    }
    for name, path in SCREENS:
        response = page.goto(f"{base}{path}")
        assert response is not None and response.status == 200, path
        page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"))
        layout = page.evaluate(LAYOUT)
        # One line: the brand, the nav and the sign-out form side by side, every link or group
        # on the nav's one row, and the header no taller than one row of controls.
        assert max(layout["partTops"]) - min(layout["partTops"]) <= 12, (name, layout)
        assert layout["links"] >= 16 and len(set(layout["itemTops"])) == 1, (name, layout)
        assert layout["headerHeight"] <= 56, (name, layout)
        assert layout["scrollWidth"] <= layout["clientWidth"], (name, layout)  # no sideways scroll
        assert layout["current"] == [expected_current[name]], (name, layout)
        if name == "audit":
            assert "marked the aid" in page.inner_text("table.audit")
            assert "{" not in page.inner_text("table.audit")
        if name == "analytics":
            text = page.inner_text("main")
            assert "Active learners" in text and "Panel opens" in text
            assert not SNAKE.findall(text), SNAKE.findall(text)
    page.screenshot(path=str(ARTIFACTS / "console-analytics-full.png"), full_page=True)
    check_nav_groups(page, base)

    # A reviewer sends a draft back with a comment; the aid's page shows who, when and why.
    page.goto(f"{base}/admin/aids/exp-per-diem-2027")
    page.click("button.step-review")
    page.wait_for_url(re.compile(r".*notice=review$"), timeout=20_000)
    page.click("details.send-back summary")
    page.fill("#send-back-comment", "Add the <b>2027</b> rates table before review.")
    page.click("details.send-back button.step-draft")
    page.wait_for_url(re.compile(r".*notice=draft$"), timeout=20_000)
    note = page.inner_text("#sent-back")
    assert "Sent back by admin, just now:" in note
    assert "Add the <b>2027</b> rates table before review." in note  # as text, not markup
    page.screenshot(path=str(ARTIFACTS / "console-aid-sent-back.png"))

    # The favicon: linked from every page, served as SVG with the static files.
    href = page.get_attribute('link[rel="icon"]', "href")
    assert href == "/admin/static/favicon.svg"
    icon = page.request.get(f"{base}{href}")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text().startswith("<svg")

    # A mistyped address: the console's 404 page, in its layout, with a way back.
    response = page.goto(f"{base}/admin/no-such-page")
    assert response is not None and response.status == 404
    assert "Back to the dashboard" in page.inner_text("main")
    assert page.locator('header nav[aria-label="Main"]').count() == 1
    page.screenshot(path=str(ARTIFACTS / "console-404.png"))


def check_nav_groups(page: Any, base: str) -> None:
    """With Sources, Health, Queue and Paths added, an admin's 16 links no longer fitted at
    1280 px: the page scrolled sideways. The rarer pages sit in labelled groups (<details>
    menus): each opens from the keyboard, shows its links below the header without making the
    page scroll sideways, closes with Escape, and marks the group of the page you are on."""
    page.goto(f"{base}/admin")
    layout = page.evaluate(LAYOUT)
    assert layout["groups"] == ["Content", "Checks", "People", "Reports"], layout
    for index, group in enumerate(layout["groups"]):
        summary = page.locator("header nav details.navgroup summary").nth(index)
        summary.focus()
        page.keyboard.press("Enter")
        menu = page.locator("header nav details.navgroup").nth(index).locator("ul")
        assert menu.is_visible(), group
        links = menu.locator("a")
        assert links.count() >= 2, group
        assert all(links.nth(i).is_visible() for i in range(links.count())), group
        # the menu opens below the header, over the page, and nothing scrolls sideways
        box = menu.bounding_box()
        header = page.locator("header.top").bounding_box()
        assert box and header and box["y"] >= header["y"] + header["height"] - 8, group
        assert box["x"] + box["width"] <= 1280, group
        widths = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert widths[0] <= widths[1], (group, widths)
        page.screenshot(path=str(ARTIFACTS / f"console-nav-{group.lower()}.png"))
        page.keyboard.press("Tab")  # into the open menu: its first link
        assert page.evaluate("document.activeElement.closest('details.navgroup ul') !== null")
        page.keyboard.press("Escape")
        assert not menu.is_visible(), group
    # Tab to Sources in its group and follow it: the group says it holds the current page
    page.locator("header nav summary", has_text="Content").focus()
    page.keyboard.press("Enter")
    page.locator("header nav a", has_text="Sources").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/admin/sources")
    layout = page.evaluate(LAYOUT)
    assert layout["current"] == ["Sources"], layout
    assert page.locator("header nav summary.current").inner_text().strip() == "Content"
    assert layout["scrollWidth"] <= layout["clientWidth"], layout
