"""The OpenAPI document matches the routes the app actually serves."""

from __future__ import annotations

import re
from typing import Any


async def test_every_route_is_documented_and_every_documented_route_exists(client: Any) -> None:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    # The JSON API and the health checks; HTML pages (/admin, /demo, /static) are not API.
    documented = {
        (path, method.upper())
        for path, ops in doc["paths"].items()
        for method in ops
        if path.startswith("/api/") or path in {"/healthz", "/readyz"}
    }
    served = set()
    for route in client.server.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if route.method == "HEAD" or not (
            path.startswith("/api/") or path in {"/healthz", "/readyz"}
        ):
            continue
        served.add((re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path), route.method))
    assert served == documented


async def test_open_routes_are_exactly_health_readiness_and_the_document(client: Any) -> None:
    for path in ("/healthz", "/readyz", "/api/v1/openapi.json"):
        assert (await client.get(path)).status in {200, 503}
    for method, path in [
        ("POST", "/api/v1/suggest"),
        ("GET", "/api/v1/search?q=x"),
        ("GET", "/api/v1/aids/crm-create-opportunity"),
        ("GET", "/api/v1/rules"),
        ("POST", "/api/v1/feedback"),
    ]:
        resp = await client.request(method, path)
        assert resp.status == 401, path
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
