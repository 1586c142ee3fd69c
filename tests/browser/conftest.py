"""Fixtures for the extension's browser tests: the real backend, the real Keycloak and Debian's
Chromium with the unpacked extension (never a downloaded browser).

- `backend` (session): `python -m server serve` on a free port with its own data dir, the demo
  content, CORS for the extension's origin and a request log (INFLOW_REQUEST_LOG: one JSON line per
  API request, with its body) that the privacy test reads.
- `browser` (per test): a persistent Chromium context with the extension loaded; its settings point
  at the backend's port (written into storage.local through the service worker before any page
  opens, the same key the settings page writes). Helpers open the demo app, the panel page and
  sign in through the real Keycloak login form.

The side panel itself cannot be opened by automation, so the tests open the panel page in a tab;
the worker ignores the panel's own tab and follows the last active web tab.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.nodes import serve

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = Path(os.environ.get("INFLOW_TEST_EXTENSION_DIR", ROOT / "extension"))
CHROMIUM = os.environ.get("INFLOW_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "extension"
EXT_ID = (ROOT / "auth" / "extension-id.txt").read_text(encoding="utf-8").strip()
PANEL_URL = f"chrome-extension://{EXT_ID}/src/panel/panel.html"
KEYCLOAK_URL = "http://127.0.0.1:8081"
DEMO_USER = ("learner", "learner")
# Flags for every Chromium the tests start: no sandbox (CI runs as root), no GPU, no background
# traffic, updates, sync or first-run UI.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.2)


@dataclass
class Backend:
    """A running `python -m server serve` subprocess."""

    port: int
    data_dir: Path
    request_log: Path | None
    proc: subprocess.Popen[bytes] | None = None
    out: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "INFLOW_DATA_DIR": str(self.data_dir),
            "INFLOW_CONTENT_DIR": str(ROOT / "content" / "demo"),
            "INFLOW_CORS_ORIGINS": f"chrome-extension://{EXT_ID}",
            "INFLOW_REQUEST_LOG": str(self.request_log or ""),  # "" = no log
            "INFLOW_BASE_URL": self.url,
            "INFLOW_SEARCH_THREADS": "2",
        }
        self.out = (self.data_dir / "server.log").open("ab")
        self.proc = serve(self.port, env, self.out)
        try:
            wait_http(f"{self.url}/readyz", 90)
        except TimeoutError:
            self.stop()
            log = (self.data_dir / "server.log").read_text(errors="replace")[-3000:]
            pytest.fail(f"the backend did not start:\n{log}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None
        if self.out is not None:
            self.out.close()
            self.out = None

    def requests(self) -> list[dict[str, Any]]:
        """Every API request the server has logged so far."""
        if self.request_log is None or not self.request_log.exists():
            return []
        lines = self.request_log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def access_log(self, path: str) -> list[str]:
        """The request-log lines (server.log, logger `inflow.request`: `METHOD PATH STATUS
        TIMEms`, server/logs.py) for requests to `path`."""
        return [line for line, _status in self.requests_logged(path)]

    def requests_logged(self, path: str) -> list[tuple[str, int]]:
        """(line, status) of each request to `path` in the request log. Tests that count these
        also assert some were logged: a format this no longer reads must fail, not count 0."""
        log = self.data_dir / "server.log"
        if not log.exists():
            return []
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        request = re.compile(rf" inflow\.request \[[^\]]*\] [A-Z]+ {re.escape(path)} (\d{{3}}) ")
        return [(line, int(m.group(1))) for line in lines if (m := request.search(line))]

    def feedback_rows(self) -> list[tuple[Any, ...]]:
        import sqlite3

        with sqlite3.connect(self.data_dir / "inflow.sqlite3") as db:
            return list(db.execute("SELECT aid_id, helpful, app_id FROM feedback ORDER BY id"))

    def feedback_comments(self, aid_id: str) -> list[tuple[int, str, str]]:
        """(helpful, comment, app_id) of every feedback row for `aid_id`, oldest first
        (feedback keeps no page URL and no subject: docs/analytics.md)."""
        import sqlite3

        with closing(sqlite3.connect(self.data_dir / "inflow.sqlite3")) as db:
            rows = db.execute(
                "SELECT helpful, comment, app_id FROM feedback WHERE aid_id=? ORDER BY id",
                (aid_id,),
            ).fetchall()
        return [(int(h), str(c), str(u)) for h, c, u in rows]


def make_backend(tmp: Path, *, request_log: bool = True) -> Backend:
    tmp.mkdir(parents=True, exist_ok=True)
    return Backend(free_port(), tmp, tmp / "requests.jsonl" if request_log else None)


@contextmanager
def own_backend(
    tmp_path_factory: pytest.TempPathFactory, name: str, env: dict[str, str] | None = None
) -> Iterator[Backend]:
    """A backend of its own, for tests that change content other tests rely on; `env` is added
    to its environment."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    backend = make_backend(tmp_path_factory.mktemp(name))
    with pytest.MonkeyPatch.context() as mp:  # Backend.start passes os.environ on
        for key, value in (env or {}).items():
            mp.setenv(key, value)
        backend.start()
    try:
        yield backend
    finally:
        backend.stop()


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    if not (EXTENSION / "src" / "lib" / "urlrules.js").exists():
        pytest.fail("extension/src/lib/urlrules.js is missing")
    return CHROMIUM


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory, keycloak: Any) -> Iterator[Backend]:
    b = make_backend(tmp_path_factory.mktemp("inflow-backend"))
    b.start()
    yield b
    b.stop()


