"""The admin console in the real Chromium, against the real backend (a subprocess) and the real
Keycloak: an admin signs in on Keycloak's login page, maps a new app and page, writes and
publishes an aid pinned to that page, and a learner's suggest call shows it.

Screenshots of the main pages go to test-artifacts/admin/.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, Backend, own_backend
from tests.keycloak import access_token

pytestmark = [pytest.mark.browser, pytest.mark.keycloak]
ARTIFACTS = ROOT / "test-artifacts" / "admin"


@pytest.fixture(scope="module")
def admin_backend(tmp_path_factory: pytest.TempPathFactory, keycloak: Any) -> Iterator[Backend]:
    """A backend of its own: this test changes content the extension's tests rely on."""
    with own_backend(tmp_path_factory, "inflow-admin-backend") as backend:
        yield backend


@pytest.fixture
def page(admin_backend: Backend) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            tab = context.new_page()
            tab.on("dialog", lambda dialog: dialog.accept())
            yield tab
            context.close()
        finally:
            browser.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def suggest(backend: Backend, url: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{backend.url}/api/v1/suggest",
        data=json.dumps({"url": url}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        result: dict[str, Any] = json.load(resp)
        return result


def test_admin_maps_a_page_and_publishes_an_aid(page: Any, admin_backend: Backend) -> None:
    base = admin_backend.url
    demo_page = f"{base}/demo/unmapped/"
    learner = access_token("learner")
    assert suggest(admin_backend, demo_page, learner)["app"] is None

    # Sign in through Keycloak's own login page.
    page.goto(f"{base}/admin/aids")
    page.wait_for_selector("#username", timeout=20_000)
    assert page.url.startswith("http://127.0.0.1:8081/realms/inflow/")
    shot(page, "00-keycloak-login")
    page.fill("#username", "admin")
    page.fill("#password", "admin")
    page.click("#kc-login")
    page.wait_for_url(f"{base}/admin/aids", timeout=20_000)
    assert "admin (admin, author, learner, reviewer)" in page.inner_text("header")
    shot(page, "03-aids")
    page.goto(f"{base}/admin")
    shot(page, "01-dashboard")

    # Limits come from the resource declarations, and Chromium enforces them: the id pattern
    # is a valid HTML pattern (an invalid one would silently check nothing).
    page.goto(f"{base}/admin/apps")
    new_id = 'form[action="/admin/apps"] input[name="id"]'
    page.fill(new_id, "Not A Slug")
    assert page.eval_on_selector(new_id, "e => e.validity.patternMismatch") is True
    page.fill(new_id, "fine-slug")
    assert page.eval_on_selector(new_id, "e => e.validity.valid") is True
    assert page.get_attribute('form[action="/admin/apps"] input[name="name"]', "maxlength")
    # A browser that does not check (or a hand-made POST): the server refuses with 422 and the
    # form comes back as typed, with the message beside the field.
    page.fill(new_id, "Not A Slug")
    page.fill('form[action="/admin/apps"] input[name="name"]', "Typed name")
    page.eval_on_selector('form[action="/admin/apps"]', "f => { f.noValidate = true; }")
    page.click('form[action="/admin/apps"] button[type="submit"]')
    page.wait_for_selector("#id-error")
    assert page.input_value(new_id) == "Not A Slug"
    assert page.input_value('form[action="/admin/apps"] input[name="name"]') == "Typed name"
    shot(page, "02-app-refused")

    # A new app with a rule, and a context for the demo page.
    page.goto(f"{base}/admin/apps")
    page.fill('form[action="/admin/apps"] input[name="id"]', "intranet")
    page.fill('form[action="/admin/apps"] input[name="name"]', "Northwind intranet")
    page.fill('form[action="/admin/apps"] textarea[name="rules"]', "*://127.0.0.1/demo/unmapped/**")
    page.click('form[action="/admin/apps"] button[type="submit"]')
    page.wait_for_url(f"{base}/admin/apps/intranet?notice=created")
    form = 'form[action="/admin/apps/intranet/contexts"]'
    page.fill(f'{form} input[name="id"]', "intranet-home")
    page.fill(f'{form} input[name="name"]', "Intranet home")
    page.fill(f'{form} textarea[name="rules"]', "*://127.0.0.1/demo/unmapped/")
    page.click(f'{form} button[type="submit"]')
    page.wait_for_url(f"{base}/admin/contexts/intranet-home?notice=created")

    # Write an aid: the live preview renders (sanitized) as the author types.
    page.goto(f"{base}/admin/aids/new")
    page.fill('input[name="id"]', "intranet-welcome")
    page.fill('input[name="title"]', "Welcome to the intranet")
    page.fill('input[name="summary"]', "Where to find news, people and forms.")
    page.check('input[name="apps"][value="intranet"]')
    page.fill(
        "#body",
        "## Start here\n\nThe **people finder** is top right.\n\n<script>alert(1)</script>\n",
    )
    page.wait_for_selector("#preview strong", timeout=10_000)
    assert page.locator("#preview script").count() == 0
    assert page.inner_text("#preview strong") == "people finder"
    shot(page, "04-aid-editor")
    page.click('button[name="action"][value="save"]')
    page.wait_for_url(f"{base}/admin/aids/intranet-welcome?notice=created")

    # Pin it to the page, then publish it.
    page.goto(f"{base}/admin/contexts/intranet-home")
    page.fill("#pin-aid", "intranet-welcome")  # the picker: type-ahead (a datalist)
    page.click('form:has(#pin-aid) button[type="submit"]')
    page.wait_for_url(f"{base}/admin/contexts/intranet-home?notice=moved#pins")
    assert "Welcome to the intranet" in page.inner_text("ol.pins")
    shot(page, "05-context-pins")
    page.goto(f"{base}/admin/aids/intranet-welcome")
    page.click("button.step-published")
    page.wait_for_url(f"{base}/admin/aids/intranet-welcome?notice=published")
    assert "published" in page.inner_text("h1")

    # The learner's sidebar (the suggest API) shows it, pinned.
    result = suggest(admin_backend, demo_page, learner)
    assert result["app"]["id"] == "intranet"
    assert result["aids"][0]["id"] == "intranet-welcome"
    assert result["aids"][0]["reason_code"] == "pinned"

    # The rule tester says the same, with the winning rule.
    page.goto(f"{base}/admin/tester?url={demo_page}&role=learner")
    assert "Northwind intranet" in page.inner_text("#tester-result")
    assert "Welcome to the intranet" in page.inner_text("ol.sidebar")
    shot(page, "06-rule-tester")

    for path, name in [
        ("/admin/apps", "02-apps"),
        ("/admin/apps/intranet", "02-app-edit"),
        ("/admin/aids/intranet-welcome/history", "07-history"),
        ("/admin/stale", "08-stale"),
        ("/admin/import", "09-import-export"),
        ("/admin/audit", "10-audit"),
    ]:
        page.goto(f"{base}{path}")
        shot(page, name)
    assert "published the aid Welcome to the intranet" in page.inner_text("table")

    # Sign out ends the session.
    page.click("form.signout button")
    page.wait_for_url(f"{base}/admin/signed-out")
    page.goto(f"{base}/admin")
    page.wait_for_selector("#username", timeout=20_000)

    # An author (roles from Keycloak): writes and submits, but the permission table gives no
    # publishing, deleting, app editing or audit; a hand-made delete is refused with 403.
    page.fill("#username", "author")
    page.fill("#password", "author")
    page.click("#kc-login")
    page.wait_for_url(f"{base}/admin", timeout=20_000)
    assert page.locator('a[href="/admin/audit"]').count() == 0
    page.goto(f"{base}/admin/aids/exp-per-diem-2027")
    assert page.locator("button.step-review").count() == 1
    assert page.locator("button.step-published").count() == 0
    assert page.locator('form[action$="/delete"]').count() == 0
    shot(page, "11-author-aid")
    page.goto(f"{base}/admin/apps/intranet")
    assert page.locator('form[action="/admin/apps/intranet/contexts"]').count() == 0
    assert page.get_attribute('input[name="name"]', "readonly") is not None
    status = page.evaluate(
        """async () => {
            const body = new URLSearchParams({
                csrf_token: document.querySelector('input[name="csrf_token"]').value,
            });
            const resp = await fetch("/admin/aids/intranet-welcome/delete", {
                method: "POST", body, redirect: "manual",
            });
            return resp.status;
        }"""
    )
    assert status == 403
    assert suggest(admin_backend, demo_page, learner)["aids"][0]["id"] == "intranet-welcome"
