"""Image hosts in aid bodies decided like a browser: the shared vectors in
tests/vectors/image_urls.json (also run by extension/tests/safehtml.test.mjs) and the renderer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from server.render import Renderer, _host_port, image_src, resolve_url
from server.urlrules.url import parse_url

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "vectors" / "image_urls.json").read_text(encoding="utf-8")
)["cases"]


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_image_vectors(case: dict[str, Any]) -> None:
    base = parse_url(case["base"])
    hosts = frozenset(h for h in map(_host_port, case["hosts"]) if h is not None)
    url, emitted = image_src(case["src"], base, hosts)
    assert (url.host if url else None) == case["host"]
    assert (emitted is not None) == case["allowed"], emitted
    if emitted is not None:
        # What is emitted means the same host to a browser, on any http(s) page of this server.
        for page in (case["base"], "http://127.0.0.1:8080/a/b", "https://inflow.example.com/"):
            again = resolve_url(emitted, parse_url(page))
            assert again is not None
            assert again.host == (parse_url(page).host if emitted.startswith("/") else url.host)
            if not emitted.startswith("/"):
                assert emitted.startswith("https://")


def test_vectors_cover_the_probe_and_its_relatives() -> None:
    srcs = {c["src"] for c in VECTORS}
    for needed in ("/\\evil.example/t.png", "//evil.example/t.png", "\\\\evil.example/t.png"):
        assert needed in srcs
    assert len(VECTORS) >= 50


def test_backslash_tracking_pixel_is_dropped() -> None:
    """Incident (issue 9, outside probe): `<img src="/\\evil.example/t.png">` passed the image-host
    check (urlsplit saw a path on this server), but browsers load https://evil.example/t.png: a
    tracking pixel in every learner's panel."""
    r = Renderer(image_hosts=["cdn.example.com"], base_url="https://inflow.example.com")
    for src in (
        "/\\evil.example/t.png",
        "/&#9;/evil.example/t.png",
        "https:/\\evil.example/t.png",
        "https://cdn.example.com@evil.example/t.png",
        "h&#10;ttps://evil.example/t.png",
    ):
        out = r.to_html(f'<p>x <img src="{src}" alt="a"></p>')
        assert "evil" not in out, (src, out)
        assert "<img" in out and "src=" not in out  # the image stays, without a source
    md = r.to_html("![a](/\\evil.example/t.png) ![b](https://cdn.example.com/b.png) ![c](/c.png)")
    # markdown-it percent-encodes the backslash: a harmless path on this server
    assert 'src="/%5Cevil.example/t.png"' in md
    assert 'src="https://cdn.example.com/b.png"' in md
    assert 'src="/c.png"' in md


def test_kept_sources_are_rewritten_to_what_the_browser_loads() -> None:
    """Found while fixing the probe's pixel: `/.//evil.example/t.png` is a path on this server,
    but its normalised path `//evil.example/t.png`, emitted as is, is a host to the browser."""
    r = Renderer(image_hosts=["cdn.example.com"], base_url="https://inflow.example.com")
    out = r.to_html('<img src="/.//evil.example/t.png"> <img src="/a/..//evil.example/x.png">')
    assert 'src="/.//evil.example/t.png"' in out
    assert 'src="/.//evil.example/x.png"' in out
    assert 'src="//' not in out
    out = r.to_html(
        '<img src="https://x@CDN.example.com:443/a.png"> <img src="https:/static\\b.png">'
    )
    assert 'src="https://cdn.example.com/a.png"' in out
    assert 'src="/static/b.png"' in out
