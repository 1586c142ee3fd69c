"""The app's one SafeFetcher (keys.FETCHER, opened in fetcher_ctx) takes its rules from settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from server import keys
from server.app import create_app
from server.fetch import FetchRefused
from server.settings import Settings
from tests.upstream import Upstream


async def test_app_fetcher_uses_the_settings(
    aiohttp_client: Any, make_settings: Callable[..., Settings], upstream: Upstream
) -> None:
    settings = make_settings(
        base_url="https://inflow.test.example",
        fetch_allow_private=True,
        fetch_max_bytes=1000,
        fetch_timeout_seconds=7.0,
    )
    client = await aiohttp_client(create_app(settings))
    fetcher = client.app[keys.FETCHER]
    policy = fetcher.policy(allowed_hosts=("127.0.0.1",))
    assert (policy.allow_private, policy.max_bytes, policy.timeout) == (True, 1000, 7.0)
    upstream.set("/small", "x" * 1000)
    upstream.set("/big", "x" * 1001)
    result = await fetcher.fetch(upstream.url("/small"), policy)
    assert result.ok and len(result.body) == 1000
    assert upstream.requests[-1].headers["User-Agent"] == "Inflow/1 (+https://inflow.test.example)"
    with pytest.raises(FetchRefused) as info:
        await fetcher.fetch(upstream.url("/big"), policy)
    assert info.value.reason == "too_large"


async def test_app_fetcher_refuses_private_addresses_by_default(
    client: Any, upstream: Upstream
) -> None:
    """Out of the box a source URL pointing inside the network (here 127.0.0.1) is refused."""
    upstream.set("/page", "internal")
    fetcher = client.app[keys.FETCHER]
    with pytest.raises(FetchRefused) as info:
        await fetcher.fetch(upstream.url("/page"), fetcher.policy())
    assert info.value.reason == "private_address"
    assert upstream.hits["/page"] == 0


async def test_user_agent_setting_replaces_the_default(
    aiohttp_client: Any, make_settings: Callable[..., Settings], upstream: Upstream
) -> None:
    settings = make_settings(fetch_allow_private=True, fetch_user_agent="AcmeDocsBot/2")
    client = await aiohttp_client(create_app(settings))
    fetcher = client.app[keys.FETCHER]
    upstream.set("/page", "hi")
    await fetcher.fetch(upstream.url("/page"), fetcher.policy())
    assert upstream.requests[-1].headers["User-Agent"] == "AcmeDocsBot/2"
