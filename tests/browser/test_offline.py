"""The server goes away: the panel keeps what it showed, then says it is offline with the last
results it has for the page and a Retry button. Uses its own backend, which it freezes."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Backend, Browser, launch, make_backend

pytestmark = pytest.mark.browser


@pytest.fixture
def own_backend(tmp_path: Path, keycloak: Any) -> Iterator[Backend]:
    b = make_backend(tmp_path / "backend")
    b.start()
    yield b
    if b.proc is not None:
        os.kill(b.proc.pid, signal.SIGCONT)
    b.stop()


def test_offline_shows_last_results_and_retry(
    chromium: str, own_backend: Backend, tmp_path: Path
) -> None:
    with launch(chromium, own_backend, tmp_path / "profile") as browser:
        run(browser, own_backend)


def run(browser: Browser, backend: Backend) -> None:
    assert backend.proc is not None
    demo = browser.open_demo("/demo/crm/")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")
    pinned_before = panel.locator("#pinned .card").count()
    assert pinned_before == 3

    os.kill(backend.proc.pid, signal.SIGSTOP)  # requests now hang until the client's timeout
    demo.click("#new-opportunity-link")
    # While the new page loads, the old results stay (no flicker), with a progress bar.
    panel.wait_for_selector("main[data-state='ready'] .loading-bar", timeout=10_000)
    assert panel.locator("#pinned .card").count() == pinned_before
    browser.shot(panel, "10-loading-keeps-old-results")

    browser.state(panel, "offline", timeout=20_000)
    assert "no saved results" in panel.inner_text("#offline-note")
    browser.shot(panel, "11-offline-no-saved-results")

    demo.go_back()  # to the dashboard, whose results were saved a moment ago
    panel.wait_for_selector("#offline-note:has-text('showing results from')", timeout=25_000)
    assert panel.locator("#pinned .card").count() == pinned_before
    browser.shot(panel, "12-offline-last-results")

    os.kill(backend.proc.pid, signal.SIGCONT)
    panel.click("#retry")
    browser.state(panel, "ready", timeout=20_000)
    assert panel.locator("#offline-note").count() == 0
