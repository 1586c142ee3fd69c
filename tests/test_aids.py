"""GET /api/v1/aids/{id}: sanitized HTML, ETags, and nothing disclosed that should not be."""

from __future__ import annotations

from typing import Any

from server.render import Renderer


async def test_injection_aid_renders_inert(client: Any, learner: Any) -> None:
    resp = await client.get("/api/v1/aids/security-test-injection", headers=learner)
    assert resp.status == 200
    html = (await resp.json())["body_html"].lower()
    for bad in ("<script", "onerror", "javascript:", "<iframe", "data:text/html", "<form",
                "<style", "onclick"):
        assert bad not in html, bad
    assert "<p>" in html  # the genuine tips survive


def test_sanitizer_allows_only_safe_links_and_images() -> None:
    r = Renderer(image_hosts=["cdn.example.com"])
    out = r.to_html(
        "[ok](https://intranet.example.com/a) [mail](mailto:help@example.com) "
        "[bad](javascript:alert(1)) [vb](vbscript:x)\n\n"
        "![a](https://cdn.example.com/a.png) ![b](https://evil.example/b.png) "
        "![c](/static/c.png)\n\n<a href=\"data:text/html,x\">d</a> <svg onload=alert(1)></svg>"
    )
    assert 'href="https://intranet.example.com/a"' in out
    assert 'href="mailto:help@example.com"' in out
    assert "javascript" not in out and "vbscript" not in out and "data:" not in out
    assert 'src="https://cdn.example.com/a.png"' in out
    assert "evil.example" not in out
    assert 'src="/static/c.png"' in out
    assert "<svg" not in out and "onload" not in out
    assert 'rel="noopener noreferrer nofollow"' in out


async def test_etag_and_304(client: Any, learner: Any) -> None:
    resp = await client.get("/api/v1/aids/crm-create-opportunity", headers=learner)
    assert resp.status == 200
    etag = resp.headers["ETag"]
    again = await client.get("/api/v1/aids/crm-create-opportunity",
                             headers={**learner, "If-None-Match": etag})
    assert again.status == 304


async def test_unknown_and_unpublished_aids_are_404_problems(client: Any, learner: Any,
                                                             admin: Any) -> None:
    resp = await client.get("/api/v1/aids/no-such-aid", headers=learner)
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    assert "no-such-aid" in (await resp.json())["detail"]
