"""Access-token verification: a pure function of (token, keys, config, clock).

Nothing here does I/O. Keys come from `auth.jwks` (fetched and cached elsewhere), the clock is a
plain `now` argument, so tests can expire tokens without sleeping.

What a token must be to pass, in the order checked (cheap, unverified checks first, so that each
refusal carries the most useful reason and nothing triggers a key fetch it does not deserve):

1. a JWT whose `typ` claim is `Bearer` (Keycloak marks ID tokens `ID` and refresh tokens `Refresh`);
2. signed with an algorithm from the configured list (never read from the token: `none` and HS*
   are refused even if configured by mistake);
3. issued by exactly the configured issuer;
4. signed with a key the issuer publishes (`kid` known), with a valid signature;
5. carrying `exp`, `iat`, `iss`, `aud`, `sub`, with `aud` containing the API audience;
6. within its lifetime (`exp`, `nbf`, `iat`) give or take the leeway;
7. requested by one of the configured clients (`azp`), when clients are configured.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt

from auth.identity import Identity

if TYPE_CHECKING:
    from auth.settings import AuthSettings

REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
ACCESS_TOKEN_TYPE = "Bearer"  # noqa: S105 - a token type name, not a secret
# Asymmetric algorithms only: with a symmetric algorithm the "public" key would be the secret.
SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# Keycloak access tokens are about 1-2 KB; anything far bigger is not one of them.
MAX_TOKEN_BYTES = 16 * 1024


class InvalidToken(Exception):
    """The token is not acceptable. `reason` is safe to show to the caller (no token content)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownKey(InvalidToken):
    """The token names a `kid` the key set does not hold (maybe a key rotated in: refetch)."""

    def __init__(self, kid: str) -> None:
        super().__init__(f"unknown signing key: kid {_show(kid)} is not published by the issuer")
        self.kid = kid


@dataclass(frozen=True)
class VerifierConfig:
    issuer: str
    audience: str = "inflow-api"
    algorithms: tuple[str, ...] = ("RS256",)
    leeway_seconds: float = 30.0
    # Accepted `azp` values; empty means "any client" (not recommended).
    allowed_clients: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.issuer:
            raise ValueError("VerifierConfig needs the exact issuer")
        if not self.algorithms:
            raise ValueError("VerifierConfig needs at least one algorithm")
        bad = [a for a in self.algorithms if a not in SUPPORTED_ALGORITHMS]
        if bad:
            raise ValueError(
                f"refusing algorithms {bad}: only asymmetric algorithms are allowed "
                f"({', '.join(sorted(SUPPORTED_ALGORITHMS))})"
            )

    @classmethod
    def from_settings(cls, auth: AuthSettings) -> VerifierConfig:
        return cls(
            issuer=auth.expected_issuer,
            audience=auth.audience,
            algorithms=tuple(auth.algorithms),
            leeway_seconds=float(auth.leeway_seconds),
            allowed_clients=auth.allowed_client_ids,
        )


