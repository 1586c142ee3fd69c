"""JwksCache and TokenAuthenticator against a fake JWKS endpoint (no Keycloak needed)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from aiohttp import web

from auth.jwks import JwksCache, KeysUnavailable, StaticKeys
from auth.service import AuthUnavailable, TokenAuthenticator
from auth.verifier import InvalidToken, VerifierConfig
from tests.keycloak import TokenForge


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeIssuer:
    """A JWKS endpoint that counts requests, can be slowed, broken or given other keys."""

    def __init__(self, forge: TokenForge) -> None:
        self.jwks: dict[str, Any] = forge.jwks
        self.hits = 0
        self.delay = 0.0
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.Response(status=self.status, text="down")
        return web.json_response(self.jwks)


@pytest.fixture
def forge() -> TokenForge:
    return TokenForge()


@pytest.fixture
async def issuer(aiohttp_server: Any, forge: TokenForge) -> Any:
    fake = FakeIssuer(forge)
    app = web.Application()
    app.router.add_get("/certs", fake.handle)
    server = await aiohttp_server(app)
    fake.url = str(server.make_url("/certs"))
    return fake


@pytest.fixture
async def cache(issuer: Any) -> Any:
    clock = Clock()
    jwks = JwksCache(issuer.url, ttl=300, cooldown=30, stale=3600, clock=clock)
    jwks.clock = clock
    yield jwks
    await jwks.close()


async def test_keys_are_fetched_once_and_cached(cache, issuer, forge):
    keys = await cache.get_keys(forge.kid)
    assert list(keys) == [forge.kid]
    for _ in range(10):
        await cache.get_keys(forge.kid)
    assert issuer.hits == 1 and cache.fetch_count == 1
    cache.clock.now += 301  # past the ttl
    await cache.get_keys(forge.kid)
    assert issuer.hits == 2


async def test_unknown_kids_refetch_at_most_once_per_cooldown(cache, issuer, forge):
    await cache.get_keys(forge.kid)
    cache.clock.now += 31
    await asyncio.gather(*(cache.get_keys(f"kid-{i}") for i in range(1000)))
    assert issuer.hits == 2  # one initial fetch, one shared refetch
    cache.clock.now += 10
    await cache.get_keys("yet-another")
    assert issuer.hits == 2  # still inside the cooldown
    cache.clock.now += 21
    await cache.get_keys("yet-another")
    assert issuer.hits == 3


async def test_concurrent_first_fetch_is_single_flight(cache, issuer, forge):
    issuer.delay = 0.05
    results = await asyncio.gather(*(cache.get_keys(forge.kid) for _ in range(50)))
    assert issuer.hits == 1
    assert all(list(r) == [forge.kid] for r in results)


async def test_stale_keys_survive_an_outage_until_the_limit(cache, issuer, forge):
    await cache.get_keys(forge.kid)
    issuer.status = 503
    cache.clock.now += 400  # stale: refetch fails, old keys still served
    assert list(await cache.get_keys(forge.kid)) == [forge.kid]
    ok, detail = await cache.ready()
    assert ok and detail.startswith("degraded: using 1 cached signing keys")
    assert "HTTP 503" in detail
    cache.clock.now += 3300  # 3700 s after the last good fetch
    with pytest.raises(KeysUnavailable) as info:
        await cache.get_keys(forge.kid)
    assert "cannot be refreshed" in info.value.reason
    ok, detail = await cache.ready()
    assert not ok and "HTTP 503" in detail
    issuer.status = 200
    cache.clock.now += 31
    assert list(await cache.get_keys(forge.kid)) == [forge.kid]


async def test_new_key_gets_in_and_removed_key_bumps_generation(cache, issuer, forge):
    await cache.get_keys(forge.kid)
    generation = cache.generation
    newer = TokenForge(kid="newer")
    issuer.jwks = {"keys": forge.jwks["keys"] + newer.jwks["keys"]}
    cache.clock.now += 31
    assert "newer" in await cache.get_keys("newer")
    assert cache.generation == generation + 1
    issuer.jwks = newer.jwks
    cache.clock.now += 301
    assert list(await cache.get_keys()) == ["newer"]
    assert cache.generation == generation + 2


async def test_down_url_makes_ready_say_so():
    jwks = JwksCache("http://127.0.0.1:9/realms/inflow/protocol/openid-connect/certs", timeout=2)
    try:
        ok, detail = await jwks.ready()
    finally:
        await jwks.close()
    assert not ok
    assert detail.startswith(
        "no signing keys yet: cannot fetch signing keys from "
        "http://127.0.0.1:9/realms/inflow/protocol/openid-connect/certs: "
    )
    assert "connect" in detail.lower()


async def test_static_keys_from_file(tmp_path, forge):
    keys = StaticKeys.from_file(forge.write_jwks(tmp_path / "jwks.json"))
    assert list(await keys.get_keys("anything")) == [forge.kid]
    assert (await keys.ready())[0]
    (tmp_path / "empty.json").write_text(json.dumps({"keys": []}))
    with pytest.raises(ValueError):
        StaticKeys.from_file(tmp_path / "empty.json")


async def test_authenticator_caches_results_until_exp(cache, issuer, forge):
    now = [1_800_000_000.0]
    auth = TokenAuthenticator(VerifierConfig(issuer=forge.issuer), cache, clock=lambda: now[0])
    token = forge.token("author", roles={"author"}, now=now[0], lifetime=60)
    first = await auth.authenticate(token)
    assert first.username == "author" and auth.cached_tokens == 1
    assert await auth.authenticate(token) is first  # cache hit: the same object
    now[0] += 59
    assert await auth.authenticate(token) is first
    now[0] += 31 + 1  # past exp + leeway
    with pytest.raises(InvalidToken, match="token expired"):
        await auth.authenticate(token)


async def test_authenticator_cache_is_bounded(cache, forge):
    auth = TokenAuthenticator(VerifierConfig(issuer=forge.issuer), cache, cache_entries=10)
    for i in range(25):
        await auth.authenticate(forge.token(f"user{i}"))
    assert auth.cached_tokens == 10


async def test_authenticator_flood_of_random_kids_costs_one_fetch(cache, issuer, forge):
    auth = TokenAuthenticator(VerifierConfig(issuer=forge.issuer), cache)
    await auth.authenticate(forge.token())
    cache.clock.now += 31
    tokens = [forge.sign(forge.claims(), kid=str(uuid.uuid4())) for _ in range(1000)]
    results = await asyncio.gather(*(auth.authenticate(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(r, InvalidToken) for r in results)
    assert {r.reason.split(" kid ")[0] for r in results} == {"unknown signing key:"}
    assert issuer.hits == 2


async def test_foreign_issuer_never_triggers_a_fetch(cache, issuer, forge):
    auth = TokenAuthenticator(VerifierConfig(issuer=forge.issuer), cache)
    stranger = TokenForge(issuer="https://elsewhere.test/realms/x", kid="foreign")
    with pytest.raises(InvalidToken, match="issuer mismatch"):
        await auth.authenticate(stranger.token())
    assert issuer.hits == 0


async def test_removed_key_locks_out_cached_tokens_after_the_ttl(cache, issuer, forge):
    auth = TokenAuthenticator(VerifierConfig(issuer=forge.issuer), cache)
    token = forge.token()
    await auth.authenticate(token)
    issuer.jwks = TokenForge(kid="replacement").jwks
    cache.clock.now += 100
    await auth.authenticate(token)  # still cached, keys still fresh
    cache.clock.now += 201  # past the ttl: keys refetched, the old kid is gone
    with pytest.raises(InvalidToken, match="unknown signing key"):
        await auth.authenticate(token)


async def test_no_keys_at_all_is_unavailable_not_invalid(forge):
    jwks = JwksCache("http://127.0.0.1:9/certs", timeout=1)
    auth = TokenAuthenticator(VerifierConfig(issuer=forge.issuer), jwks)
    try:
        with pytest.raises(AuthUnavailable, match="cannot fetch signing keys"):
            await auth.authenticate(forge.token())
        ok, detail = await auth.ready()
        assert not ok and detail.startswith("auth: no signing keys yet")
    finally:
        await auth.close()
