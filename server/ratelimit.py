"""Per-caller rate limits on /api/: token buckets in memory, one set per server process (node).

Two limits, two middlewares:

- by client address, BEFORE authentication, so a flood of forged or garbage tokens is refused
  before any signature check (settings.rate_limit_address_*);
- by token subject (issuer, subject), after authentication (settings.rate_limit_subject_*).

A refused request answers 429 with `Retry-After` (whole seconds) and a problem+json body. The
buckets live in this process's memory: with several nodes each node counts on its own, so the
effective limit is the per-node limit times the nodes a caller's requests reach (docs/api.md).

The client address is `request.remote` (the peer of the TCP connection). Behind a reverse proxy
every caller has the proxy's address: list the proxy in `rate_limit_trusted_proxies` and the
right-most `X-Forwarded-For` entry that is not a trusted proxy is used instead. Off by default:
a header any client can send is not trusted unless configured.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from typing import Any

from aiohttp import hdrs, web

from server import keys
from server.errors import Handler, problem
from server.settings import Settings

Clock = Callable[[], float]


class TokenBuckets:
    """One token bucket per key: `rate` tokens a second, at most `burst` saved up.

    Memory is bounded: past `max_keys` keys, buckets that have refilled (so hold no state worth
    keeping) are dropped, then the oldest ones.
    """

    def __init__(
        self, rate: float, burst: int, *, max_keys: int = 100_000, clock: Clock = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: Hashable) -> float:
        """Take one token: 0.0 when allowed, else the seconds until a token is available."""
        now = self.clock()
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            self._prune(now)
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0

    def _prune(self, now: float) -> None:
        full = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full}
        if len(self._buckets) >= self.max_keys:  # all busy: forget the oldest half
            items = list(self._buckets.items())
            self._buckets = dict(items[len(items) // 2 :])

    def __len__(self) -> int:
        return len(self._buckets)


def client_address(request: web.Request, trusted_proxies: frozenset[str]) -> str:
    """The caller's address: the TCP peer, or X-Forwarded-For's when the peer is a trusted proxy."""
    remote = request.remote or ""
    if remote not in trusted_proxies:
        return remote
    forwarded = request.headers.getall(hdrs.X_FORWARDED_FOR, [])
    hops = [h.strip() for value in forwarded for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop
    return remote


def _too_many(wait: float, who: str) -> web.Response:
    seconds = max(1, math.ceil(wait))
    return problem(
        429,
        "Too many requests",
        f"Too many requests from this {who}; try again in {seconds} s.",
        "rate-limited",
        headers={hdrs.RETRY_AFTER: str(seconds)},
        retry_after=seconds,
    )


def _limited(request: web.Request) -> bool:
    return request.path.startswith("/api/") and request.method != hdrs.METH_OPTIONS


def rate_limit_middlewares(settings: Settings, clock: Clock = time.monotonic) -> tuple[Any, Any]:
    """(by address: goes before authentication, by subject: goes right after it).

    Either is None when its limit is off (a rate of 0).
    """
    by_address: Any = None
    by_subject: Any = None
    if settings.rate_limit_address_per_second > 0:
        addresses = TokenBuckets(
            settings.rate_limit_address_per_second,
            settings.rate_limit_address_burst,
            clock=clock,
        )
        trusted = frozenset(settings.rate_limit_trusted_proxies)

        @web.middleware
        async def address_rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
            if _limited(request):
                wait = addresses.take(client_address(request, trusted))
                if wait:
                    return _too_many(wait, "address")
            return await handler(request)

        by_address = address_rate_limit
    if settings.rate_limit_subject_per_second > 0:
        subjects = TokenBuckets(
            settings.rate_limit_subject_per_second,
            settings.rate_limit_subject_burst,
            clock=clock,
        )

        @web.middleware
        async def subject_rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
            identity = request.get(keys.IDENTITY)
            if identity is not None and _limited(request):
                wait = subjects.take((identity.issuer, identity.subject))
                if wait:
                    return _too_many(wait, "user")
            return await handler(request)

        by_subject = subject_rate_limit
    return by_address, by_subject


__all__ = ["TokenBuckets", "client_address", "rate_limit_middlewares"]
