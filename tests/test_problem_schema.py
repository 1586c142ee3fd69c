"""The OpenAPI document's Problem response declares what a real problem+json body carries."""

from __future__ import annotations

from typing import Any

TYPES = {"string": str, "integer": int}


async def test_a_real_problem_body_matches_the_declared_problem_schema(
    client: Any, admin: dict[str, str]
) -> None:
    """Problem bodies carried `request_id` (server/logs.py) that the OpenAPI Problem schema did
    not declare: a client generated from the document dropped the one field a user can quote
    to find the failed request in the server's log."""
    doc = await (await client.get("/api/v1/openapi.json")).json()
    schema = doc["components"]["responses"]["Problem"]["content"]["application/problem+json"][
        "schema"
    ]
    resp = await client.get("/api/v1/admin/apps", params={"typo": "1"}, headers=admin)
    assert resp.status == 422
    body = await resp.json()
    declared = schema["properties"]
    assert set(schema["required"]) <= set(body)
    for name in ("type", "title", "status", "detail", "request_id"):
        assert name in body, name
        assert name in declared, name
        assert isinstance(body[name], TYPES[declared[name]["type"]]), name
    assert body["request_id"] == resp.headers["X-Request-Id"]
