"""Rate limited (429): the panel says "Inflow is busy, trying again in N s" instead of an error,
sends nothing while the server's Retry-After runs, and recovers by itself. Uses its own backend
with a tiny per-user limit (the real server/ratelimit.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Backend, launch, make_backend

pytestmark = pytest.mark.browser

BUSY = re.compile(r"^Inflow is busy, trying again in \d+ s$")


@pytest.fixture
def limited_backend(
    tmp_path: Path, keycloak: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    # One request per 15 s per user after a small burst: enough to sign in and load one page.
    monkeypatch.setenv("INFLOW_RATE_LIMIT_SUBJECT_PER_SECOND", str(1 / 15))
    monkeypatch.setenv("INFLOW_RATE_LIMIT_SUBJECT_BURST", "12")
    b = make_backend(tmp_path / "backend")
    b.start()
    yield b
    b.stop()


def test_429_shows_a_calm_busy_state_and_waits(
    chromium: str, limited_backend: Backend, tmp_path: Path
) -> None:
    """Incident (issue 9): with rate limits on, a 429 showed as an error ("Server answered 429")
    and every keystroke of the search sent another request into the limit."""
    backend = limited_backend
    with launch(chromium, backend, tmp_path / "profile") as browser:
        demo = browser.open_demo("/demo/crm/")
        panel = browser.open_panel()
        browser.sign_in(panel)
        browser.state(panel, "ready")

        # Search until the limit answers 429: the search area shows the busy note, not an error.
        for i in range(30):
            panel.fill("#q", f"expense report {i}")
            panel.press("#q", "Enter")
            panel.wait_for_selector("main[aria-busy='false']", timeout=15_000)
            if panel.locator("#busy-note").count():
                break
        note = panel.locator("#busy-note")
        assert note.count() == 1, panel.inner_text("main")
        assert BUSY.match(note.inner_text().strip()), note.inner_text()
        assert panel.locator("[role='alert']").count() == 0
        assert "429" not in panel.inner_text("main")
        browser.shot(panel, "40-busy-search")

        # While Retry-After runs, nothing is sent: more searches are answered from the gate.
        sent = len(backend.access_log("/api/v1/search"))
        assert sent > 0  # the search answered 429 is logged: the count below means something
        for q in ("travel", "mileage", "receipts"):
            panel.fill("#q", q)
            panel.press("#q", "Enter")
            panel.wait_for_selector("#busy-note", timeout=10_000)
        assert len(backend.access_log("/api/v1/search")) == sent

        # A new page while busy: the calm busy view, then the worker retries once by itself.
        panel.press("#q", "Escape")
        demo.click("#new-opportunity-link")
        browser.state(panel, "busy", timeout=20_000)
        assert BUSY.match(panel.inner_text("#busy-note").strip())
        browser.shot(panel, "41-busy-view")
        suggests = len(backend.access_log("/api/v1/suggest"))
        started = time.monotonic()
        browser.state(panel, "ready", timeout=60_000)
        assert time.monotonic() - started > 1  # it waited for Retry-After
        # one retry when the time was up, not a loop (the page may have been asked once more)
        assert len(backend.access_log("/api/v1/suggest")) - suggests <= 2
