"""Safe fetching: the one way Inflow's server fetches URLs it was given (sources, link checks).

    fetcher = app[keys.FETCHER]
    result = await fetcher.fetch(url, fetcher.policy(allowed_hosts=("docs.example.com",)))

See client.py for what every request is held to, and docs/sources.md ("Safe fetching").
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from server import keys
from server.fetch.addresses import is_public
from server.fetch.client import FetchResult, SafeFetcher
from server.fetch.errors import FetchFailed, FetchRefused
from server.fetch.policy import FetchPolicy, host_allowed

__all__ = [
    "FetchFailed",
    "FetchPolicy",
    "FetchRefused",
    "FetchResult",
    "SafeFetcher",
    "fetcher_ctx",
    "host_allowed",
    "is_public",
]


def user_agent(base_url: str, configured: str = "") -> str:
    """INFLOW_FETCH_USER_AGENT, or "Inflow/1 (+<base_url>)" so a site's owner can find us."""
    return configured.strip() or f"Inflow/1 (+{base_url})"


async def fetcher_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the app's SafeFetcher (its HTTP sessions), with the settings' defaults."""
    settings = app[keys.SETTINGS]
    defaults = FetchPolicy(
        allow_private=settings.fetch_allow_private,
        max_bytes=settings.fetch_max_bytes,
        timeout=settings.fetch_timeout_seconds,
    )
    fetcher = SafeFetcher(
        user_agent=user_agent(settings.base_url, settings.fetch_user_agent),
        per_host=settings.fetch_per_host,
        defaults=defaults,
    )
    async with fetcher:
        app[keys.FETCHER] = fetcher
        yield
