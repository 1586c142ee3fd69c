"""Hostile JSON bodies answer a clear 4xx problem, never a 500 with a traceback.

Incident guarded (issue 9, from a probe against a running server): JSON nested 1,000 deep in
suggest, events, feedback and preview made json.loads raise RecursionError (500), and a lone
surrogate ("\\ud800") in any string field went on to break the database, the index or json.dumps
(500). Every JSON body now goes through server/body.py: at most 64 levels, Unicode text only.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.tokens import TokenMaker

PAGE = "http://127.0.0.1:8080/demo/crm/opportunities/new"
LONE = '"\\ud800"'  # the JSON escape of a lone high surrogate, as raw JSON text


@pytest.fixture
def author(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="author-1", roles=("learner", "author"))


def _event() -> str:
    at = dt.datetime.now(dt.UTC).isoformat()
    return f'{{"id": "{uuid.uuid4()}", "type": "search", "at": "{at}", "result_count": 0'


# route, who, a valid body split around one string field that gets the hostile value
ROUTES: list[tuple[str, str, str, str]] = [
    ("/api/v1/suggest", "learner", '{"url": "' + PAGE + '", "title": ', "}"),
    ("/api/v1/events", "learner", '{"events": [' + _event() + ', "query": ', "}]}"),
    (
        "/api/v1/feedback",
        "learner",
        '{"aid_id": "crm-build-report", "helpful": true, "comment": ',
        "}",
    ),
    ("/api/v1/admin/preview", "author", '{"markdown": ', "}"),
]
IDS = [r[0] for r in ROUTES]


async def _post(client: TestClient, path: str, who: dict[str, str], body: str) -> Any:
    resp = await client.post(
        path, data=body.encode(), headers={**who, "Content-Type": "application/json"}
    )
    text = await resp.text()
    return resp.status, resp.headers.get("Content-Type", ""), text


def _who(name: str, learner: dict[str, str], author: dict[str, str]) -> dict[str, str]:
    return learner if name == "learner" else author


@pytest.mark.parametrize(("path", "who", "opening", "closing"), ROUTES, ids=IDS)
async def test_json_nested_1000_deep_is_a_400_problem(
    client: TestClient,
    learner: dict[str, str],
    author: dict[str, str],
    path: str,
    who: str,
    opening: str,
    closing: str,
) -> None:
    deep = "[" * 1000 + "]" * 1000
    status, ctype, text = await _post(
        client, path, _who(who, learner, author), opening + deep + closing
    )
    assert status == 400, text
    assert ctype.startswith("application/problem+json")
    assert "nested deeper than 64 levels" in text
    # just inside the limit is not refused for its depth (the route may still refuse the value)
    status, _, text = await _post(
        client, path, _who(who, learner, author), opening + '"ok"' + closing
    )
    assert status < 300, text


@pytest.mark.parametrize(("path", "who", "opening", "closing"), ROUTES, ids=IDS)
async def test_lone_surrogate_in_a_string_field_is_a_400_problem(
    client: TestClient,
    learner: dict[str, str],
    author: dict[str, str],
    path: str,
    who: str,
    opening: str,
    closing: str,
) -> None:
    status, ctype, text = await _post(
        client, path, _who(who, learner, author), opening + LONE + closing
    )
    assert status == 400, text
    assert ctype.startswith("application/problem+json")
    assert "lone surrogate" in text


async def test_lone_surrogate_in_a_key_and_deep_objects_are_refused(
    client: TestClient, learner: dict[str, str]
) -> None:
    status, _, text = await _post(
        client, "/api/v1/suggest", learner, '{"url": "' + PAGE + '", "\\udfff": 1}'
    )
    assert status == 400 and "lone surrogate" in text
    deep = '{"a": ' * 20_000 + "1" + "}" * 20_000
    status, _, text = await _post(client, "/api/v1/suggest", learner, deep)
    assert status == 400 and "nested deeper" in text
    # a paired surrogate escape is ordinary text (an emoji)
    status, _, text = await _post(
        client,
        "/api/v1/suggest",
        learner,
        '{"url": "' + PAGE + '", "title": "\\ud83d\\ude00 deal"}',
    )
    assert status == 200, text


async def test_nan_and_infinity_are_not_json(client: TestClient, learner: dict[str, str]) -> None:
    """json.loads accepts NaN; echoing it back would make our own responses invalid JSON."""
    status, _, text = await _post(
        client, "/api/v1/feedback", learner, '{"aid_id": "crm-new-opportunity", "helpful": NaN}'
    )
    assert status == 400 and "NaN is not a JSON number" in text


async def test_a_chunked_body_is_cut_off_at_the_limit(
    client: TestClient, learner: dict[str, str]
) -> None:
    """Without Content-Length the reader still stops at the route's limit (413 problem)."""

    async def chunks() -> Any:
        yield b'{"url": "' + PAGE.encode() + b'", "title": "'
        for _ in range(40):
            yield b"x" * 10_000
        yield b'"}'

    resp = await client.post(
        "/api/v1/suggest",
        data=chunks(),
        headers={**learner, "Content-Type": "application/json"},
    )
    assert resp.status == 413
    assert resp.content_type == "application/problem+json"
    assert "too large" in (await resp.json())["detail"]
