"""Inflow behind a real nginx (deploy/nginx/inflow.conf as docs/proxy.md documents it) with TLS,
two nodes on one PostgreSQL and the real Keycloak (conftest.py: one site for the module).

A learner, an admin and the extension use the site through https://127.0.0.1:8443 in Debian's
Chromium: Keycloak sends them back to the proxy's URL, the session cookies are `__Host-` and
Secure, the extension's CORS calls pass the proxy; requests reach both nodes and a write on one
is read on the other; the nodes see the client nginx names, and only nginx may name it; with a
node dead the site keeps answering.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, EXT_ID, PANEL_URL, Backend, Browser
from tests.keycloak import KEYCLOAK_URL, access_token
from tests.nodes import Node
from tests.proxy.conftest import ADDRESS_BURST, BASE_URL, Site

pytestmark = [pytest.mark.browser, pytest.mark.keycloak]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "proxy"
LOGIN = f"{KEYCLOAK_URL}/realms/inflow/protocol/openid-connect/auth"
# Chromium trusts the self-signed certificate of the test's nginx (Playwright's option covers
# pages, the flag covers the extension's service worker).
TLS_ARGS = [*CHROMIUM_ARGS, "--ignore-certificate-errors"]


def fetch(
    site: Site,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    source: str = "127.0.0.1",
    node: Node | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request from `source` (a loopback address of its own: a client of its own) through
    nginx over verified TLS, or straight to `node` over http."""
    conn: http.client.HTTPConnection
    if node is None:
        tls = ssl.create_default_context(cafile=str(site.certificate))
        conn = http.client.HTTPSConnection(
            "127.0.0.1", site.nginx.https_port, context=tls, source_address=(source, 0), timeout=30
        )
    else:
        conn = http.client.HTTPConnection(
            "127.0.0.1", node.port, source_address=(source, 0), timeout=30
        )
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def logged(node: Node, path: str) -> list[tuple[int, str]]:
    """(status, client) of each request to `path` in `node`'s request log (server/logs.py:
    `inflow.request [id] METHOD PATH STATUS TIMEms CLIENT`)."""
    line = re.compile(rf" inflow\.request \[[^\]]*\] [A-Z]+ {re.escape(path)} (\d{{3}}) \S+ (\S+)$")
    return [
        (int(m.group(1)), m.group(2))
        for text in node.log_text().splitlines()
        if (m := line.search(text))
    ]


def wait_until(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.2)


@pytest.fixture
def tab(site: Site) -> Iterator[Any]:
    """A fresh Chromium (no cookies, no Keycloak session) trusting the test's certificate."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=TLS_ARGS)
        try:
            context = browser.new_context(
                ignore_https_errors=True, viewport={"width": 1280, "height": 900}
            )
            yield context.new_page()
            context.close()
        finally:
            browser.close()


def sign_in_on_keycloak(page: Any, user: str, password: str, callback: str) -> None:
    """Fill Keycloak's form; the sign-in asked Keycloak to come back to `callback`."""
    page.wait_for_selector("#username", timeout=20_000)
    assert page.url.startswith(LOGIN)
    redirect = parse_qs(urlsplit(page.url).query)["redirect_uri"]
    assert redirect == [callback]  # the proxy's https URL, not a node's
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#kc-login")


def session_cookie(page: Any, name: str) -> dict[str, Any]:
    cookies = {c["name"]: c for c in page.context.cookies(BASE_URL)}
    assert name in cookies, sorted(cookies)
    assert name.removeprefix("__Host-") not in cookies  # not the plain-http development name
    return dict(cookies[name])


