"""The extension in Firefox (sidebar_action, background scripts, launchWebAuthFlow), against the
real backend and Keycloak, in Debian's firefox-esr (see conftest.py)."""

from __future__ import annotations

import hashlib
import json

import pytest
from selenium.webdriver.common.by import By

from tests.firefox.conftest import EXT_BASE, GECKO_ID, PANEL_PATH, ROOT, WIDGET_ID, Firefox

pytestmark = pytest.mark.browser


def test_sign_in_open_a_demo_page_and_see_its_aids(firefox: Firefox) -> None:
    """A Firefox user signs in through Keycloak and sees the demo CRM's aids in the sidebar page.

    Guards the Chromium-only extension: in Firefox the background died on chrome.sidePanel (so no
    message was ever answered), and Keycloak refused the sign-in because the Firefox redirect URL
    (identity.getRedirectURL(): https://<sha1 of the add-on id>.extensions.allizom.org/) was not
    registered for the extension client."""
    demo = firefox.open_demo("/demo/crm/")
    firefox.wait().until(lambda d: "Pipeline dashboard" in d.find_element(By.TAG_NAME, "h1").text)
    panel = firefox.open_panel()
    firefox.state("signed-out")
    firefox.shot("01-signed-out")

    firefox.sign_in(panel)
    firefox.state("ready")
    firefox.shot("02-ready-crm")
    d = firefox.driver
    view = firefox.view()
    assert view["user"] == "learner"
    assert "Northwind CRM" in view["where"] and "Pipeline dashboard" in view["where"]
    assert view["pinned"][:1] == ["crm-pipeline-review-checklist"]
    assert view["why"] and "Pinned" in view["why"][0]

    # The redirect URL Firefox uses is the one the realm registers (derived from the fixed id).
    redirect = d.execute_script("return chrome.identity.getRedirectURL();")
    addon_hash = hashlib.sha1(GECKO_ID.encode(), usedforsecurity=False).hexdigest()
    assert redirect == f"https://{addon_hash}.extensions.allizom.org/"
    realm = json.loads((ROOT / "auth" / "realm-inflow.json").read_text(encoding="utf-8"))
    client = next(c for c in realm["clients"] if c["clientId"] == "inflow-extension")
    assert redirect in client["redirectUris"]

    # The panel follows the web tab: another demo app's page brings that app's aids.
    d.switch_to.window(demo)
    firefox.open_demo("/demo/expenses/")
    d.switch_to.window(panel)
    firefox.wait().until(lambda _: "Expensely" in firefox.view()["where"])
    firefox.state("ready")
    firefox.shot("03-ready-expenses")
    cards = firefox.view()["cards"]
    assert cards and not [c for c in cards if c.startswith("crm-")]

    # The toolbar button opens the real sidebar on the same panel page, signed in there too.
    assert firefox.sidebar() == ("", None)
    d.switch_to.window(demo)
    d.set_window_size(1280, 800)
    firefox.click_toolbar_button()
    # The sidebar's browser starts at about:blank, then loads the panel page.
    shown = (f"{WIDGET_ID}-sidebar-action", f"{EXT_BASE}/{PANEL_PATH}")
    firefox.wait().until(lambda _: firefox.sidebar() == shown)
    firefox.window_shot("04-sidebar")
