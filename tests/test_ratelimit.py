"""Per-caller rate limits on /api/ (server/ratelimit.py): 429, Retry-After and a problem body.

Incident guarded (issue 9, from a probe against a running server): there was no throttling at
all; 2,000 suggest calls from one token were all answered, and a flood of garbage tokens cost a
signature check each.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from server.app import create_app
from server.ratelimit import TokenBuckets
from server.settings import Settings, load_settings
from tests.tokens import TokenMaker

PAGE = {"url": "http://127.0.0.1:8080/demo/crm/opportunities/new", "title": "New Opportunity"}


async def test_one_token_is_throttled_after_its_burst(
    aiohttp_client: Any, make_settings: Any, learner: dict[str, str], manager: dict[str, str]
) -> None:
    """Default limits (10/s, burst 60 per subject): a flood of suggest calls gets 429s."""
    client = await aiohttp_client(create_app(make_settings()))
    defaults = Settings()
    start = time.monotonic()
    statuses = []
    for _ in range(120):
        resp = await client.post("/api/v1/suggest", json=PAGE, headers=learner)
        statuses.append(resp.status)
        if resp.status == 429:
            refused = resp
            break
    elapsed = time.monotonic() - start
    assert statuses[-1] == 429, "120 calls in a row were all answered"
    answered = statuses.count(200)
    refill = defaults.rate_limit_subject_per_second * elapsed
    assert (
        defaults.rate_limit_subject_burst
        <= answered
        <= defaults.rate_limit_subject_burst + refill + 1
    )
    assert refused.content_type == "application/problem+json"
    body = await refused.json()
    assert body["status"] == 429 and body["type"].endswith("/rate-limited")
    assert int(refused.headers["Retry-After"]) >= 1
    assert body["retry_after"] == int(refused.headers["Retry-After"])
    # another person (same address) is not affected
    resp = await client.post("/api/v1/suggest", json=PAGE, headers=manager)
    assert resp.status == 200
    # health checks are not API routes and never limited
    resp = await client.get("/healthz")
    assert resp.status == 200


async def test_garbage_tokens_are_refused_by_address_before_any_signature_check(
    aiohttp_client: Any, make_settings: Any, learner: dict[str, str]
) -> None:
    """After the address's burst, even a garbage token gets 429, not 401: the limit is decided
    before the token is looked at. A valid token from the same address waits too."""
    settings = make_settings(rate_limit_address_per_second=0.01, rate_limit_address_burst=20)
    client = await aiohttp_client(create_app(settings))
    garbage = {"Authorization": "Bearer not.a.token"}
    statuses = [(await client.get("/api/v1/rules", headers=garbage)).status for _ in range(25)]
    assert statuses == [401] * 20 + [429] * 5
    resp = await client.get("/api/v1/rules", headers=learner)
    assert resp.status == 429
    assert "WWW-Authenticate" not in resp.headers
    assert "address" in (await resp.json())["detail"]


async def test_x_forwarded_for_counts_only_behind_a_trusted_proxy(
    aiohttp_client: Any, make_settings: Any, learner: dict[str, str]
) -> None:
    limited = {"rate_limit_address_per_second": 0.01, "rate_limit_address_burst": 3}
    # not trusted: a client cannot escape its limit by inventing addresses
    client = await aiohttp_client(create_app(make_settings(**limited)))
    statuses = [
        (
            await client.get("/api/v1/rules", headers={**learner, "X-Forwarded-For": f"10.0.0.{i}"})
        ).status
        for i in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
    aiohttp_client: Any, make_settings: Any, learner: dict[str, str]
) -> None:
    limited = {"rate_limit_address_per_second": 0.01, "rate_limit_address_burst": 3}
    client = await aiohttp_client(
        create_app(make_settings(**limited, rate_limit_trusted_proxies=("127.0.0.1",)))
    )
    one = {**learner, "X-Forwarded-For": "203.0.113.7, 127.0.0.1"}
    statuses = [(await client.get("/api/v1/rules", headers=one)).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    other = {**learner, "X-Forwarded-For": "203.0.113.8"}
    assert (await client.get("/api/v1/rules", headers=other)).status == 200


async def test_limits_off_with_a_rate_of_zero(
    aiohttp_client: Any, make_settings: Any, tokens: TokenMaker
) -> None:
    settings = make_settings(
        rate_limit_subject_per_second=0,
        rate_limit_subject_burst=1,
        rate_limit_address_per_second=0,
        rate_limit_address_burst=1,
    )
    client = await aiohttp_client(create_app(settings))
    who = tokens.auth(sub="bench", roles=("learner",))
    for _ in range(5):
        assert (await client.get("/api/v1/rules", headers=who)).status == 200


def test_limits_come_from_the_environment() -> None:
    settings = load_settings(
        env={
            "INFLOW_RATE_LIMIT_SUBJECT_PER_SECOND": "2.5",
            "INFLOW_RATE_LIMIT_SUBJECT_BURST": "7",
            "INFLOW_RATE_LIMIT_ADDRESS_PER_SECOND": "0",
            "INFLOW_RATE_LIMIT_TRUSTED_PROXIES": "10.0.0.1, 10.0.0.2",
        }
    )
    assert settings.rate_limit_subject_per_second == 2.5
    assert settings.rate_limit_subject_burst == 7
    assert settings.rate_limit_address_per_second == 0
    assert settings.rate_limit_trusted_proxies == ("10.0.0.1", "10.0.0.2")


def test_token_bucket_refills_at_its_rate_and_stays_bounded() -> None:
    now = [0.0]
    buckets = TokenBuckets(2.0, 3, max_keys=100, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token every 0.5 s
    now[0] += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    now[0] += 10
    assert [buckets.take("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # burst, not 20 tokens
    for i in range(1000):  # a flood of distinct keys does not grow memory without bound
        buckets.take(f"k{i}")
    assert len(buckets) <= 100