def test_learner_signs_in_and_reads_through_the_proxy(site: Site, tab: Any) -> None:
    page = tab
    page.goto(f"{BASE_URL}/learn/")
    sign_in_on_keycloak(page, "newhire", "newhire", f"{BASE_URL}/learn/callback")
    page.wait_for_url(f"{BASE_URL}/learn/", timeout=20_000)
    cookie = session_cookie(page, "__Host-inflow-learn")
    assert cookie["secure"] and cookie["httpOnly"] and cookie["path"] == "/"
    assert "domain" not in cookie or cookie["domain"] == "127.0.0.1"

    # Pages keep working while nginx spreads the requests over both nodes.
    page.goto(f"{BASE_URL}/learn/search?q=expense+report")
    results = page.locator("ol.results > li > a")
    assert results.count() > 0
    title = results.first.inner_text()
    results.first.click()
    page.wait_for_selector("article.aid")
    assert page.inner_text("h1") == title
    for path in ("/learn/apps", "/learn/paths", "/learn/tips", "/learn/", "/learn/apps"):
        page.goto(BASE_URL + path)
        assert page.locator("main").count() == 1
        assert page.url == BASE_URL + path  # still signed in: no trip to Keycloak
    page.screenshot(path=str(ARTIFACTS / "learn.png"), full_page=True)
    learn = re.compile(r" inflow\.request \[[^\]]*\] GET /learn/\S* 200 ")
    for node in site.nodes:  # pages, scripts, styles: whatever nginx sent each node
        lines = node.log_text().splitlines()
        assert any(learn.search(line) for line in lines), f"node {node.name} served no /learn"


def test_admin_edits_an_aid_through_the_proxy_and_both_nodes_have_it(site: Site, tab: Any) -> None:
    page = tab
    page.goto(f"{BASE_URL}/admin/aids")
    sign_in_on_keycloak(page, "admin", "admin", f"{BASE_URL}/admin/callback")
    page.wait_for_url(f"{BASE_URL}/admin/aids", timeout=20_000)
    cookie = session_cookie(page, "__Host-inflow_session")
    assert cookie["secure"] and cookie["httpOnly"]

    # A form post with its CSRF token, through nginx, to whichever node.
    summary = f"Open the pipeline, then New opportunity ({uuid.uuid4().hex[:8]})."
    page.goto(f"{BASE_URL}/admin/aids/crm-create-opportunity")
    page.fill('input[name="summary"]', summary)
    page.click('button[name="action"][value="save"]')
    page.wait_for_url(f"{BASE_URL}/admin/aids/crm-create-opportunity?notice=*", timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "admin-saved.png"), full_page=True)

    # Each node, asked directly, serves the new summary (one database).
    token = access_token("learner")
    for node in site.nodes:

        def has_it(node: Node = node) -> bool:
            status, _h, body = fetch(
                site,
                "GET",
                "/api/v1/aids/crm-create-opportunity",
                headers={"Authorization": f"Bearer {token}"},
                source="127.0.0.9",
                node=node,
            )
            return status == 200 and json.loads(body)["summary"] == summary

        wait_until(has_it, f"node {node.name} serves the edited summary")

    # The same post without the token is refused, also through the proxy.
    status, headers, _body = fetch(
        site,
        "POST",
        "/admin/aids/crm-create-opportunity",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"__Host-inflow_session={cookie['value']}",
        },
        body=b"summary=forged&action=save",
    )
    assert status == 403 and headers["content-type"].startswith("application/problem+json")


