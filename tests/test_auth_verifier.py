"""The pure verifier, with tokens forged by a local key (no Keycloak needed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from auth.identity import Identity
from auth.verifier import (
    InvalidToken,
    KeySet,
    UnknownKey,
    VerifierConfig,
    identity_from_claims,
    precheck,
    verify_access_token,
)
from tests.keycloak import TokenForge

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def forge() -> TokenForge:
    return TokenForge()


@pytest.fixture(scope="module")
def keys(forge: TokenForge) -> KeySet:
    return KeySet.from_jwks(forge.jwks)


@pytest.fixture(scope="module")
def config(forge: TokenForge) -> VerifierConfig:
    return VerifierConfig(
        issuer=forge.issuer, leeway_seconds=30, allowed_clients=frozenset({"inflow-test"})
    )


def refused(token: str, keys: KeySet, config: VerifierConfig, now: float = NOW) -> str:
    with pytest.raises(InvalidToken) as info:
        verify_access_token(token, keys, config, now)
    return info.value.reason


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join(
        [part(json.dumps(header).encode()), part(json.dumps(claims).encode()), part(signature)]
    )


def test_valid_token_gives_claims_and_identity(forge, keys, config):
    claims = forge.claims(
        "author", roles={"learner", "author"}, groups={"people"}, client_roles={"api"}, now=NOW
    )
    verified = verify_access_token(forge.sign(claims), keys, config, NOW)
    assert verified["preferred_username"] == "author"
    identity = identity_from_claims(verified, config)
    assert identity == Identity(
        issuer=forge.issuer,
        subject=claims["sub"],
        username="author",
        roles=frozenset({"learner", "author", "api"}),
        groups=frozenset({"people"}),
        client_id="inflow-test",
        expires_at=float(claims["exp"]),
    )
    assert identity.key == (forge.issuer, claims["sub"])
    assert identity.has_role("author") and not identity.has_role("admin")
    assert identity.audience_tags == {"learner", "author", "api", "people"}


def test_identity_ignores_roles_of_other_clients(forge, keys, config):
    claims = forge.claims(now=NOW, resource_access={"account": {"roles": ["manage-account"]}})
    identity = identity_from_claims(
        verify_access_token(forge.sign(claims), keys, config, NOW), config
    )
    assert identity.roles == {"learner"}


def test_alg_none_is_refused(forge, keys, config):
    token = unsigned({"alg": "none", "typ": "JWT", "kid": forge.kid}, forge.claims(now=NOW))
    assert refused(token, keys, config) == "algorithm not allowed: 'none' (allowed: RS256)"


def test_hs256_signed_with_the_public_key_is_refused(forge, keys, config):
    claims = forge.claims(now=NOW)
    header = {"alg": "HS256", "typ": "JWT", "kid": forge.kid}
    signing_input = unsigned(header, claims).rsplit(".", 1)[0]
    mac = hmac.new(forge.public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert refused(token, keys, config).startswith("algorithm not allowed: 'HS256'")


def test_missing_exp_is_refused(forge, keys, config):
    token = forge.sign(forge.claims(now=NOW, exp=None))
    assert refused(token, keys, config) == "missing required claim: exp"


@pytest.mark.parametrize("claim", ["iat", "aud", "sub"])
def test_other_required_claims(forge, keys, config, claim):
    token = forge.sign(forge.claims(now=NOW, **{claim: None}))
    assert refused(token, keys, config) == f"missing required claim: {claim}"


def test_expiry_uses_the_injected_clock_and_leeway(forge, keys, config):
    token = forge.sign(forge.claims(now=NOW, lifetime=300))
    exp = int(NOW) + 300
    verify_access_token(token, keys, config, exp + 29)  # within the 30 s leeway
    reason = refused(token, keys, config, now=exp + 31)
    assert reason == "token expired 31 s ago (leeway 30 s)"


def test_nbf_in_the_future_is_refused(forge, keys, config):
    token = forge.sign(forge.claims(now=NOW, nbf=int(NOW) + 120))
    assert refused(token, keys, config) == "token not valid yet: nbf is 120 s in the future"
    verify_access_token(token, keys, config, NOW + 100)  # 20 s early: within leeway


def test_iat_in_the_future_is_refused(forge, keys, config):
    token = forge.sign(forge.claims(now=NOW + 600))
    assert refused(token, keys, config).startswith("token issued in the future")


def test_wrong_issuer_is_refused(forge, keys, config):
    token = forge.sign(forge.claims(now=NOW, iss="https://evil.test/realms/inflow"))
    assert refused(token, keys, config) == (
        f"issuer mismatch: expected {forge.issuer!r}, got 'https://evil.test/realms/inflow'"
    )


def test_audience_only_account_is_refused(forge, keys, config):
    token = forge.sign(forge.claims(now=NOW, aud="account"))
    assert refused(token, keys, config) == "audience mismatch: expected 'inflow-api', got 'account'"


@pytest.mark.parametrize("typ", ["ID", "Refresh", "Logout"])
def test_tokens_that_are_not_access_tokens_are_refused(forge, keys, config, typ):
    token = forge.sign(forge.claims(now=NOW, typ=typ))
    assert refused(token, keys, config).startswith(f"not an access token: typ {typ!r}")


def test_missing_typ_is_refused(forge, keys, config):
    token = forge.sign(forge.claims(now=NOW, typ=None))
    assert refused(token, keys, config).startswith("not an access token: no typ claim")


def test_tampered_signature_is_refused(forge, keys, config):
    token = forge.sign(forge.claims(now=NOW))
    head, body, sig = token.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    assert refused(f"{head}.{body}.{flipped}", keys, config) == "signature verification failed"


def test_tampered_claims_are_refused(forge, keys, config):
    token = forge.sign(forge.claims(now=NOW))
    head, _, sig = token.split(".")
    claims = forge.claims(now=NOW, roles={"admin"})
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert refused(f"{head}.{body}.{sig}", keys, config) == "signature verification failed"


def test_signed_by_another_key_with_a_known_kid_is_refused(forge, keys, config):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = forge.sign(forge.claims(now=NOW), key=other)
    assert refused(token, keys, config) == "signature verification failed"


def test_unknown_kid_is_refused_with_its_own_reason(forge, keys, config):
    token = forge.sign(forge.claims(now=NOW), kid="made-up")
    with pytest.raises(UnknownKey) as info:
        verify_access_token(token, keys, config, NOW)
    assert info.value.kid == "made-up"
    assert info.value.reason == "unknown signing key: kid 'made-up' is not published by the issuer"


def test_missing_kid_is_refused(forge, keys, config):
    token = jwt.encode(forge.claims(now=NOW), forge.private_key, algorithm="RS256")
    assert refused(token, keys, config) == "token has no key id (kid) in its header"


def test_client_not_allowed(forge, keys, config):
    token = forge.sign(forge.claims(now=NOW, azp="some-other-client"))
    assert refused(token, keys, config) == "client not allowed: azp 'some-other-client'"
    anyone = VerifierConfig(issuer=forge.issuer)
    verify_access_token(token, keys, anyone, NOW)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "a.b", "x" * 20_000])
def test_garbage_is_refused(keys, config, garbage):
    reason = refused(garbage, keys, config)
    assert reason.startswith(("empty token", "malformed token", "token too large"))


def test_precheck_returns_the_kid_without_keys(forge, config):
    assert precheck(forge.token(now=NOW), config) == forge.kid


def test_reason_never_echoes_long_values(forge, keys, config):
    token = forge.sign(forge.claims(now=NOW, iss="x" * 500))
    assert len(refused(token, keys, config)) < 200


@pytest.mark.parametrize("algorithms", [("HS256",), ("none",), ("RS256", "HS512"), ()])
def test_config_refuses_symmetric_and_none_algorithms(algorithms):
    with pytest.raises(ValueError):
        VerifierConfig(issuer="https://sso.test/realms/inflow", algorithms=algorithms)


def test_key_algorithm_must_match_token_algorithm(forge, config):
    ps_config = VerifierConfig(issuer=forge.issuer, algorithms=("RS256", "PS256"))
    claims = forge.claims(now=NOW)
    token = jwt.encode(claims, forge.private_key, algorithm="PS256", headers={"kid": forge.kid})
    keys = KeySet.from_jwks(forge.jwks)  # published as RS256
    reason = refused(token, keys, ps_config)
    assert reason.startswith("algorithm not allowed")


def test_keyset_keeps_only_signing_keys(forge):
    jwk = forge.jwks["keys"][0]
    document = {
        "keys": [
            jwk,
            {**jwk, "kid": "enc", "use": "enc", "alg": "RSA-OAEP"},
            {"kid": "hmac", "kty": "oct", "k": "c2VjcmV0", "alg": "HS256"},
            {"kty": "RSA", "n": "bad"},  # no kid
            {"kid": "broken", "kty": "RSA", "n": "!!", "e": "AQAB"},
            "junk",
        ]
    }
    keys = KeySet.from_jwks(document)
    assert list(keys) == [forge.kid]
    with pytest.raises(ValueError):
        KeySet.from_jwks({"nokeys": []})


def test_full_verification_is_fast_enough(forge, keys, config):
    """Guards the budget the bench measures: RS256 verification well under a millisecond."""
    token = forge.token()
    start = time.perf_counter()
    for _ in range(200):
        verify_access_token(token, keys, config, time.time())
    assert (time.perf_counter() - start) / 200 < 0.002
