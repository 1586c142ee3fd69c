"""The learner web app (/learn) in the real Chromium at 360x740, against the real backend (a
subprocess) and the real Keycloak: a learner signs in on Keycloak's login page, searches, reads an
aid, sees their paths; the aid read last opens with the network off (the service worker's saved
copy, with its "Offline — saved copy" banner); sign-out removes the saved copies; axe-core (the
extension's pinned dev dependency) finds no serious or critical violation on any page.

Screenshots go to test-artifacts/learn/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, Backend, make_backend
from tests.keycloak import access_token

pytestmark = [pytest.mark.browser, pytest.mark.keycloak]
ARTIFACTS = ROOT / "test-artifacts" / "learn"
AXE = ROOT / "extension" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 360, "height": 740}
USER = "newhire"  # a new hire in sales, with a mentor (and the demo's onboarding path)
AXE_RUN = """async () => {
  const found = await axe.run(document, { resultTypes: ["violations"] });
  return found.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
  }));
}"""
SAVED = """async () => {
  const cache = await caches.open("learn-aids-v1");
  return (await cache.keys()).map((r) => new URL(r.url).pathname);
}"""


@pytest.fixture(scope="module")
def learn_backend(tmp_path_factory: pytest.TempPathFactory, keycloak: Any) -> Iterator[Backend]:
    """A backend of its own with the demo content imported as `make run` does it (`inflow
    import content/demo` also seeds the demo's learning paths)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not installed (apt-get install chromium)")
    backend = make_backend(tmp_path_factory.mktemp("inflow-learn-backend"))
    env = {**os.environ, "INFLOW_DATA_DIR": str(backend.data_dir), "INFLOW_BASE_URL": backend.url}
    done = subprocess.run(
        [sys.executable, "-m", "server", "import", str(ROOT / "content" / "demo")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    backend.start()
    try:
        yield backend
    finally:
        backend.stop()


@pytest.fixture
def phone(learn_backend: Backend) -> Iterator[Any]:
    """A tab at 360x740 (CSP bypassed only so axe's script can be injected)."""
    from playwright.sync_api import sync_playwright

    assert AXE.is_file(), "run `make extension-deps` (axe-core is an extension dev dependency)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport=PHONE, is_mobile=True, has_touch=True, bypass_csp=True
            )
            yield context.new_page()
            context.close()
        finally:
            browser.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def no_serious_violations(page: Any, name: str) -> None:
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(AXE_RUN)
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: {json.dumps(bad, indent=1)}"


def fits_the_phone(page: Any, name: str) -> None:
    """One column at 360 px: nothing makes the page scroll sideways."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} is {width} px wide"


def check(page: Any, name: str) -> None:
    fits_the_phone(page, name)
    shot(page, name)
    no_serious_violations(page, name)


def my_paths(backend: Backend) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        f"{backend.url}/api/v1/paths/mine",
        headers={"Authorization": f"Bearer {access_token(USER)}"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        found: list[dict[str, Any]] = json.load(resp)
        return found


def test_learner_signs_in_searches_reads_and_reads_offline(
    phone: Any, learn_backend: Backend
) -> None:
    page = phone
    base = learn_backend.url

    # A deep link to an aid, signed out: Keycloak's login page, then the aid itself.
    page.goto(f"{base}/learn/aids/crm-create-opportunity")
    page.wait_for_selector("#username", timeout=20_000)
    assert page.url.startswith("http://127.0.0.1:8081/realms/inflow/")
    page.fill("#username", USER)
    page.fill("#password", USER)
    page.click("#kc-login")
    page.wait_for_url(f"{base}/learn/aids/crm-create-opportunity", timeout=20_000)
    assert page.inner_text("h1") == "Create a new opportunity"

    # Home: the service worker takes control (it caches the aids read from now on).
    page.goto(f"{base}/learn/")
    assert page.evaluate("navigator.serviceWorker.ready.then(() => true)") is True
    if page.evaluate("navigator.serviceWorker.controller === null"):
        page.reload()  # a page loaded before the worker was active is not controlled by it
    assert page.evaluate("navigator.serviceWorker.controller !== null") is True
    check(page, "01-home")

    # Search with the keyboard: type, Enter.
    page.focus("#q")
    page.keyboard.type("expense report")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/learn/search?**")
    results = page.locator("ol.results > li > a")
    assert results.count() > 0
    check(page, "02-search")

    # Read the first result: the sanitised body, and a copy kept for offline reading.
    title = results.first.inner_text()
    results.first.click()
    page.wait_for_selector("article.aid")
    aid_url = page.url
    assert page.inner_text("h1") == title
    page.wait_for_function(
        f"caches.open('learn-aids-v1').then(c => c.match({json.dumps(aid_url)})).then(Boolean)",
        timeout=20_000,
    )
    check(page, "03-aid")

    for path, name in (
        ("/learn/apps", "04-apps"),
        ("/learn/apps/crm", "05-app"),
        ("/learn/mentors", "06-mentors"),
        ("/learn/questions", "07-questions"),
        ("/learn/tips", "08-tips"),
        ("/learn/paths", "09-paths"),
        ("/learn/no-such-page", "10-not-found"),
    ):
        page.goto(base + path)
        check(page, name)

    # My paths: the demo's onboarding path for new hires. Finishing an aid of the path on its
    # page ticks the step; so does the practice checklist, every box ticked by keyboard.
    paths = {p["path"]["id"]: p for p in my_paths(learn_backend)}
    onboarding = paths["sales-onboarding"]
    page.goto(f"{base}/learn/paths")
    assert page.locator('a[href="/learn/paths/sales-onboarding"]').count() == 1
    page.goto(f"{base}/learn/aids/crm-create-opportunity")
    page.click('form[action="/learn/paths/sales-onboarding/steps/create-opportunity/done"] button')
    page.wait_for_selector("p.notice")
    assert page.inner_text("p.notice") == "Marked done."
    assert page.locator("section.path-steps .done").count() == 1
    page.goto(f"{base}/learn/paths/sales-onboarding")
    assert page.locator("ol.steps > li").count() == onboarding["total"]
    assert f"1 of {onboarding['total']} steps done" in page.inner_text("main")
    check(page, "11-path")
    boxes = page.locator("#step-practice-deal input[type=checkbox]")
    for i in range(boxes.count()):
        boxes.nth(i).focus()
        page.keyboard.press("Space")
    page.click("#step-practice-deal button[type=submit]")
    page.wait_for_selector("p.notice")
    assert f"2 of {onboarding['total']} steps done" in page.inner_text("main")
    assert my_paths(learn_backend)[0]["done"] == 2  # the API sees the same progress

    # Offline: the aid read last opens from the saved copy, with the banner; a page never
    # saved shows the offline page, which lists the saved aids.
    page.context.set_offline(True)
    try:
        page.goto(aid_url)
        banner = page.locator("p.offline")
        assert banner.inner_text().startswith("Offline — saved copy from")
        assert page.inner_text("h1") == title
        check(page, "12-offline-aid")
        page.goto(f"{base}/learn/questions")
        assert page.inner_text("h1") == "You are offline"
        page.wait_for_selector(f'#saved-aids a[href="{aid_url.removeprefix(base)}"]')
        check(page, "13-offline-page")
    finally:
        page.context.set_offline(False)

    # Sign out: the saved copies go with the session.
    page.goto(f"{base}/learn/")
    page.click("form.signout button")
    page.wait_for_url(f"{base}/learn/signed-out")
    page.wait_for_function("caches.keys().then(k => k.length === 0)", timeout=20_000)
    check(page, "14-signed-out")
    page.goto(f"{base}/learn/")
    page.wait_for_selector("#username", timeout=20_000)  # signed out at Keycloak too