@dataclass
class Browser:
    """One Chromium profile with the extension, and helpers for the demo flows."""

    context: Any
    backend: Backend
    artifacts: Path
    dialogs: list[str] = field(default_factory=list)

    @property
    def worker(self) -> Any:
        for sw in self.context.service_workers:
            if sw.url.startswith(f"chrome-extension://{EXT_ID}/"):
                return sw
        return self.context.wait_for_event(
            "serviceworker",
            predicate=lambda w: w.url.startswith(f"chrome-extension://{EXT_ID}/"),
            timeout=20_000,
        )

    def open_demo(self, path: str) -> Any:
        page = self.context.new_page()
        page.on("dialog", self._on_dialog)
        page.goto(f"{self.backend.url}{path}")
        return page

    def open_panel(self) -> Any:
        panel = self.context.new_page()
        panel.on("dialog", self._on_dialog)
        panel.set_viewport_size({"width": 360, "height": 720})
        panel.goto(PANEL_URL)
        return panel

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def sign_in(self, panel: Any, user: tuple[str, str] = DEMO_USER) -> None:
        """Click Sign in; fill the real Keycloak login form in the launchWebAuthFlow window.

        With a live Keycloak SSO session (signing in again) no form shows: the flow completes
        by itself, so this waits for whichever comes first.
        """
        login = f"{KEYCLOAK_URL}/realms/inflow/protocol/openid-connect/auth"
        panel.wait_for_selector("#sign-in:not([disabled])", timeout=15_000)
        panel.click("#sign-in")
        deadline = time.monotonic() + 45
        filled: set[int] = set()
        while time.monotonic() < deadline:
            if panel.locator("#sign-out:not([hidden])").count():
                return
            for page in self.context.pages:
                if page.url.startswith(login) and id(page) not in filled:
                    # The window may close under us (flow done): that is fine.
                    with suppress(PlaywrightError):
                        page.wait_for_selector("#username", timeout=10_000)
                        page.fill("#username", user[0])
                        page.fill("#password", user[1])
                        page.click("#kc-login")
                        filled.add(id(page))
            panel.wait_for_timeout(200)
        raise AssertionError(f"sign-in did not complete; panel says: {panel.inner_text('main')}")

    def state(self, panel: Any, state: str, timeout: float = 20_000) -> None:
        panel.wait_for_selector(f'main[data-state="{state}"][aria-busy="false"]', timeout=timeout)

    def shot(self, page: Any, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def session_storage(self, key: str) -> Any:
        return self.worker.evaluate(
            "async (k) => (await chrome.storage.session.get(k))[k] ?? null", key
        )

    def stop_worker(self, page: Any) -> None:
        """Stop the extension's service worker the way Chrome does when it idles (CDP)."""
        cdp = self.context.new_cdp_session(page)
        try:
            cdp.send("ServiceWorker.enable")
            cdp.send("ServiceWorker.stopAllWorkers")
        finally:
            cdp.detach()


@contextmanager
def launch(chromium: str, backend: Backend, profile: Path) -> Iterator[Browser]:
    """Chromium with the unpacked extension, its settings pointing at `backend`."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ext = str(EXTENSION)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium,
            headless=True,
            args=[
                f"--disable-extensions-except={ext}",
                f"--load-extension={ext}",
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
            yield b
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(chromium: str, backend: Backend, tmp_path: Path) -> Iterator[Browser]:
    with launch(chromium, backend, tmp_path / "profile") as b:
        yield b
