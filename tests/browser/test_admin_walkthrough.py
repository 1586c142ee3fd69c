"""The admin's walkthrough, end to end in Debian's Chromium against the real backend (a
subprocess) and the real Keycloak: an admin signs in to the console, makes the company's
ServiceNow app from its template, pins a published aid to the incident form, checks a real
ServiceNow URL in the rule tester; then a learner with the extension opens that URL and sees the
aid pinned in the panel (and again on the same form in the Next Experience frame, not on the
incident list).

ServiceNow itself is not reachable from here: the learner's browser gets a small page for the
real-shaped https URL from Playwright (`context.route` fulfils the request, so the address bar,
the content script and the extension see exactly that URL). Everything of ours is real: the
console, the rules the extension downloads, its URL matcher (wrapped targets included), its
content script, the suggest call and the panel.

Screenshots of each step go to test-artifacts/walkthrough/ (console pages at 1280x800).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    EXTENSION,
    ROOT,
    Backend,
    Browser,
    own_backend,
)

pytestmark = [pytest.mark.browser, pytest.mark.keycloak]
ARTIFACTS = ROOT / "test-artifacts" / "walkthrough"
TENANT = "northwind"  # not the template's example (acme): the tenant really is typed in
HOST = f"{TENANT}.service-now.com"
AID = "data-privacy-basics"  # a published demo aid, for everyone
AID_TITLE = "Data privacy basics"
SYS_ID = "9d385017c611228701d22104cc95c371"
# An incident opened from the navigator: the classic UI wraps the form in nav_to.do.
INCIDENT_URL = f"https://{HOST}/nav_to.do?uri=" + quote(f"/incident.do?sys_id={SYS_ID}", safe="")
# The same form in the Next Experience UI: the classic page, percent-encoded, in the path.
NEXT_EXPERIENCE_URL = f"https://{HOST}/now/nav/ui/classic/params/target/" + quote(
    f"incident.do?sys_id={SYS_ID}", safe=""
)
INCIDENT_HTML = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>INC0010042 | Incident | ServiceNow</title></head>
<body><h1>INC0010042</h1><h2>Incident</h2>
<form><label>Caller <input value="Abel Tuter"></label>
<label>Short description <input value="Laptop will not boot"></label></form>
<p>sys_id {SYS_ID}</p></body></html>
"""


@pytest.fixture(scope="module")
def walk_backend(tmp_path_factory: pytest.TempPathFactory, keycloak: Any) -> Iterator[Backend]:
    """A backend of its own: the walkthrough adds an app and pins."""
    with own_backend(tmp_path_factory, "inflow-walk-backend") as backend:
        yield backend


