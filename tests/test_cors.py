"""CORS: the API answers cross-origin calls from the extension's origin only."""

from __future__ import annotations

from typing import Any

from server.app import create_app

EXTENSION = "chrome-extension://dojpdgepekmbpdmjckheefcgajleblaf"


async def test_only_the_extension_origin_gets_cors_headers(
    aiohttp_client: Any, make_settings: Any, learner: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings(cors_origins=(EXTENSION,))))
    ok = await client.options(
        "/api/v1/suggest",
        headers={
            "Origin": EXTENSION,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert ok.status == 204
    assert ok.headers["Access-Control-Allow-Origin"] == EXTENSION
    assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]

    evil = await client.options(
        "/api/v1/suggest",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
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


async def test_problem_answers_carry_cors_headers_for_the_extension_only(
    aiohttp_client: Any, make_settings: Any, learner: Any, tokens: Any
) -> None:
    """Incident guarded (issue 9): 404 and 422 problems had no CORS headers (the CORS middleware
    sat inside the problem middleware, which built those answers), so the extension saw an opaque
    network error instead of the problem. Now 401, 404, 422 and 429 all carry them."""
    settings = make_settings(
        cors_origins=(EXTENSION,), rate_limit_subject_per_second=0.01, rate_limit_subject_burst=10
    )
    client = await aiohttp_client(create_app(settings))
    hasty = tokens.auth(sub="hasty", roles=("learner",))
    calls = [
        (401, "GET", "/api/v1/rules", {}, None),
        (404, "GET", "/api/v1/no-such-route", learner, None),
        (404, "GET", "/api/v1/aids/no-such-aid", learner, None),
        (422, "POST", "/api/v1/suggest", learner, {"url": "not a url"}),
        (400, "POST", "/api/v1/suggest", learner, {"url": "[" * 100}),
    ]
    for origin, expected_acao in ((EXTENSION, EXTENSION), ("https://evil.example", None)):
        for status, method, path, who, body in calls:
            if body is not None and body["url"].startswith("["):
                kwargs: dict[str, Any] = {"data": "[" * 100 + "]" * 100}
                who = {**who, "Content-Type": "application/json"}
            else:
                kwargs = {"json": body} if body is not None else {}
            resp = await client.request(method, path, headers={**who, "Origin": origin}, **kwargs)
            assert resp.status == status, (path, await resp.text())
            assert resp.content_type == "application/problem+json"
            assert resp.headers.get("Access-Control-Allow-Origin") == expected_acao, (origin, path)
    statuses = []
    for origin in [EXTENSION] * 11 + ["https://evil.example"]:
        resp = await client.get("/api/v1/rules", headers={**hasty, "Origin": origin})
        statuses.append(resp.status)
    assert statuses == [200] * 10 + [429, 429]
    assert "Access-Control-Allow-Origin" not in resp.headers  # the evil origin's 429
    resp = await client.get("/api/v1/rules", headers={**hasty, "Origin": EXTENSION})
    assert resp.status == 429 and resp.headers["Access-Control-Allow-Origin"] == EXTENSION
    # the extension may read Retry-After to back off
    assert "Retry-After" in resp.headers["Access-Control-Expose-Headers"]
