"""Analytics events from the extension, end to end: what the learner does in the real panel
reaches the backend's events database (`data_dir/events.sqlite3`, read raw here: the dashboards
hide groups under five people) exactly once, nothing is recorded about an unmapped page, and
events recorded while the server is down arrive once it is back.

Uses a backend of its own (module scope), so the other browser tests' events do not mix in;
each test looks only at the events that arrived since it started. That backend runs without
INFLOW_REQUEST_LOG: the log middleware reads the body before the handler, and POST
/api/v1/events reads the request stream itself (its own size limit), so with the log on it finds
an empty body and answers 400. Requests are counted from aiohttp's access log instead.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Backend, Browser, launch, make_backend

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def events_backend(tmp_path_factory: pytest.TempPathFactory, keycloak: Any) -> Iterator[Backend]:
    b = make_backend(tmp_path_factory.mktemp("inflow-events-backend"), request_log=False)
    b.start()
    yield b
    if b.proc is not None:
        os.kill(b.proc.pid, signal.SIGCONT)  # a failed test may leave it frozen
    b.stop()


@pytest.fixture
def browser(chromium: str, events_backend: Backend, tmp_path: Path) -> Iterator[Browser]:
    with launch(chromium, events_backend, tmp_path / "profile") as b:
        yield b


Row = dict[str, Any]


def stored_events(backend: Backend) -> list[Row]:
    db = backend.data_dir / "events.sqlite3"
    if not db.exists():
        return []
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT id, type, at, app, context, aid, data FROM events ORDER BY at, id"
        ).fetchall()
    keys = ("id", "type", "at", "app", "context", "aid", "data")
    return [{**dict(zip(keys, r, strict=True)), "data": json.loads(r[6])} for r in rows]


def new_events(backend: Backend, seen: set[str]) -> list[Row]:
    return [e for e in stored_events(backend) if e["id"] not in seen]


def wait_for_events(
    backend: Backend, seen: set[str], want: Counter[str], timeout: float = 30.0
) -> list[Row]:
    """Wait until at least `want` (type -> count) new events are stored; then a little longer,
    so that a doubled event would show up too."""
    deadline = time.monotonic() + timeout
    while True:
        got = new_events(backend, seen)
        if Counter(e["type"] for e in got) >= want:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"events did not arrive: want {dict(want)}, got {types(got)}")
        time.sleep(0.3)
    time.sleep(3.5)  # longer than the worker's flush delay (2 s)
    return new_events(backend, seen)


def types(events: list[Row]) -> dict[str, int]:
    return dict(Counter(e["type"] for e in events))


def local_storage(browser: Browser, key: str) -> Any:
    return browser.worker.evaluate(
        "async (k) => (await chrome.storage.local.get(k))[k] ?? null", key
    )


def search(panel: Any, q: str, expect: str | None = None, *, typed: bool = False) -> None:
    """Search in the panel and wait for the answer to *this* query (not an earlier list)."""
    if not typed:
        panel.fill("#q", q)
    panel.wait_for_selector(f"#main h2.group:has-text('“{q}”')", timeout=15_000)
    panel.wait_for_selector('main[data-state="search"][aria-busy="false"]')
    if expect:
        assert panel.locator(f'#results .card[data-aid="{expect}"]').count() == 1


def assert_no_urls(events: list[Row]) -> None:
    for e in events:
        text = json.dumps(e)
        assert "http" not in text and "/demo/" not in text, e


def test_events_arrive_once_each(browser: Browser) -> None:
    """Sign in, see the suggestions, search (typed slowly), open an aid, rate it, follow its
    link: one event each, with app and context, no URLs; an unmapped page records nothing."""
    backend = browser.backend
    seen = {e["id"] for e in stored_events(backend)}
    browser.open_demo("/demo/crm/")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")
    shown_ids = [
        panel.locator("main .card").nth(i).get_attribute("data-aid")
        for i in range(panel.locator("main .card").count())
    ]

    # Typed slowly (each key after the panel's 250 ms debounce): several search requests...
    searches_before = len(backend.access_log("/api/v1/search"))
    panel.locator("#q").press_sequentially("discount", delay=400)
    search(panel, "discount", "crm-discount-approval", typed=True)
    requests = len(backend.access_log("/api/v1/search"))
    assert requests - searches_before >= 3, "typing did not produce several search requests"
    total = int(panel.inner_text("#main h2.group").split()[0])

    # ... one search event, settled when the aid is opened from the results.
    panel.click('#results .card[data-aid="crm-discount-approval"]')
    browser.state(panel, "aid")
    panel.click("#vote-yes")
    panel.wait_for_selector("#vote-status:has-text('Thanks')")
    panel.click("#back")
    browser.state(panel, "search")

    search(panel, "sales playbook", "crm-sales-playbook")
    panel.click('#results .card[data-aid="crm-sales-playbook"]')
    browser.state(panel, "aid")
    with browser.context.expect_page() as popup:
        panel.click("#open-source")
    popup.value.close()
    browser.shot(panel, "13-events-aid-with-link")

    got = wait_for_events(
        backend,
        seen,
        Counter(
            signed_in=1,
            panel_opened=1,
            suggestions_shown=1,
            search=2,
            aid_opened=2,
            aid_rated=1,
            link_followed=1,
        ),
    )
    assert types(got) == {
        "signed_in": 1,
        "panel_opened": 1,
        "suggestions_shown": 1,
        "search": 2,
        "aid_opened": 2,
        "aid_rated": 1,
        "link_followed": 1,
    }
    by_type = {e["type"]: e for e in got}
    scope = ("crm", "crm-dashboard")
    assert (by_type["panel_opened"]["app"], by_type["panel_opened"]["context"]) == scope
    shown = by_type["suggestions_shown"]
    assert (shown["app"], shown["context"]) == scope
    assert shown["data"]["aids"] == shown_ids
    searches = [e for e in got if e["type"] == "search"]
    assert [s["data"]["query"] for s in searches] == ["discount", "sales playbook"]
    assert searches[0]["data"]["result_count"] == total
    assert [s["app"] for s in searches] == ["crm", "crm"], searches
    opened = [(e["aid"], e["app"], e["context"]) for e in got if e["type"] == "aid_opened"]
    assert opened == [("crm-discount-approval", *scope), ("crm-sales-playbook", *scope)]
    rated = by_type["aid_rated"]
    assert (rated["aid"], rated["app"], rated["data"]) == (
        "crm-discount-approval",
        "crm",
        {"helpful": True},
    )
    # Incident: votes carried the app but not the page context, so colleagues' votes could
    # never rank aids per context (the usage signal saw opens only).
    assert rated["context"] == "crm-dashboard"
    link = by_type["link_followed"]
    assert (link["aid"], link["app"], link["data"]) == (
        "crm-sales-playbook",
        "crm",
        {"url_host": "playbook.example.com"},
    )
    assert_no_urls(got)
    assert local_storage(browser, "analyticsQueue") == []

    # An unmapped page: the panel says so, and no event about it is recorded or sent.
    seen |= {e["id"] for e in got}
    posts = len(backend.access_log("/api/v1/events"))
    panel.click("#back")
    panel.fill("#q", "")
    unmapped = browser.open_demo("/demo/unmapped/?secret=lunch-order-42")
    unmapped.bring_to_front()
    browser.state(panel, "unmapped")
    browser.shot(panel, "14-events-unmapped")
    panel.wait_for_timeout(5000)  # the content script's, the worker's and the flush's delays
    assert new_events(backend, seen) == []
    assert local_storage(browser, "analyticsQueue") == []
    assert len(backend.access_log("/api/v1/events")) == posts  # nothing was even sent


def test_events_recorded_while_the_server_is_down_arrive_once(browser: Browser) -> None:
    """The backend freezes (SIGSTOP: requests hang until the client's timeout) while the learner
    rates an aid (with a comment) and follows its link, and the worker is stopped meanwhile.
    Once the backend is back, the next worker sends the queued events: each arrives once, even
    though the batch that timed out reached the server too and is sent again (the server stores
    each UUID once)."""
    backend = browser.backend
    assert backend.proc is not None
    seen = {e["id"] for e in stored_events(backend)}
    browser.open_demo("/demo/crm/")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")
    search(panel, "sales playbook", "crm-sales-playbook")
    panel.click('#results .card[data-aid="crm-sales-playbook"]')
    browser.state(panel, "aid")
    before = wait_for_events(
        backend,
        seen,
        Counter(signed_in=1, panel_opened=1, suggestions_shown=1, search=1, aid_opened=1),
    )
    seen |= {e["id"] for e in before}

    os.kill(backend.proc.pid, signal.SIGSTOP)
    comment = "Where do I find the playbook for renewals?"
    try:
        panel.click("#vote-no")
        panel.fill("#comment", comment)  # the vote waits for this optional comment
        panel.click("#comment-send")
        with browser.context.expect_page() as popup:
            panel.click("#open-source")
        popup.value.close()
        # The flush (2 s after recording) hangs until its 10 s timeout: the queue keeps both.
        deadline = time.monotonic() + 30
        while not (local_storage(browser, "analyticsBackoff") or {}).get("failures"):
            assert time.monotonic() < deadline, "no failed flush while the server was frozen"
            time.sleep(0.5)
        queued = local_storage(browser, "analyticsQueue")
        assert sorted(e["type"] for e in queued) == ["aid_rated", "link_followed"]
        panel.wait_for_selector("#vote-status:has-text('sent when the server is back')")
        browser.shot(panel, "15-events-server-frozen")
        assert new_events(backend, seen) == []

        browser.worker.evaluate("globalThis.__beforeStop = true")
        browser.stop_worker(panel)  # its retry timer goes with it
    finally:
        os.kill(backend.proc.pid, signal.SIGCONT)

    # Any message wakes a new worker; its start-up flush sends what the old one left queued.
    panel.click("#back")
    search(panel, "benefits")
    assert browser.worker.evaluate("globalThis.__beforeStop ?? null") is None
    got = wait_for_events(backend, seen, Counter(aid_rated=1, link_followed=1, search=1))
    assert types(got) == {"aid_rated": 1, "link_followed": 1, "search": 1}
    ids = [e["id"] for e in got]
    assert len(ids) == len(set(ids))
    assert {e["id"] for e in queued} <= set(ids)
    rated = next(e for e in got if e["type"] == "aid_rated")
    assert (rated["aid"], rated["data"]) == (
        "crm-sales-playbook",
        {"helpful": False, "comment": comment},
    )
    assert local_storage(browser, "analyticsQueue") == []
    assert local_storage(browser, "analyticsBackoff") is None
