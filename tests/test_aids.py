"""GET /api/v1/aids/{id}: sanitized HTML, ETags, and nothing disclosed that should not be."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from server.render import Renderer

# Elements that can run code, load content or take input; none may survive sanitizing.
ACTIVE_TAGS = {
    "script",
    "iframe",
    "frame",
    "object",
    "embed",
    "form",
    "input",
    "button",
    "textarea",
    "select",
    "style",
    "link",
    "meta",
    "base",
    "svg",
    "math",
    "video",
    "audio",
    "source",
    "applet",
    "template",
    "noscript",
}


class Inventory(HTMLParser):
    """Every tag and attribute in a piece of HTML, as a browser would parse it."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]


def inventory(html: str) -> Inventory:
    inv = Inventory()
    inv.feed(html)
    return inv


def assert_inert(html: str) -> None:
    inv = inventory(html)
    assert not set(inv.tags) & ACTIVE_TAGS, set(inv.tags) & ACTIVE_TAGS
    for tag, name, value in inv.attrs:
        assert not name.startswith("on"), (tag, name)
        assert name not in {"style", "srcdoc", "formaction"}, (tag, name)
        if name in {"href", "src"}:
            scheme = urlsplit(value).scheme.lower()
            assert scheme in {"http", "https", "mailto", ""}, (tag, name, value)


async def test_injection_aid_renders_inert(client: Any, learner: Any) -> None:
    resp = await client.get("/api/v1/aids/security-test-injection", headers=learner)
    assert resp.status == 200
    html = (await resp.json())["body_html"]
    assert_inert(html)
    inv = inventory(html)
    assert "script" not in inv.tags and "iframe" not in inv.tags
    assert "p" in inv.tags and len(html) > 200  # the genuine tips survive


def test_sanitizer_allows_only_safe_links_and_images() -> None:
    r = Renderer(image_hosts=["cdn.example.com"])
    out = r.to_html(
        "[ok](https://intranet.example.com/a) [mail](mailto:help@example.com) "
        "[bad](javascript:alert(1)) [vb](vbscript:x)\n\n"
        "![a](https://cdn.example.com/a.png) ![b](https://evil.example/b.png) "
        '![c](/static/c.png)\n\n<a href="data:text/html,x">d</a> <svg onload=alert(1)></svg>'
    )
    assert 'href="https://intranet.example.com/a"' in out
    assert 'href="mailto:help@example.com"' in out
    assert_inert(out)
    hrefs = [v for _, k, v in inventory(out).attrs if k == "href"]
    assert hrefs == ["https://intranet.example.com/a", "mailto:help@example.com"]
    assert 'src="https://cdn.example.com/a.png"' in out
    assert 'src="https://evil.example' not in out
    assert 'src="/static/c.png"' in out
    assert "<svg" not in out and "onload" not in out
    assert 'rel="noopener noreferrer nofollow"' in out


async def test_etag_and_304(client: Any, learner: Any) -> None:
    resp = await client.get("/api/v1/aids/crm-create-opportunity", headers=learner)
    assert resp.status == 200
    etag = resp.headers["ETag"]
    again = await client.get(
        "/api/v1/aids/crm-create-opportunity", headers={**learner, "If-None-Match": etag}
    )
    assert again.status == 304


async def test_unknown_and_unpublished_aids_are_404_problems(
    client: Any, learner: Any, admin: Any
) -> None:
    resp = await client.get("/api/v1/aids/no-such-aid", headers=learner)
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    assert "no-such-aid" in (await resp.json())["detail"]