def shot(page: Any, name: str, show: str = "") -> None:
    """A 1280x800 screenshot; `show`: the element to scroll into view first."""
    if show:
        page.locator(show).first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def extension_for(hosts: list[str], where: Path) -> Path:
    """The extension as it is, with `hosts` granted at install.

    A learner grants a mapped work app's host on the settings page (chrome.permissions.request,
    "Allow" in Chrome's prompt); automation cannot click that browser prompt. So this copy asks
    for the host in `host_permissions`, which Chrome grants at install exactly as the Allow click
    would; the service worker then registers the content script for it (syncContentScripts),
    as it does after a grant. Every file but manifest.json is the real extension (same key, same
    id, so Keycloak's redirect URI still fits)."""
    if where.exists():
        shutil.rmtree(where)
    shutil.copytree(EXTENSION, where, ignore=shutil.ignore_patterns("node_modules", "tests"))
    manifest = json.loads((where / "manifest.json").read_text(encoding="utf-8"))
    manifest["host_permissions"] = [*manifest["host_permissions"], *hosts]
    (where / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return where


def admin_steps(backend: Backend) -> None:
    """The console part, in a browser of its own (its Keycloak session is the admin's)."""
    from playwright.sync_api import sync_playwright

    base = backend.url
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()

            # 1. Sign in through Keycloak's own login page; the apps page has the button.
            page.goto(f"{base}/admin/apps")
            page.wait_for_selector("#username", timeout=20_000)
            page.fill("#username", "admin")
            page.fill("#password", "admin")
            page.click("#kc-login")
            page.wait_for_url(f"{base}/admin/apps", timeout=20_000)
            shot(page, "01-apps")

            # 2. The template cards.
            page.click("#from-template")
            page.wait_for_url(f"{base}/admin/app-templates")
            card = page.locator('a[data-template="servicenow"]')
            assert "Incident form" in card.inner_text()
            shot(page, "02-templates")

            # 3. Pick ServiceNow, type the instance, preview hosts and pages.
            card.click()
            page.wait_for_url(f"{base}/admin/app-templates/servicenow")
            assert "Instance name" in page.inner_text("#template-form")
            page.fill('#template-form input[name="tenant"]', TENANT)
            page.click('#template-form button[type="submit"]')
            page.wait_for_selector("#template-preview")
            preview = page.inner_text("#template-preview")
            assert HOST in preview
            assert "Incident form" in preview and "New incident" in preview
            assert "acme" not in preview  # the example tenant is nowhere in the app
            shot(page, "03-template-preview", "#template-preview")

            # 4. Create: the new app's page, with a notice and its pages.
            page.click("#create-form button")
            page.wait_for_url(f"{base}/admin/apps/servicenow?notice=from-template")
            assert "Created from the template" in page.inner_text("main")
            shot(page, "04-app-created")

            # 5. Pin a published aid to the incident form.
            page.click('a[href="/admin/contexts/servicenow-incident-form"]')
            page.wait_for_url(f"{base}/admin/contexts/servicenow-incident-form")
            page.fill("#pin-aid", AID)
            page.click('form:has(#pin-aid) button[type="submit"]')
            page.wait_for_url(f"{base}/admin/contexts/servicenow-incident-form?notice=moved#pins")
            assert AID_TITLE in page.inner_text("ol.pins")
            shot(page, "05-aid-pinned", "ol.pins")

            # 6. The rule tester on the real URL shape: the context and the aid.
            page.goto(f"{base}/admin/tester")
            page.fill('#tester-form input[name="url"]', INCIDENT_URL)
            page.click('#tester-form button[type="submit"]')
            page.wait_for_selector("#tester-result")
            result = page.inner_text("#tester-result")
            assert "App: ServiceNow" in result
            assert "Contexts in effect: Incident form" in result
            assert AID_TITLE in page.inner_text("#tester-result ol.sidebar")
            shot(page, "06-rule-tester", "#tester-result")
            shot(page, "07-rule-tester-sidebar", "#tester-result ol.sidebar")
            context.close()
        finally:
            browser.close()


def learner_steps(backend: Backend, tmp: Path) -> None:
    """The learner's browser: the extension, signed in as learner, on the ServiceNow URL."""
    from playwright.sync_api import sync_playwright

    extension = extension_for([f"https://{HOST}/*"], tmp / "extension")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=[
                f"--disable-extensions-except={extension}",
                f"--load-extension={extension}",
                *CHROMIUM_ARGS,
            ],
        )
        try:
            b = Browser(context, backend, ARTIFACTS)
            b.worker.evaluate(
                "async (url) => { await chrome.storage.local.set({settings: {"
                "serverUrl: url, keycloakUrl: 'http://127.0.0.1:8081', realm: 'inflow',"
                "clientId: 'inflow-extension'}}); }",
                backend.url,
            )
            # The stand-in for the instance (see the module docstring): any request to it.
            context.route(
                f"https://{HOST}/**",
                lambda route: route.fulfill(
                    status=200, content_type="text/html; charset=utf-8", body=INCIDENT_HTML
                ),
            )
            deadline = time.monotonic() + 20
            while not any(
                f"https://{HOST}/*" in s["matches"]
                for s in b.worker.evaluate("chrome.scripting.getRegisteredContentScripts()")
            ):
                assert time.monotonic() < deadline, "no content script for the granted host"
                time.sleep(0.2)

            page = context.new_page()
            page.set_viewport_size({"width": 1280, "height": 800})
            page.goto(INCIDENT_URL)
            page.wait_for_selector("h1:has-text('INC0010042')")
            panel = b.open_panel()
            b.sign_in(panel, ("learner", "learner"))
            b.state(panel, "ready")
            panel.wait_for_selector(f'#pinned .card[data-aid="{AID}"]', timeout=20_000)
            assert "ServiceNow" in panel.inner_text("#where")
            assert "Incident form" in panel.inner_text("#where")
            pinned = panel.locator("#pinned .card").first
            assert pinned.get_attribute("data-aid") == AID
            assert "Pinned" in pinned.locator(".why").inner_text()
            b.shot(panel, "08-learner-panel")
            shot(page, "09-learner-page")

            # Other real shapes: the incident list is another page (nothing pinned there); the
            # Next Experience frame shows the same incident form, so the aid is back.
            page.goto(f"https://{HOST}/incident_list.do?sysparm_query=active%3Dtrue")
            panel.wait_for_selector("#where:has-text('Incident list')", timeout=20_000)
            b.state(panel, "ready")
            assert panel.locator(f'#pinned .card[data-aid="{AID}"]').count() == 0
            page.goto(NEXT_EXPERIENCE_URL)
            panel.wait_for_selector("#where:has-text('Incident form')", timeout=20_000)
            panel.wait_for_selector(f'#pinned .card[data-aid="{AID}"]', timeout=20_000)
            b.shot(panel, "10-learner-panel-next-experience")
        finally:
            context.close()


def test_admin_makes_an_app_from_a_template_and_a_learner_sees_the_pinned_aid(
    walk_backend: Backend, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    admin_steps(walk_backend)
    learner_steps(walk_backend, tmp_path)