def test_extension_panel_calls_the_https_server_through_the_proxy(
    site: Site, tmp_path: Path
) -> None:
    """The panel set to the proxy's https URL signs in and shows the page's aids: its calls
    (preflights included) pass nginx, and the node answers them for the extension's origin."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ext = str(ROOT / "extension")
    # The work app (the demo CRM) is another site: here one node's own http port.
    work_app = Backend(site.nodes[0].port, site.nodes[0].data_dir, None)
    before = len(site.nginx.access_log())
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            ignore_https_errors=True,
            args=[f"--disable-extensions-except={ext}", f"--load-extension={ext}", *TLS_ARGS],
        )
        try:
            b = Browser(context, work_app, ARTIFACTS)
            b.worker.evaluate(
                "async (url) => { await chrome.storage.local.set({settings: {"
                "serverUrl: url, keycloakUrl: 'http://127.0.0.1:8081', realm: 'inflow',"
                "clientId: 'inflow-extension'}}); }",
                BASE_URL,
            )
            demo = b.open_demo("/demo/crm/")
            demo.wait_for_selector("h1:has-text('Pipeline dashboard')")
            panel = b.open_panel()
            assert panel.url == PANEL_URL
            b.sign_in(panel)
            b.state(panel, "ready")
            b.shot(panel, "extension-ready")
            assert "Northwind CRM" in panel.inner_text("#where")
            assert panel.locator("#pinned .card").count() == 3
        finally:
            context.close()
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
    suggests = [
        line
        for line in site.nginx.access_log()[before:]
        if '"POST /api/v1/suggest ' in line and '" 200 ' in line
    ]
    assert suggests, "no suggest went through nginx"
    origin = f"chrome-extension://{EXT_ID}"
    status, headers, _ = fetch(
        site,
        "OPTIONS",
        "/api/v1/suggest",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert status == 204 and headers["access-control-allow-origin"] == origin


def test_nodes_see_the_client_nginx_names_and_only_nginx_may_name_one(site: Site) -> None:
    """Rate limits and logs count the client nginx saw: a client cannot name another address
    (nginx replaces X-Forwarded-For), and a caller reaching a node directly is not trusted."""
    probe = f"/proxy-probe-{uuid.uuid4().hex[:8]}"
    assert fetch(site, "GET", probe, source="127.0.0.3")[0] == 404
    spoof = {"X-Forwarded-For": "198.51.100.9"}
    assert fetch(site, "GET", probe, source="127.0.0.3", headers=spoof)[0] == 404
    assert fetch(site, "GET", probe, source="127.0.0.5", headers=spoof, node=site.nodes[1])[0] == (
        404
    )
    clients = sorted(c for node in site.nodes for _s, c in logged(node, probe))
    assert clients == ["127.0.0.3", "127.0.0.3", "127.0.0.5"]

    # The per-address limit (ADDRESS_BURST a node, next to no refill): 127.0.0.6 runs out on
    # both nodes, 127.0.0.7 does not, and 127.0.0.6 cannot pass as 127.0.0.7.
    statuses = []
    for _ in range(3 * ADDRESS_BURST):
        statuses.append(fetch(site, "GET", "/api/v1/rules", source="127.0.0.6")[0])
        if statuses[-2:] == [429, 429]:
            break
    assert statuses[-2:] == [429, 429] and statuses[0] == 401, statuses
    status, headers, _body = fetch(
        site, "GET", "/api/v1/rules", source="127.0.0.6", headers={"X-Forwarded-For": "127.0.0.7"}
    )
    assert status == 429 and int(headers["retry-after"]) >= 1
    assert headers["content-type"].startswith("application/problem+json")
    assert fetch(site, "GET", "/api/v1/rules", source="127.0.0.7")[0] == 401  # not limited

    # What nginx keeps to itself or refuses itself, and plain http.
    status, headers, _body = fetch(site, "GET", "/metrics")
    assert status == 404 and headers["content-type"] == "application/problem+json"
    assert "strict-transport-security" in headers
    big = b"x" * (11 * 1024 * 1024)  # over client_max_body_size (10m)
    status, headers, _body = fetch(site, "POST", "/api/v1/events", body=big, source="127.0.0.4")
    assert status == 413 and headers["content-type"] == "application/problem+json"
    conn = http.client.HTTPConnection("127.0.0.1", site.http_port, timeout=10)
    try:
        conn.request("GET", "/learn/?q=x")
        resp = conn.getresponse()
        assert resp.status == 301 and resp.getheader("Location") == f"{BASE_URL}/learn/?q=x"
    finally:
        conn.close()


def test_a_dead_node_and_the_site_keeps_serving(site: Site) -> None:
    """kill -9 one node: nginx sends every request to the other (a refused connection is retried
    there), so learners see no error. With no node left, a problem the extension can read."""
    token = access_token("learner")
    auth = {"Authorization": f"Bearer {token}"}
    site.nodes[1].kill()
    one = {"source": "127.0.0.8"}  # a client of its own (rate limits)
    statuses = [fetch(site, "GET", "/api/v1/rules", headers=auth, **one)[0] for _ in range(10)]
    body = json.dumps({"url": "http://127.0.0.1/demo/crm/"}).encode()
    auth_json = {**auth, "Content-Type": "application/json"}
    statuses += [
        fetch(site, "POST", "/api/v1/suggest", headers=auth_json, body=body, **one)[0]
        for _ in range(4)
    ]
    assert statuses == [200] * 14

    # Both dead: nginx's own answer is a problem+json 503 with Retry-After, not an HTML page.
    site.nodes[0].kill()
    status, headers, body = fetch(site, "GET", "/api/v1/rules", headers=auth, **one)
    assert status == 503 and headers["content-type"] == "application/problem+json"
    assert int(headers["retry-after"]) >= 1 and json.loads(body)["status"] == 503
