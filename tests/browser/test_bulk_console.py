"""Bulk work in the console, in the real Chromium against the real backend (a subprocess with the
demo content) and the real Keycloak: tick aids on the Aids page, confirm with the counts, see the
change; upload a CSV of URL-to-aid mappings on the import page, read the plan, apply it.
Screenshots: test-artifacts/console-bulk-*.png and console-mappings-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, Backend, own_backend

pytestmark = [pytest.mark.browser, pytest.mark.keycloak]
ARTIFACTS = ROOT / "test-artifacts"
CSV = """url,aid,context
http://127.0.0.1/demo/hr/timeoff.html,ask-for-help,
http://127.0.0.1/demo/hr/parental-leave.html,hr-sick-leave,Parental leave
"""


@pytest.fixture(scope="module")
def bulk_backend(tmp_path_factory: pytest.TempPathFactory, keycloak: Any) -> Iterator[Backend]:
    with own_backend(tmp_path_factory, "inflow-bulk-console") as backend:
        yield backend


@pytest.fixture
def page(bulk_backend: Backend) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            yield context.new_page()
            context.close()
        finally:
            browser.close()


def test_admin_changes_many_aids_and_imports_mappings(
    page: Any, bulk_backend: Backend, tmp_path: Path
) -> None:
    base = bulk_backend.url
    page.goto(f"{base}/admin/aids?app=hr")
    page.wait_for_selector("#username", timeout=20_000)
    page.fill("#username", "admin")
    page.fill("#password", "admin")
    page.click("#kc-login")
    page.wait_for_url(re.compile(r".*/admin/aids\?app=hr$"), timeout=20_000)

    page.check('input[name="ids"][value="hr-pto-policy"]')
    page.check('input[name="ids"][value="hr-sick-leave"]')
    page.fill('form#bulk input[name="add_tags"]', "leave-2027")
    page.screenshot(path=str(ARTIFACTS / "console-bulk-select.png"), full_page=True)
    page.click('form#bulk button[type="submit"]')
    page.wait_for_selector("#bulk-confirm", timeout=20_000)
    confirm = " ".join(page.inner_text("#bulk-confirm").split())
    assert "You selected 2 aid(s)" in confirm and "2 will change" in confirm
    page.screenshot(path=str(ARTIFACTS / "console-bulk-confirm.png"))
    page.click('#bulk-confirm button[type="submit"]')
    page.wait_for_selector("#bulk-result", timeout=20_000)
    assert "Changed 2 aid(s)" in page.inner_text("#bulk-result")
    page.screenshot(path=str(ARTIFACTS / "console-bulk-done.png"))
    page.goto(f"{base}/admin/aids/hr-sick-leave")
    assert "leave-2027" in page.content()

    csv = tmp_path / "mappings.csv"
    csv.write_text(CSV)
    page.goto(f"{base}/admin/import")
    page.set_input_files('input[name="mappings"]', str(csv))
    page.click('#mappings form button[type="submit"]')
    page.wait_for_selector("#mapping-plan", timeout=20_000)
    summary = page.inner_text("#mapping-summary")
    assert "2 pin(s) to add" in summary and "1 new context(s)" in summary
    assert "http://127.0.0.1/demo/hr/parental-leave.html" in page.inner_text("#mapping-plan")
    page.screenshot(path=str(ARTIFACTS / "console-mappings-plan.png"), full_page=True)
    page.click('#mapping-confirm button[type="submit"]')
    page.wait_for_selector("p.notice", timeout=20_000)
    assert "2 pin(s) added, 1 context(s) created" in page.inner_text("p.notice")
    page.screenshot(path=str(ARTIFACTS / "console-mappings-applied.png"), full_page=True)
    page.goto(f"{base}/admin/contexts/hr-timeoff")
    assert "ask-for-help" in page.content()
