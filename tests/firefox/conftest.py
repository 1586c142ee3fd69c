"""Fixtures for the extension in Firefox: Debian's firefox-esr driven by Selenium 4 through a
geckodriver built from crates.io (`make firefox`), the real backend and the real Keycloak.

- `firefox_bins` (session): the firefox-esr and geckodriver paths; a missing one fails (CI fails
  on skips, and `make test` installs both).
- `addon_dir` (session): the extension's shipped files (manifest, src, icons, managed schema)
  copied out of extension/, so Selenium does not zip node_modules.
- `ff_backend` (session): `python -m server serve` with the demo content (tests/browser's Backend).
- `firefox` (per test): a fresh profile with the extension installed as a temporary add-on under
  a fixed UUID, its settings pointing at the backend. Helpers open a demo page, the sidebar's page
  and sign in through the real Keycloak form in the launchWebAuthFlow window.

WebDriver cannot navigate to moz-extension: URLs, so the sidebar's page (the same document the
sidebar shows) is opened as a tab from the chrome context with gBrowser.addTrustedTab; the
extension ignores its own panel tab and follows the last active web tab, as in Chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.firefox.options import Options
from selenium.webdriver.firefox.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import KEYCLOAK_URL, Backend, make_backend

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "extension"
FIREFOX = os.environ.get("INFLOW_TEST_FIREFOX", "/usr/bin/firefox-esr")
GECKODRIVER = os.environ.get(
    "INFLOW_TEST_GECKODRIVER", str(ROOT / ".cache" / "cargo" / "bin" / "geckodriver")
)
ARTIFACTS = ROOT / "test-artifacts" / "firefox"
MANIFEST = json.loads((EXTENSION / "manifest.json").read_text(encoding="utf-8"))
GECKO_ID: str = MANIFEST["browser_specific_settings"]["gecko"]["id"]
# Fixed per test run (pref extensions.webextensions.uuids); a real install gets a random one.
EXT_UUID = str(uuid.uuid5(uuid.NAMESPACE_DNS, GECKO_ID))
EXT_BASE = f"moz-extension://{EXT_UUID}"
PANEL_PATH = MANIFEST["sidebar_action"]["default_panel"]
# Firefox's widget id for an add-on: its id lower-cased, other characters as "_".
WIDGET_ID = re.sub(r"[^a-z0-9_-]", "_", GECKO_ID.lower())
SHIPPED = ("manifest.json", "managed_schema.json", "src", "icons")
LOGIN_URL = f"{KEYCLOAK_URL}/realms/inflow/protocol/openid-connect/auth"
DEMO_USER = ("learner", "learner")


@pytest.fixture(scope="session")
def firefox_bins() -> tuple[str, str]:
    for path, how in ((FIREFOX, "apt-get install firefox-esr"), (GECKODRIVER, "make firefox")):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing ({how})")
    return FIREFOX, GECKODRIVER


@pytest.fixture(scope="session")
def addon_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("inflow-addon") / "extension"
    dest.mkdir()
    for name in SHIPPED:
        src = EXTENSION / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="session")
def ff_backend(tmp_path_factory: pytest.TempPathFactory, keycloak: Any) -> Iterator[Backend]:
    b = make_backend(tmp_path_factory.mktemp("inflow-ff-backend"))
    b.start()
    yield b
    b.stop()


@dataclass
class Firefox:
    """One firefox-esr profile with the extension, and helpers for the demo flows."""

    driver: webdriver.Firefox
    backend: Backend

    def wait(self, timeout: float = 30) -> WebDriverWait[webdriver.Firefox]:
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1)

    def open_demo(self, path: str) -> str:
        """Load a demo page in the current web tab; returns its window handle."""
        self.driver.get(f"{self.backend.url}{path}")
        return self.driver.current_window_handle

    def open_extension_page(self, path: str) -> str:
        """Open moz-extension://<uuid>/<path> in a new tab (from the chrome context); returns
        its window handle, switched to."""
        before = set(self.driver.window_handles)
        with self.driver.context(self.driver.CONTEXT_CHROME):
            self.driver.execute_script(
                "gBrowser.selectedTab = gBrowser.addTrustedTab(arguments[0]);",
                f"{EXT_BASE}/{path}",
            )
        handle = self.new_window(before)
        self.driver.switch_to.window(handle)
        self.wait().until(lambda d: d.current_url.startswith(EXT_BASE))
        self.wait().until(lambda d: d.execute_script("return document.readyState") == "complete")
        return handle

    def new_window(self, before: set[str], timeout: float = 20) -> str:
        """The handle of a tab or window that was not among `before`, once one opens."""
        new: set[str] = self.wait(timeout).until(lambda d: set(d.window_handles) - before)
        return new.pop()

    def open_panel(self) -> str:
        handle = self.open_extension_page(PANEL_PATH)
        self.driver.set_window_size(360 + 40, 800)
        return handle

    def click_toolbar_button(self) -> None:
        """Click the Inflow toolbar button (pinned to the navigation bar first), as a user does."""
        widget = f"{WIDGET_ID}-browser-action"
        with self.driver.context(self.driver.CONTEXT_CHROME):
            self.driver.execute_script(
                "CustomizableUI.addWidgetToArea(arguments[0], CustomizableUI.AREA_NAVBAR);", widget
            )
            self.driver.find_element(By.CSS_SELECTOR, f"#{widget} toolbarbutton").click()

    def sidebar(self) -> tuple[str, str | None]:
        """(id of the open sidebar or "", URL loaded in it or None), read from the chrome."""
        with self.driver.context(self.driver.CONTEXT_CHROME):
            got: list[Any] = self.driver.execute_script(
                "const b = SidebarController.isOpen && SidebarController.browser.contentDocument"
                "  ?.getElementById('webext-panels-browser');"
                "return [SidebarController.isOpen ? SidebarController.currentID : '',"
                " b ? b.currentURI.spec : null];"
            )
        return str(got[0]), got[1]

    def window_shot(self, name: str) -> Path:
        """A screenshot of the whole browser window (sidebar included), from the chrome."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        with self.driver.context(self.driver.CONTEXT_CHROME):
            self.driver.save_screenshot(str(path))
        return path

    def view(self) -> dict[str, Any]:
        """What the current panel tab shows, read in one script (no stale elements): the user,
        the "where" line, the pinned aids' ids, their reasons and every card's aid id."""
        got: dict[str, Any] = self.driver.execute_script(
            "const q = (s) => Array.from(document.querySelectorAll(s));"
            "const text = (id) => document.getElementById(id)?.textContent ?? '';"
            "return {user: text('user').trim(), where: text('where'),"
            " pinned: q('#pinned .card').map((c) => c.dataset.aid),"
            " why: q('#pinned .card .why').map((e) => e.textContent),"
            " cards: q('main .card').map((c) => c.dataset.aid ?? '')};"
        )
        return got

    def state(self, state: str, timeout: float = 20) -> None:
        css = f'main[data-state="{state}"][aria-busy="false"]'
        self.wait(timeout).until(lambda d: d.find_elements(By.CSS_SELECTOR, css))

    def sign_in(self, panel: str, user: tuple[str, str] = DEMO_USER) -> None:
        """Click Sign in in the panel; fill the real Keycloak form in the window Firefox opens for
        identity.launchWebAuthFlow; wait until the panel shows the signed-in user."""
        d = self.driver
        d.switch_to.window(panel)
        self.wait(15).until(lambda d: d.find_element(By.ID, "sign-in").is_enabled())
        before = set(d.window_handles)
        d.find_element(By.ID, "sign-in").click()
        login = self.new_window(before, 30)
        d.switch_to.window(login)
        self.wait(30).until(lambda d: d.current_url.startswith(LOGIN_URL))
        self.wait(15).until(lambda d: d.find_elements(By.ID, "username"))
        d.find_element(By.ID, "username").send_keys(user[0])
        d.find_element(By.ID, "password").send_keys(user[1])
        d.find_element(By.ID, "kc-login").click()
        # The flow ends at the allizom.org redirect URL: Firefox closes the window by itself.
        self.wait(30).until(lambda d: login not in d.window_handles)
        d.switch_to.window(panel)
        self.wait(20).until(
            lambda d: any(e.is_displayed() for e in d.find_elements(By.ID, "sign-out"))
        )

    def storage(self, area: str, key: str) -> Any:
        """A value of chrome.storage.<area>, read from an extension page of this profile."""
        return self.driver.execute_async_script(
            "const [area, key, done] = arguments;"
            "chrome.storage[area].get(key).then((got) => done(got[key] ?? null));",
            area,
            key,
        )

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


