"""The fetcher's domain errors: a refusal (our rules said no) or a failure (the network did).

HTTP 4xx and 5xx answers from the upstream are results (FetchResult.status), not exceptions.
"""

from __future__ import annotations

from typing import Literal

from server.errors import InflowError

RefusedReason = Literal[
    "scheme",
    "host_not_allowed",
    "private_address",
    "robots",
    "too_large",
    "too_many_redirects",
    "bad_url",
]
FailedReason = Literal["timeout", "connection", "dns"]


class FetchRefused(InflowError):
    """Inflow would not fetch (or keep fetching) a URL; `reason` says which rule refused it.

    At the HTTP boundary (a URL an admin gave, checked while they wait) it is a 422 problem whose
    body carries `reason` and `url`."""

    status = 422
    title = "Fetch refused"
    slug = "fetch-refused"

    def __init__(self, reason: RefusedReason, url: str, detail: str) -> None:
        super().__init__(detail, reason=reason, url=url)
        self.reason: RefusedReason = reason
        self.url = url


class FetchFailed(InflowError):
    """The upstream could not be reached in time: a timeout, a refused or broken connection, or
    a host name that does not resolve. A 502 problem at the HTTP boundary."""

    status = 502
    title = "Upstream unreachable"
    slug = "fetch-failed"

    def __init__(self, reason: FailedReason, url: str, detail: str) -> None:
        super().__init__(detail, reason=reason, url=url)
        self.reason: FailedReason = reason
        self.url = url
