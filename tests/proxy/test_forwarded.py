"""Who the client is behind a proxy, in one process (no nginx): the request log line names the
address the trusted proxy forwarded, and only a trusted proxy's X-Forwarded-For counts.
tests/proxy/test_proxy.py checks the same through the real nginx."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from server.app import create_app
from server.settings import Settings


def _client_logged(caplog: pytest.LogCaptureFixture, path: str) -> str:
    lines = [r for r in caplog.records if r.name == "inflow.request" and path in r.getMessage()]
    assert lines, "no request line was logged"
    client: str = lines[-1].__dict__["client"]
    assert lines[-1].getMessage().endswith(f" {client}")
    return client


async def test_the_request_log_names_the_client_a_trusted_proxy_forwarded(
    aiohttp_client: Any, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    """Incident: behind nginx every request line of every node was the proxy's address (or no
    address at all): an operator chasing one abusive client found nothing to grep. The line now
    ends with the client, the one X-Forwarded-For names when the proxy is trusted."""
    settings = make_settings(rate_limit_trusted_proxies=("127.0.0.1",))
    client = await aiohttp_client(create_app(settings))
    with caplog.at_level(logging.INFO, logger="inflow.request"):
        resp = await client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
        assert resp.status == 200
    assert _client_logged(caplog, "/healthz") == "203.0.113.7"


async def test_an_untrusted_peer_cannot_name_another_client(
    aiohttp_client: Any, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    """A caller that is not a trusted proxy sending X-Forwarded-For is logged (and rate limited)
    as itself: otherwise anyone could hide behind a made-up address."""
    client = await aiohttp_client(create_app(make_settings()))  # no trusted proxies
    with caplog.at_level(logging.INFO, logger="inflow.request"):
        resp = await client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
        assert resp.status == 200
    assert _client_logged(caplog, "/healthz") == "127.0.0.1"
