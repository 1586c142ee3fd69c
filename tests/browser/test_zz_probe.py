import pytest
from tests.browser.conftest import Browser
pytestmark = pytest.mark.browser

def test_probe(browser: Browser) -> None:
    browser.open_demo("/demo/crm/opportunities/1042")
    panel = browser.open_panel()
    browser.sign_in(panel)
    browser.state(panel, "ready")
    panel.click('#pinned .card[data-aid="crm-log-activity"]')
    browser.state(panel, "aid")
    print("STYLE", panel.evaluate("document.getElementById('comment').getAttribute('style')"))