class KeySet(Mapping[str, jwt.PyJWK]):
    """Public signing keys by `kid`, built from a JWKS document (encryption keys left out)."""

    def __init__(self, keys: Mapping[str, jwt.PyJWK] | None = None) -> None:
        self._keys: dict[str, jwt.PyJWK] = dict(keys or {})

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any]) -> KeySet:
        """Signing keys of a JWKS document; keys pyjwt cannot use (or without `kid`) are skipped."""
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise ValueError("not a JWKS document: no 'keys' list")
        keys: dict[str, jwt.PyJWK] = {}
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            kid = entry.get("kid")
            if not isinstance(kid, str) or not kid:
                continue
            if entry.get("use", "sig") != "sig":
                continue
            if entry.get("kty") == "oct":
                continue  # never a public key
            try:
                keys[kid] = jwt.PyJWK(entry)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
                continue
        return cls(keys)

    def __getitem__(self, kid: str) -> jwt.PyJWK:
        return self._keys[kid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeySet({sorted(self._keys)})"


def _show(value: object, limit: int = 80) -> str:
    """A caller-supplied value, quoted and shortened, for a reason string."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


def _segment(segment: str, what: str) -> dict[str, Any]:
    """One base64url JSON segment. A light parse (pyjwt's is slow): pyjwt decodes again later."""
    if not _SEGMENT.fullmatch(segment):
        raise InvalidToken(f"malformed token: the {what} is not base64url")
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):
        raise InvalidToken(f"malformed token: the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"malformed token: the {what} is not a JSON object")
    return value


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(token, str) or not token:
        raise InvalidToken("empty token")
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken(f"token too large ({len(token)} bytes)")
    segments = token.split(".")
    if len(segments) != 3:
        raise InvalidToken("malformed token: not three dot-separated segments")
    return _segment(segments[0], "header"), _segment(segments[1], "payload")


def precheck(token: str, config: VerifierConfig) -> str:
    """The unverified checks (type, algorithm, issuer, kid present); returns the `kid`.

    Every path refuses, so reading unverified content here grants nothing. The authenticator runs
    this before it asks for keys, so a flood of foreign tokens never triggers a JWKS fetch.
    """
    header, claims = _unverified(token)
    return _precheck(header, claims, config)


def _precheck(header: Mapping[str, Any], claims: Mapping[str, Any], config: VerifierConfig) -> str:
    typ = claims.get("typ")
    if typ != ACCESS_TOKEN_TYPE:
        if typ is None:
            raise InvalidToken("not an access token: no typ claim (expected 'Bearer')")
        raise InvalidToken(
            f"not an access token: typ {_show(typ)} (expected 'Bearer'; "
            "ID and refresh tokens cannot be used as bearer tokens)"
        )
    alg = header.get("alg")
    if alg not in config.algorithms:
        raise InvalidToken(
            f"algorithm not allowed: {_show(alg)} (allowed: {', '.join(config.algorithms)})"
        )
    iss = claims.get("iss")
    if iss is None:
        raise InvalidToken("missing required claim: iss")
    if iss != config.issuer:
        raise InvalidToken(f"issuer mismatch: expected {config.issuer!r}, got {_show(iss)}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidToken("token has no key id (kid) in its header")
    return kid


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken(f"claim {name} is not a number")
    return float(value)


def verify_access_token(
    token: str, keys: Mapping[str, jwt.PyJWK], config: VerifierConfig, now: float
) -> dict[str, Any]:
    """The verified claims of an access token, or `InvalidToken` with a human reason."""
    header, unverified = _unverified(token)
    kid = _precheck(header, unverified, config)
    key = keys.get(kid)
    if key is None:
        raise UnknownKey(kid)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=list(config.algorithms),
            audience=config.audience,
            issuer=config.issuer,
            options={
                "require": list(REQUIRED_CLAIMS),
                # Time checks below, against the injected clock.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise InvalidToken("signature verification failed") from None
    except jwt.InvalidAlgorithmError as exc:
        raise InvalidToken(f"algorithm not allowed: {exc}") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"missing required claim: {exc.claim}") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken(
            f"audience mismatch: expected {config.audience!r}, got {_show(unverified.get('aud'))}"
        ) from None
    except jwt.InvalidIssuerError:
        raise InvalidToken(f"issuer mismatch: expected {config.issuer!r}") from None
    except jwt.DecodeError as exc:
        raise InvalidToken(f"malformed token: {exc}") from None
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(f"invalid token: {exc}") from None

    _check_times(claims, config.leeway_seconds, now)
    if not isinstance(claims.get("sub"), str):
        raise InvalidToken("claim sub is not a string")
    if config.allowed_clients:
        azp = claims.get("azp")
        if azp not in config.allowed_clients:
            raise InvalidToken(f"client not allowed: azp {_show(azp)}")
    return claims


def _check_times(claims: Mapping[str, Any], leeway: float, now: float) -> None:
    exp = _number(claims, "exp")
    if exp is not None and now >= exp + leeway:
        raise InvalidToken(f"token expired {int(now - exp)} s ago (leeway {int(leeway)} s)")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + leeway:
        raise InvalidToken(f"token not valid yet: nbf is {int(nbf - now)} s in the future")
    iat = _number(claims, "iat")
    if iat is not None and iat > now + leeway:
        raise InvalidToken(f"token issued in the future: iat is {int(iat - now)} s ahead")


def _strings(value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value if isinstance(v, str) and v)


def identity_from_claims(claims: Mapping[str, Any], config: VerifierConfig) -> Identity:
    """The `Identity` of verified claims: realm roles + API client roles, and group names."""
    realm_access = claims.get("realm_access")
    realm_roles = _strings(realm_access.get("roles")) if isinstance(realm_access, dict) else None
    resource_access = claims.get("resource_access")
    api_access = resource_access.get(config.audience) if isinstance(resource_access, dict) else None
    client_roles = _strings(api_access.get("roles")) if isinstance(api_access, dict) else None
    username = claims.get("preferred_username")
    azp = claims.get("azp")
    email, name = claims.get("email"), claims.get("name")
    return Identity(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        username=username if isinstance(username, str) else None,
        roles=(realm_roles or frozenset()) | (client_roles or frozenset()),
        groups=_strings(claims.get("groups")),
        client_id=azp if isinstance(azp, str) else None,
        expires_at=float(claims["exp"]),
        email=email if isinstance(email, str) and email else None,
        name=name if isinstance(name, str) and name else None,
    )
