"""CORS: the API answers cross-origin calls from the extension's origin only."""

from __future__ import annotations

from typing import Any

from server.app import create_app

EXTENSION = "chrome-extension://dojpdgepekmbpdmjckheefcgajleblaf"


async def test_only_the_extension_origin_gets_cors_headers(aiohttp_client: Any,
                                                           make_settings: Any,
                                                           learner: Any) -> None:
    client = await aiohttp_client(create_app(make_settings(cors_origins=(EXTENSION,))))
    ok = await client.options("/api/v1/suggest", headers={
        "Origin": EXTENSION, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert ok.status == 204
    assert ok.headers["Access-Control-Allow-Origin"] == EXTENSION
    assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]

    evil = await client.options("/api/v1/suggest", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert evil.status == 403
    assert "Access-Control-Allow-Origin" not in evil.headers

    resp = await client.get("/api/v1/rules", headers={**learner, "Origin": EXTENSION})
    assert resp.headers["Access-Control-Allow-Origin"] == EXTENSION
    resp = await client.get("/api/v1/rules", headers={**learner, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers
    # a refusal still carries the header, so the extension can read the reason
    resp = await client.get("/api/v1/rules", headers={"Origin": EXTENSION})
    assert resp.status == 401
    assert resp.headers["Access-Control-Allow-Origin"] == EXTENSION


async def test_no_cors_at_all_without_configured_origins(client: Any, learner: Any) -> None:
    resp = await client.get("/api/v1/rules", headers={**learner, "Origin": EXTENSION})
    assert resp.status == 200
    assert "Access-Control-Allow-Origin" not in resp.headers
