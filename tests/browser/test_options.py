"""The extension's settings page (src/options) in the real Chromium: a changed server URL is
validated and persisted in storage.local (where the worker reads it), and values pushed by
policy (storage.managed) are shown read-only and never overwritten.

Real managed storage needs a policy file in /etc/chromium/policies/managed/, which would change
every Chromium on the machine (other test runs included), so the managed case stubs
`chrome.storage.managed` in the page instead: it shows what the page does with policy values,
not Chrome's policy plumbing.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.browser.conftest import EXT_ID, Browser

pytestmark = pytest.mark.browser

OPTIONS_URL = f"chrome-extension://{EXT_ID}/src/options/options.html"


def open_options(browser: Browser, init_script: str | None = None) -> Any:
    page = browser.context.new_page()
    if init_script:
        page.add_init_script(init_script)
    page.goto(OPTIONS_URL)
    wait_loaded(page)
    return page


def wait_loaded(page: Any) -> None:
    """The page fills its fields from storage. (No wait_for_function: the extension's CSP
    forbids the eval it uses.)"""
    deadline = time.monotonic() + 10
    while not page.input_value("#serverUrl"):
        assert time.monotonic() < deadline, "the settings page did not load its values"
        page.wait_for_timeout(100)


def stored_settings(browser: Browser) -> Any:
    return browser.worker.evaluate(
        "async () => (await chrome.storage.local.get('settings')).settings"
    )


def test_settings_page_saves_the_server_url(browser: Browser) -> None:
    page = open_options(browser)
    assert page.input_value("#serverUrl") == browser.backend.url
    assert page.is_hidden("#managed-note")
    # Learners see the server; the sign-in coordinates wait in a closed "Advanced" section.
    assert page.is_visible("#serverUrl")
    for name in ("keycloakUrl", "realm", "clientId"):
        assert not page.is_visible(f"#{name}")
    assert page.is_visible("#signed-out")

    page.fill("#serverUrl", "ftp://inflow.example.com")
    page.click("button[type=submit]")
    page.wait_for_selector("#serverUrl-err:has-text('http(s)')")
    assert stored_settings(browser)["serverUrl"] == browser.backend.url  # nothing saved

    page.fill("#serverUrl", "http://127.0.0.1:9999")
    page.click("button[type=submit]")
    page.wait_for_selector("#status:has-text('Saved')")
    assert page.inner_text("#serverUrl-err") == ""
    assert stored_settings(browser) == {
        "serverUrl": "http://127.0.0.1:9999",
        "keycloakUrl": "http://127.0.0.1:8081",
        "realm": "inflow",
        "clientId": "inflow-extension",
    }
    browser.shot(page, "16-settings-saved")

    page.reload()
    wait_loaded(page)
    assert page.input_value("#serverUrl") == "http://127.0.0.1:9999"
    # The worker reacted to the change: signed out.
    deadline = time.monotonic() + 10
    while (browser.session_storage("view") or {}).get("state") != "signed-out":
        assert time.monotonic() < deadline, browser.session_storage("view")
        page.wait_for_timeout(200)


MANAGED_STUB = """
(() => {
  const policy = { serverUrl: "https://inflow.corp.example.com", realm: "corp" };
  const managed = { get: async () => ({ ...policy }), onChanged: { addListener() {} } };
  Object.defineProperty(chrome.storage, "managed", { value: managed, configurable: true });
})();
"""


def test_managed_values_are_read_only(browser: Browser) -> None:
    page = open_options(browser, MANAGED_STUB)
    page.wait_for_selector("#managed-note:not([hidden])")
    assert page.input_value("#serverUrl") == "https://inflow.corp.example.com"
    assert page.input_value("#realm") == "corp"
    assert page.get_attribute("#serverUrl", "readonly") is not None
    assert page.get_attribute("#realm", "readonly") is not None
    assert page.get_attribute("#serverUrl", "title") == "Set by your organisation"
    assert page.get_attribute("#keycloakUrl", "readonly") is None
    browser.shot(page, "17-settings-managed")

    # Saving changes only what policy does not set.
    page.click("#advanced summary")
    page.fill("#keycloakUrl", "http://127.0.0.1:8082")
    page.click("button[type=submit]")
    page.wait_for_selector("#status:has-text('Saved')")
    saved = stored_settings(browser)
    assert saved == {"keycloakUrl": "http://127.0.0.1:8082", "clientId": "inflow-extension"}


def test_learner_sees_who_is_signed_in_and_can_sign_out(browser: Browser) -> None:
    """The settings page showed learners the Keycloak URL, realm and client id; it now shows what
    a learner needs: the server, who is signed in, and Sign out."""
    browser.open_demo("/demo/crm/")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")
    page = open_options(browser)
    page.wait_for_selector("#signed-in:not([hidden])")
    assert page.inner_text("#account-user") == "learner"
    assert not page.is_visible("#keycloakUrl")
    page.set_viewport_size({"width": 360, "height": 720})
    browser.shot(page, "36-settings-learner")
    page.click("#account-sign-out")
    page.wait_for_selector("#signed-out:not([hidden])")
    browser.state(panel, "signed-out")
    assert browser.session_storage("tokens") is None


ALL_MANAGED_STUB = """
(() => {
  const policy = { keycloakUrl: "https://sso.corp.example.com", realm: "corp", clientId: "inflow" };
  const managed = { get: async () => ({ ...policy }), onChanged: { addListener() {} } };
  Object.defineProperty(chrome.storage, "managed", { value: managed, configurable: true });
})();
"""


def test_sign_in_settings_set_by_policy_are_not_shown(browser: Browser) -> None:
    """When the administrator presets every sign-in setting, learners see none of them."""
    page = open_options(browser, ALL_MANAGED_STUB)
    page.wait_for_selector("#managed-note:not([hidden])")
    assert page.is_hidden("#advanced")
    assert page.is_visible("#serverUrl")
    assert page.get_attribute("#serverUrl", "readonly") is None
