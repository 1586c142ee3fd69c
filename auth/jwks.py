"""The issuer's public signing keys: fetched asynchronously, cached, refreshed with care.

`JwksCache` fetches the realm's JWKS with aiohttp (never pyjwt's blocking `PyJWKClient`):

- keys are fresh for `ttl` seconds, then refetched on the next use;
- a token with an unknown `kid` (a key rotated in) triggers a refetch, at most one per `cooldown`
  seconds, and concurrent callers share one fetch (single flight), so a flood of tokens with made-up
  kids costs Keycloak at most one request per cooldown;
- when Keycloak cannot be reached, the last keys keep working until `stale` seconds after the last
  successful fetch; after that every token is refused (`KeysUnavailable`).

`StaticKeys` serves a JWKS file instead (air-gapped deployments, tests that forge tokens).
Both count their fetches in `fetch_count` and bump `generation` whenever the set of kids changes, so
the authenticator can drop verification results made with keys that are gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from auth.verifier import KeySet

log = logging.getLogger("inflow.auth")

Clock = Callable[[], float]


class KeysUnavailable(Exception):
    """No usable signing keys: never fetched, or stale beyond the limit."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeySource(Protocol):
    fetch_count: int
    generation: int

    def fresh(self) -> bool:
        """True while the current keys need no refresh (cheap; on the hot path)."""
        ...

    async def get_keys(self, kid: str | None = None) -> KeySet:
        """Current keys, refreshed first if stale or if `kid` is unknown (within limits)."""
        ...

    async def ready(self) -> tuple[bool, str]: ...

    async def close(self) -> None: ...


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        ttl: float = 300.0,
        cooldown: float = 30.0,
        stale: float = 3600.0,
        timeout: float = 5.0,
        clock: Clock = time.monotonic,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url
        self.ttl = ttl
        self.cooldown = cooldown
        self.stale = max(stale, ttl)
        self.timeout = timeout
        self.fetch_count = 0
        self.generation = 0
        self._clock = clock
        self._session = session
        self._owns_session = session is None
        self._keys: KeySet | None = None
        self._fetched_at = 0.0  # clock time of the last successful fetch
        self._attempted_at: float | None = None  # clock time of the last attempt
        self._last_error: str | None = None
        self._inflight: asyncio.Future[None] | None = None

    def fresh(self) -> bool:
        return self._keys is not None and self._clock() - self._fetched_at < self.ttl

    async def get_keys(self, kid: str | None = None) -> KeySet:
        now = self._clock()
        keys = self._keys
        wanted = (
            keys is None
            or now - self._fetched_at >= self.ttl
            or (kid is not None and kid not in keys)
        )
        if wanted and self._may_fetch(now):
            await self._refresh()
        return self._usable(self._clock())

    async def ready(self) -> tuple[bool, str]:
        try:
            keys = await self.get_keys()
        except KeysUnavailable as exc:
            return False, exc.reason
        age = self._clock() - self._fetched_at
        if self._last_error is not None and age >= self.ttl:
            return True, (
                f"degraded: using {len(keys)} cached signing keys fetched {age:.0f} s ago; "
                f"last refresh failed: {self._last_error}"
            )
        return True, f"{len(keys)} signing keys from {self.url}, fetched {age:.0f} s ago"

    async def close(self) -> None:
        if self._inflight is not None and not self._inflight.done():
            self._inflight.cancel()
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    def _may_fetch(self, now: float) -> bool:
        if self._inflight is not None:
            return True  # join the fetch under way
        return self._attempted_at is None or now - self._attempted_at >= self.cooldown

    def _usable(self, now: float) -> KeySet:
        if self._keys is None:
            raise KeysUnavailable(f"no signing keys yet: {self._last_error or 'not fetched'}")
        age = now - self._fetched_at
        if age > self.stale:
            raise KeysUnavailable(
                f"signing keys are {age:.0f} s old (limit {self.stale:.0f} s) and cannot be "
                f"refreshed: {self._last_error}"
            )
        return self._keys

    async def _refresh(self) -> None:
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._fetch())
            self._inflight.add_done_callback(self._clear_inflight)
        # shield: a caller that is cancelled must not cancel the fetch the others wait for.
        await asyncio.shield(self._inflight)

    def _clear_inflight(self, future: asyncio.Future[None]) -> None:
        if self._inflight is future:
            self._inflight = None
        if not future.cancelled():
            future.exception()  # retrieved: _fetch never raises, but never warn either

    async def _fetch(self) -> None:
        self._attempted_at = self._clock()
        self.fetch_count += 1
        try:
            document = await self._download()
            keys = KeySet.from_jwks(document)
            if not keys:
                raise ValueError("the JWKS holds no usable signing keys")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self._last_error = f"cannot fetch signing keys from {self.url}: {_describe(exc)}"
            log.warning("%s", self._last_error)
            return
        self._install(keys)

    def _install(self, keys: KeySet) -> None:
        if self._keys is None or set(self._keys) != set(keys):
            self.generation += 1
            log.info("signing keys now %s (from %s)", sorted(keys), self.url)
        self._keys = keys
        self._fetched_at = self._clock()
        self._last_error = None

    async def _download(self) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with self._session.get(self.url, timeout=timeout, allow_redirects=False) as resp:
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}")
            document = await resp.json(content_type=None)
        if not isinstance(document, dict):
            raise ValueError("the answer is not a JSON object")
        return document


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return text


class StaticKeys:
    """Keys from a JWKS file, loaded once. Never refreshed: rotate by replacing file + restart."""

    def __init__(self, keys: KeySet, source: str) -> None:
        if not keys:
            raise ValueError(f"{source} holds no usable signing keys")
        self.keys = keys
        self.source = source
        self.fetch_count = 0
        self.generation = 1

    @classmethod
    def from_file(cls, path: Path) -> StaticKeys:
        """Blocking read: call it in an executor (`asyncio.to_thread`) from async code."""
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(document, dict):
            raise ValueError(f"{path} is not a JWKS document")
        return cls(KeySet.from_jwks(document), str(path))

    def fresh(self) -> bool:
        return True

    async def get_keys(self, kid: str | None = None) -> KeySet:
        return self.keys

    async def ready(self) -> tuple[bool, str]:
        return True, f"{len(self.keys)} signing keys from file {self.source}"

    async def close(self) -> None:
        return None
