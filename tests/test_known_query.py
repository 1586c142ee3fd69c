"""Every JSON API refuses a query parameter it does not know with the same 422 problem
(server/api/validation.known_query), so a typo such as `?stauts=open` is never silently ignored
and the answer reads the same whichever module serves the route."""

from __future__ import annotations

from typing import Any

import pytest

ROUTES = [
    "/api/v1/search",
    "/api/v1/admin/apps",
    "/api/v1/admin/app-templates",
    "/api/v1/admin/queue",
    "/api/v1/admin/questions",
    "/api/v1/admin/pairings",
    "/api/v1/admin/tips",
    "/api/v1/admin/aid-flags",
    "/api/v1/admin/health/links",
    "/api/v1/admin/analytics/adoption",
    "/api/v1/admin/paths",
    "/api/v1/admin/sources",
]


@pytest.mark.parametrize("path", ROUTES)
async def test_an_unknown_query_parameter_is_one_and_the_same_422(
    client: Any, admin: dict[str, str], path: str
) -> None:
    """Eleven modules once kept their own copy of this check; a copy that drifted (another
    wording, another status, or none) would let one route ignore a misspelt filter."""
    resp = await client.get(path, params={"stauts": "open", "zzz": "1"}, headers=admin)
    assert resp.status == 422, path
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["detail"] == "Unknown parameter(s): stauts, zzz.", path