def _options(firefox: str) -> Options:
    opts = Options()
    opts.binary_location = firefox
    opts.add_argument("-headless")
    opts.set_preference("extensions.webextensions.uuids", json.dumps({GECKO_ID: EXT_UUID}))
    # Quiet, offline-friendly profile: no update checks, no first-run pages, no telemetry.
    quiet: dict[str, str | bool] = {
        "app.update.enabled": False,
        "browser.shell.checkDefaultBrowser": False,
        "browser.startup.homepage_override.mstone": "ignore",
        "datareporting.policy.dataSubmissionEnabled": False,
        "toolkit.telemetry.reportingpolicy.firstRun": False,
        "extensions.update.enabled": False,
        "browser.safebrowsing.malware.enabled": False,
        "browser.safebrowsing.phishing.enabled": False,
        "network.captive-portal-service.enabled": False,
    }
    for pref, value in quiet.items():
        opts.set_preference(pref, value)
    return opts


@pytest.fixture
def firefox(
    firefox_bins: tuple[str, str], addon_dir: Path, ff_backend: Backend
) -> Iterator[Firefox]:
    binary, geckodriver = firefox_bins
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    service = Service(
        geckodriver,
        service_args=["--allow-system-access"],  # the chrome context (addTrustedTab)
        log_output=str(ARTIFACTS / "geckodriver.log"),
    )
    driver = webdriver.Firefox(options=_options(binary), service=service)
    try:
        driver.install_addon(str(addon_dir), temporary=True)
        ff = Firefox(driver, ff_backend)
        web_tab = driver.current_window_handle
        # Settings, as the settings page writes them, before any web page opens.
        ff.open_extension_page("src/options/options.html")
        driver.execute_async_script(
            "const [url, keycloak, done] = arguments;"
            "chrome.storage.local.set({settings: {serverUrl: url, keycloakUrl: keycloak,"
            " realm: 'inflow', clientId: 'inflow-extension'}}).then(() => done(true));",
            ff_backend.url,
            KEYCLOAK_URL,
        )
        driver.close()
        driver.switch_to.window(web_tab)
        yield ff
    finally:
        with suppress(WebDriverException):
            driver.quit()
