"""A video's transcript in the panel: a search for what is said in the video shows the moment
it is said ("▶ 1:23 “…”"), and the link opens the video there. Real backend (its own: the test
gives a demo video a transcript), real Keycloak, Debian's Chromium (see conftest.py)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Backend, launch, own_backend
from tests.keycloak import access_token

pytestmark = pytest.mark.browser

VIDEO = "crm-quote-video"  # the demo's "Build a quote in five minutes" video
SOURCE = "https://video.example.com/northwind/crm-build-a-quote"
TRANSCRIPT = """WEBVTT

00:00.000 --> 00:06.000
<v Trainer>In this video we build a quote for a returning customer.

01:23.000 --> 01:29.500
<v Trainer>Tick the <b>multi-year</b> box before you press Calculate, or the term resets.

02:10.000 --> 02:16.000
<v Trainer>Send the quote &amp; you are done.
"""


def _api(backend: Backend, method: str, path: str, token: str, **kw: Any) -> Any:
    request = urllib.request.Request(
        f"{backend.url}{path}",
        method=method,
        headers={"Authorization": f"Bearer {token}", **kw.get("headers", {})},
        data=kw.get("data"),
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return resp.headers, json.loads(resp.read() or b"null")


@pytest.fixture(scope="module")
def video_backend(tmp_path_factory: pytest.TempPathFactory, keycloak: Any) -> Iterator[Backend]:
    with own_backend(tmp_path_factory, "inflow-transcripts-backend") as backend:
        admin = access_token("admin")
        headers, _ = _api(backend, "GET", f"/api/v1/admin/aids/{VIDEO}", admin)
        _api(
            backend,
            "PUT",
            f"/api/v1/admin/aids/{VIDEO}/transcript",
            admin,
            data=TRANSCRIPT.encode(),
            headers={"Content-Type": "text/vtt", "If-Match": headers["ETag"]},
        )
        yield backend


def test_search_shows_the_cue_and_opens_the_video_there(
    chromium: str, video_backend: Backend, tmp_path: Path
) -> None:
    with launch(chromium, video_backend, tmp_path / "profile") as browser:
        # The video host is not on this machine's network: answer it here, so the new tab's
        # address (with its time) is what the test reads.
        browser.context.route(
            "https://video.example.com/**",
            lambda route: route.fulfill(status=200, content_type="text/html", body="<h1>v</h1>"),
        )
        browser.open_demo("/demo/crm/")
        panel = browser.open_panel()
        browser.sign_in(panel)
        browser.state(panel, "ready")

        panel.fill("#q", "multi-year box calculate")
        browser.state(panel, "search")
        cue = panel.locator(f'#results a.cue[data-cue="{VIDEO}"]')
        cue.wait_for(timeout=15_000)
        assert cue.inner_text() == (
            "▶ 1:23 “Tick the multi-year box before you press Calculate, or the term resets.”"
        )
        assert cue.get_attribute("href") == f"{SOURCE}#t=83"
        assert cue.get_attribute("target") == "_blank"
        # The cue line is beside the card, not inside its button (a link in a button is none).
        assert panel.locator("#results button.card a.cue").count() == 0
        # Other hits have no cue line.
        assert panel.locator("#results a.cue").count() == 1
        browser.shot(panel, "40-transcript-cue")

        with browser.context.expect_page() as opened:
            cue.click()
        video = opened.value
        video.wait_for_load_state()
        assert video.url == f"{SOURCE}#t=83"
