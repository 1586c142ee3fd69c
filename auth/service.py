"""`TokenAuthenticator`: bearer token in, `Identity` out, fast on the hot path.

A verified token is remembered by its SHA-256 (never the token itself) until it expires, so a
caller that sends the same token again costs one hash and one dict lookup. A remembered result is
used only while the key set is fresh and unchanged: when a key disappears from the issuer's JWKS
(disabled or rotated out), every token is verified again on its next use, so tokens signed with that
key stop working within the JWKS cache lifetime.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from auth.identity import Identity
from auth.jwks import JwksCache, KeySource, KeysUnavailable, StaticKeys
from auth.verifier import (
    InvalidToken,
    VerifierConfig,
    identity_from_claims,
    precheck,
    verify_access_token,
)

if TYPE_CHECKING:
    from auth.settings import AuthSettings

DEFAULT_CACHE_ENTRIES = 10_000


class AuthUnavailable(Exception):
    """Tokens cannot be checked right now (no usable signing keys): a 503, not a 401."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Entry(NamedTuple):
    identity: Identity
    generation: int


class TokenAuthenticator:
    def __init__(
        self,
        config: VerifierConfig,
        keys: KeySource,
        *,
        clock: Callable[[], float] = time.time,
        cache_entries: int = DEFAULT_CACHE_ENTRIES,
    ) -> None:
        self.config = config
        self.keys = keys
        self._clock = clock
        self._max_entries = max(1, cache_entries)
        self._cache: dict[bytes, _Entry] = {}

    @classmethod
    async def from_settings(
        cls, auth: AuthSettings, *, clock: Callable[[], float] = time.time
    ) -> TokenAuthenticator:
        """The authenticator the app uses: JWKS from Keycloak, or from `auth.jwks_file`."""
        keys: KeySource
        if auth.jwks_file is not None:
            keys = await asyncio.to_thread(StaticKeys.from_file, auth.jwks_file)
        else:
            keys = JwksCache(
                auth.jwks_url,
                ttl=auth.jwks_ttl_seconds,
                cooldown=auth.jwks_cooldown_seconds,
                stale=auth.jwks_stale_seconds,
            )
        return cls(VerifierConfig.from_settings(auth), keys, clock=clock)

    async def authenticate(self, token: str) -> Identity:
        """The identity of a valid access token; `InvalidToken` (401) or `AuthUnavailable` (503)."""
        now = self._clock()
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        entry = self._cache.get(digest)
        if (
            entry is not None
            and now < entry.identity.expires_at
            and entry.generation == self.keys.generation
            and self.keys.fresh()
        ):
            return entry.identity
        kid = precheck(token, self.config)
        try:
            keyset = await self.keys.get_keys(kid)
        except KeysUnavailable as exc:
            raise AuthUnavailable(exc.reason) from None
        generation = self.keys.generation
        claims = verify_access_token(token, keyset, self.config, now)
        identity = identity_from_claims(claims, self.config)
        self._remember(digest, _Entry(identity, generation), now)
        return identity

    def _remember(self, digest: bytes, entry: _Entry, now: float) -> None:
        cache = self._cache
        cache.pop(digest, None)
        if len(cache) >= self._max_entries:
            expired = [d for d, e in cache.items() if e.identity.expires_at <= now]
            for d in expired:
                del cache[d]
            while len(cache) >= self._max_entries:
                del cache[next(iter(cache))]  # oldest first
        cache[digest] = entry

    @property
    def cached_tokens(self) -> int:
        return len(self._cache)

    async def ready(self) -> tuple[bool, str]:
        """For /readyz: can tokens be verified now, and why not."""
        ok, detail = await self.keys.ready()
        return ok, f"auth: {detail}"

    async def close(self) -> None:
        self._cache.clear()
        await self.keys.close()


__all__ = [
    "AuthUnavailable",
    "InvalidToken",
    "TokenAuthenticator",
]
