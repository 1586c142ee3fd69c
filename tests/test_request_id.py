"""A request id on every answer, problem body and log line (server/logs.py): what support asks a
user for ("the id in the error") must lead to the server's log lines of that request."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.logs import RequestIdFilter
from server.settings import Settings

PAGE = {"url": "http://127.0.0.1:8080/demo/crm/opportunities/new", "title": "New Opportunity"}


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of(self, request_id: str) -> list[logging.LogRecord]:
        return [r for r in self.records if getattr(r, "request_id", None) == request_id]


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_the_callers_id_comes_back_in_the_header_the_problem_and_the_log(
    client: TestClient, captured: Captured
) -> None:
    """A request with X-Request-Id answers with the same id in its header and its problem body,
    and the server's log lines about it (the refused token, the request line) carry it."""
    rid = "support-case_42.A"
    resp = await client.get(
        "/api/v1/aids/crm-build-report",
        headers={"X-Request-Id": rid, "Authorization": "Bearer not-a-token"},
    )
    assert resp.status == 401
    assert resp.headers["X-Request-Id"] == rid
    assert (await resp.json())["request_id"] == rid
    mine = captured.of(rid)
    loggers = {r.name for r in mine}
    assert "inflow.request" in loggers  # the request line
    assert "inflow.auth" in loggers  # "refused bearer token ...", said while handling it
    line = next(r for r in mine if r.name == "inflow.request").getMessage()
    assert line.startswith("GET /api/v1/aids/crm-build-report 401 ")


async def test_a_new_id_for_each_request_without_one(
    client: TestClient, learner: dict[str, str], captured: Captured
) -> None:
    """Without X-Request-Id each answer gets its own fresh id, also on successes and on 404s
    that no route matched."""
    ids = []
    for _ in range(2):
        resp = await client.post("/api/v1/suggest", json=PAGE, headers=learner)
        assert resp.status == 200
        ids.append(resp.headers["X-Request-Id"])
    resp = await client.get("/api/v1/no-such-route")
    assert resp.status == 404
    body = await resp.json()
    ids.append(resp.headers["X-Request-Id"])
    assert body["request_id"] == ids[-1]
    assert len(set(ids)) == 3
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert all(captured.of(i) for i in ids)


@pytest.mark.parametrize(
    "hostile",
    [
        "x" * 65,  # too long
        "abc def",  # space
        "id\u00e9",  # not ASCII
        "a;rm -rf /",  # shell and log-injection characters
        '"><script>',
        "",
    ],
)
async def test_a_hostile_id_is_replaced(client: TestClient, hostile: str) -> None:
    """An id that could forge log lines or blow up a log index is not echoed: the answer and the
    log use a new id instead."""
    resp = await client.get("/api/v1/no-such-route", headers={"X-Request-Id": hostile})
    assert resp.status == 404
    rid = resp.headers["X-Request-Id"]
    assert rid != hostile and re.fullmatch(r"[0-9a-f]{32}", rid)
    assert (await resp.json())["request_id"] == rid


async def test_problems_built_outside_errors_problem_carry_the_id_too(
    client: TestClient,
) -> None:
    """Modules that build their own problem+json (here the analytics pages' 401 for a refused
    bearer token, raised as an exception) still answer with the request id in the body."""
    headers = {
        "X-Request-Id": "abc-1",
        "Authorization": "Bearer nope",
        "Accept": "application/json",
    }
    resp = await client.get("/admin/analytics", headers=headers)
    assert resp.status == 401
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["request_id"] == "abc-1"


async def test_the_id_leaves_no_trace_after_the_request(
    client: TestClient, captured: Captured
) -> None:
    """A log line after the request (here, in the test) carries no request id: the context is
    reset, so a keep-alive connection's next request never inherits the previous id."""
    resp = await client.get("/healthz", headers={"X-Request-Id": "one-off"})
    assert resp.headers["X-Request-Id"] == "one-off"
    logging.getLogger("tests.after").warning("after the request")
    after = [r for r in captured.records if r.name == "tests.after"]
    assert after and after[0].request_id == "-"  # type: ignore[attr-defined]


async def test_the_extension_can_read_the_id_across_origins(
    aiohttp_client: Any, make_settings: Callable[..., Settings], learner: dict[str, str]
) -> None:
    """The side panel calls the API from its chrome-extension:// origin: the browser hides a
    response header from it unless CORS exposes it, so the id is exposed like ETag."""
    origin = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"
    client = await aiohttp_client(create_app(make_settings(cors_origins=(origin,))))
    resp = await client.post(
        "/api/v1/suggest", json=PAGE, headers={**learner, "Origin": origin, "X-Request-Id": "x-1"}
    )
    assert resp.status == 200
    assert resp.headers["X-Request-Id"] == "x-1"
    exposed = {h.strip() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert "X-Request-Id" in exposed
