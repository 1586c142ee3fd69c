"""The per-person rate of peer learning writes (tips, questions, answers, reports,
recommendations, flags): `INFLOW_PEER_WRITES_PER_HOUR` (default 20; 0 turns it off).

A token bucket per person (issuer, subject) in this node's memory, like server/ratelimit.py: a
person may write that many at once, then one more each 3600/N seconds. With several nodes each
counts on its own (docs/api.md). A refused write is a 429 problem+json with `Retry-After`.

Call it in a write handler after the caller is known and before any work:

    check_peer_rate(request)          # or: await check_peer_rate(request)

(it raises; both spellings work, so handlers may treat it as a plain call or a coroutine).
"""

from __future__ import annotations

import json
import math
from collections.abc import Generator
from typing import Any

from aiohttp import hdrs, web

from server import keys
from server.errors import PROBLEM_TYPE
from server.ratelimit import Clock, TokenBuckets


def peer_write_buckets(writes_per_hour: int, clock: Clock | None = None) -> TokenBuckets | None:
    """The buckets for a limit of `writes_per_hour` (None: no limit)."""
    if writes_per_hour <= 0:
        return None
    if clock is None:
        return TokenBuckets(writes_per_hour / 3600.0, writes_per_hour)
    return TokenBuckets(writes_per_hour / 3600.0, writes_per_hour, clock=clock)


class _Checked:
    """What `check_peer_rate` returns when the write may go on: awaiting it does nothing."""

    def __await__(self) -> Generator[Any, None, None]:
        yield from ()


_CHECKED = _Checked()


def too_many_writes(wait: float) -> web.HTTPTooManyRequests:
    seconds = max(1, math.ceil(wait))
    minutes = math.ceil(seconds / 60)
    body = {
        "type": "https://inflow.example/problems/peer-rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": f"You have written a lot in the last hour; try again in {minutes} min.",
        "retry_after": seconds,
    }
    return web.HTTPTooManyRequests(
        text=json.dumps(body),
        content_type=PROBLEM_TYPE,
        headers={hdrs.RETRY_AFTER: str(seconds)},
    )


def check_peer_rate(request: web.Request) -> _Checked:
    """Count one peer write of the caller; raise a 429 (problem+json, Retry-After) when they
    have used up their writes for now. Anonymous callers are refused before this (routes
    require a role), so they are not counted."""
    buckets = request.app.get(keys.PEER_WRITES)
    identity = request.get(keys.IDENTITY)
    if buckets is not None and identity is not None:
        wait = buckets.take(identity.key)
        if wait:
            raise too_many_writes(wait)
    return _CHECKED


__all__ = ["check_peer_rate", "peer_write_buckets", "too_many_writes"]
