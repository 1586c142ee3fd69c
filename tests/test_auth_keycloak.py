"""The verifier and authenticator against the REAL Keycloak (auth/keycloak.sh, auth/realm-*.json).

Every refusal a real deployment must make is shown with a token Keycloak really issued, or, where
Keycloak cannot issue such a token (no `exp`, `nbf` in the future), with Keycloak's real claims
re-signed by a local key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest
import requests

from auth.identity import Identity
from auth.jwks import JwksCache
from auth.service import TokenAuthenticator
from auth.verifier import (
    InvalidToken,
    KeySet,
    UnknownKey,
    VerifierConfig,
    identity_from_claims,
    verify_access_token,
)
from tests.keycloak import (
    CLI_ROLES,
    DEMO_USERS,
    KEYCLOAK_URL,
    NOAUD_CLIENT,
    OTHER_REALM,
    ROOT,
    TEST_CLIENT,
    KeycloakError,
    TokenForge,
    access_token,
    access_token_lifespan,
    admin,
    auth_settings,
    openid,
    password_tokens,
    service_tokens,
    temporary_realm,
)

pytestmark = pytest.mark.keycloak

ISSUER = f"{KEYCLOAK_URL}/realms/inflow"
EXTENSION_ID = (ROOT / "auth" / "extension-id.txt").read_text(encoding="utf-8").strip()


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture(scope="module")
def config(keycloak: Any) -> VerifierConfig:
    return VerifierConfig.from_settings(auth_settings())


@pytest.fixture(scope="module")
def keys(keycloak: Any) -> KeySet:
    resp = requests.get(keycloak.jwks_url, timeout=10)
    resp.raise_for_status()
    return KeySet.from_jwks(resp.json())


def refused(token: str, keys: KeySet, config: VerifierConfig, now: float | None = None) -> str:
    with pytest.raises(InvalidToken) as info:
        verify_access_token(token, keys, config, time.time() if now is None else now)
    return info.value.reason


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


# -- tokens that must pass ----------------------------------------------------------------------


@pytest.mark.parametrize("username", sorted(DEMO_USERS))
def test_demo_user_tokens_verify_with_roles_and_groups(username, keys, config):
    user = DEMO_USERS[username]
    claims = verify_access_token(access_token(username), keys, config, time.time())
    identity = identity_from_claims(claims, config)
    assert identity.issuer == ISSUER
    assert identity.username == username
    assert identity.roles == user.roles
    assert identity.groups == user.groups  # group names, not paths like "/managers"
    assert identity.client_id == TEST_CLIENT
    assert claims["typ"] == "Bearer"
    assert "inflow-api" in ([claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"])
    assert identity.expires_at - claims["iat"] == 300  # realm access-token lifespan


def test_cli_service_account_token_verifies(keys, config):
    claims = verify_access_token(service_tokens()["access_token"], keys, config, time.time())
    identity = identity_from_claims(claims, config)
    assert identity.client_id == "inflow-cli"
    assert identity.username == "service-account-inflow-cli"
    assert identity.roles == CLI_ROLES
    assert identity.groups == frozenset()


async def test_authenticator_from_settings_against_keycloak(keycloak):
    auth = await TokenAuthenticator.from_settings(auth_settings())
    try:
        ok, detail = await auth.ready()
        assert ok, detail
        assert detail.startswith("auth: ") and "signing keys from" in detail
        identity = await auth.authenticate(access_token("manager"))
        assert isinstance(identity, Identity)
        assert identity.groups == {"finance", "managers"}
        assert identity.audience_tags == {"learner", "manager", "finance", "managers"}
    finally:
        await auth.close()


# -- tokens that must be refused, each with its reason ------------------------------------------


def test_alg_none_is_refused(keys, config):
    header, claims = parts(access_token("admin"))
    token = (
        f"{b64(json.dumps({**header, 'alg': 'none'}).encode())}.{b64(json.dumps(claims).encode())}."
    )
    assert refused(token, keys, config) == "algorithm not allowed: 'none' (allowed: RS256)"


def test_hs256_with_the_realm_public_key_as_secret_is_refused(keys, config):
    realm = requests.get(f"{KEYCLOAK_URL}/realms/inflow", timeout=10).json()
    pem = (
        "-----BEGIN PUBLIC KEY-----\n" + realm["public_key"] + "\n-----END PUBLIC KEY-----\n"
    ).encode()
    header, claims = parts(access_token("learner"))
    signing_input = (
        f"{b64(json.dumps({**header, 'alg': 'HS256'}).encode())}.{b64(json.dumps(claims).encode())}"
    )
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64(mac)}"
    assert refused(token, keys, config) == "algorithm not allowed: 'HS256' (allowed: RS256)"


def test_missing_exp_is_refused(config):
    forge = TokenForge(issuer=ISSUER)
    _, claims = parts(access_token("learner"))
    del claims["exp"]
    token = forge.sign(claims)
    reason = refused(token, KeySet.from_jwks(forge.jwks), config)
    assert reason == "missing required claim: exp"


def test_expired_beyond_leeway_is_refused(keys, config):
    token = access_token("learner")
    exp = parts(token)[1]["exp"]
    verify_access_token(token, keys, config, exp + 29)  # inside the 30 s leeway
    assert refused(token, keys, config, now=exp + 45) == "token expired 45 s ago (leeway 30 s)"


def test_nbf_in_the_future_is_refused(config):
    forge = TokenForge(issuer=ISSUER)
    _, claims = parts(access_token("learner"))
    claims["nbf"] = int(time.time()) + 3600
    token = forge.sign(claims)
    reason = refused(token, KeySet.from_jwks(forge.jwks), config)
    assert reason.startswith("token not valid yet: nbf is ")


async def test_token_of_another_realm_is_refused_without_a_fetch(keys, config):
    token = access_token("mallory", realm=OTHER_REALM)
    assert parts(token)[1]["aud"] == "inflow-api"  # right audience, wrong issuer
    reason = refused(token, keys, config)
    assert reason == (
        f"issuer mismatch: expected '{ISSUER}', got '{KEYCLOAK_URL}/realms/{OTHER_REALM}'"
    )
    jwks = JwksCache(auth_settings().jwks_url)
    auth = TokenAuthenticator(config, jwks)
    try:
        with pytest.raises(InvalidToken, match="issuer mismatch"):
            await auth.authenticate(token)
        assert jwks.fetch_count == 0
    finally:
        await auth.close()


def test_audience_only_account_is_refused(keys, config):
    token = access_token("learner", client_id=NOAUD_CLIENT)
    assert parts(token)[1]["aud"] == "account"
    reason = refused(token, keys, config)
    assert reason == "audience mismatch: expected 'inflow-api', got 'account'"


def test_id_token_as_bearer_is_refused(keys, config):
    token = password_tokens("author")["id_token"]
    assert refused(token, keys, config).startswith("not an access token: typ 'ID'")


def test_refresh_token_as_bearer_is_refused(keys, config):
    token = password_tokens("author")["refresh_token"]
    assert refused(token, keys, config).startswith("not an access token: typ 'Refresh'")


def test_tampered_signature_is_refused(keys, config):
    head, body, sig = access_token("learner").split(".")
    flipped = sig[:20] + ("A" if sig[20] != "A" else "B") + sig[21:]
    assert refused(f"{head}.{body}.{flipped}", keys, config) == "signature verification failed"


def test_tampered_claims_are_refused(keys, config):
    head, _, sig = access_token("learner").split(".")
    _, claims = parts(access_token("learner"))
    claims["realm_access"] = {"roles": ["admin"]}
    body = b64(json.dumps(claims).encode())
    assert refused(f"{head}.{body}.{sig}", keys, config) == "signature verification failed"


async def test_unknown_kid_is_refused_after_one_refetch(keys, config):
    forge = TokenForge(issuer=ISSUER, kid="not-a-keycloak-key")
    _, claims = parts(access_token("learner"))
    token = forge.sign(claims)
    with pytest.raises(UnknownKey):
        verify_access_token(token, keys, config, time.time())
    clock = Clock()
    jwks = JwksCache(auth_settings().jwks_url, cooldown=30, clock=clock)
    auth = TokenAuthenticator(config, jwks)
    try:
        await auth.authenticate(access_token("learner"))
        assert jwks.fetch_count == 1
        clock.offset += 31
        with pytest.raises(InvalidToken) as info:
            await auth.authenticate(token)
        assert info.value.reason == (
            "unknown signing key: kid 'not-a-keycloak-key' is not published by the issuer"
        )
        assert jwks.fetch_count == 2
    finally:
        await auth.close()


async def test_flood_of_random_kids_costs_at_most_one_fetch_per_cooldown(config):
    forge = TokenForge(issuer=ISSUER)
    _, claims = parts(access_token("learner"))
    clock = Clock()
    jwks = JwksCache(auth_settings().jwks_url, cooldown=30, clock=clock)
    auth = TokenAuthenticator(config, jwks)
    try:
        await auth.authenticate(access_token("learner"))
        clock.offset += 31  # cooldown over: the flood may cause exactly one refetch
        tokens = [forge.sign(claims, kid=uuid.uuid4().hex) for _ in range(1000)]
        results = await asyncio.gather(
            *(auth.authenticate(t) for t in tokens), return_exceptions=True
        )
        assert all(isinstance(r, UnknownKey) for r in results)
        assert jwks.fetch_count == 2
        tokens = [forge.sign(claims, kid=uuid.uuid4().hex) for _ in range(1000)]
        for t in tokens:  # sequential this time, still inside the cooldown
            with pytest.raises(UnknownKey):
                await auth.authenticate(t)
        assert jwks.fetch_count == 2
    finally:
        await auth.close()


async def test_keycloak_down_makes_ready_say_so(keycloak):
    down = auth_settings(server_url="http://127.0.0.1:9", public_url=KEYCLOAK_URL)
    auth = await TokenAuthenticator.from_settings(down)
    try:
        ok, detail = await auth.ready()
    finally:
        await auth.close()
    assert not ok
    assert detail.startswith(
        "auth: no signing keys yet: cannot fetch signing keys from "
        "http://127.0.0.1:9/realms/inflow/protocol/openid-connect/certs: Cannot connect to host"
    )


# -- key rotation, in a throw-away copy of the realm --------------------------------------------


async def test_key_rotation_without_restart(keycloak):
    name = f"inflow-rotation-{uuid.uuid4().hex[:8]}"
    with temporary_realm(name) as realm:
        settings = auth_settings(realm=name, jwks_ttl_seconds=60, jwks_cooldown_seconds=5)
        config = VerifierConfig.from_settings(settings)
        clock = Clock()
        jwks = JwksCache(settings.jwks_url, ttl=60, cooldown=5, clock=clock)
        auth = TokenAuthenticator(config, jwks)
        kc = admin(name)
        try:
            old_token = access_token("author", realm=name)
            old_kid = parts(old_token)[0]["kid"]
            assert (await auth.authenticate(old_token)).issuer == realm.issuer

            realm_id = kc.get_realm(name)["id"]
            kc.create_component(
                {
                    "name": "rsa-rotated",
                    "providerId": "rsa-generated",
                    "providerType": "org.keycloak.keys.KeyProvider",
                    "parentId": realm_id,
                    "config": {"priority": ["200"], "keySize": ["2048"], "algorithm": ["RS256"]},
                }
            )
            new_token = access_token("author", realm=name)
            new_kid = parts(new_token)[0]["kid"]
            assert new_kid != old_kid
            clock.offset += 6  # past the cooldown: the unknown kid triggers a refetch
            assert (await auth.authenticate(new_token)).username == "author"
            assert (await auth.authenticate(old_token)).username == "author"  # both published

            old = next(
                c
                for c in kc.get_components({"type": "org.keycloak.keys.KeyProvider"})
                if c["providerId"] == "rsa-generated" and c["name"] != "rsa-rotated"
            )
            old["config"]["enabled"] = ["false"]
            kc.update_component(old["id"], old)
            await auth.authenticate(old_token)  # still inside the cache lifetime
            clock.offset += 61  # past the ttl: keys refetched, the old kid is gone
            with pytest.raises(InvalidToken) as info:
                await auth.authenticate(old_token)
            assert info.value.reason.startswith(f"unknown signing key: kid '{old_kid}'")
            assert (await auth.authenticate(new_token)).username == "author"
        finally:
            await auth.close()


# -- the realm's client contract ----------------------------------------------------------------


def test_direct_access_grants_only_on_the_test_clients():
    for client_id in ("inflow-extension", "inflow-admin"):
        resp = requests.post(
            f"{ISSUER}/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": client_id,
                "username": "learner",
                "password": "learner",
            },
            timeout=10,
        )
        assert resp.status_code in (400, 401), client_id
        assert resp.json()["error"] in ("unauthorized_client", "invalid_client"), client_id


def auth_request(client_id: str, redirect_uri: str, pkce: bool = True) -> requests.Response:
    params = {
        "client_id": client_id,
        "response_type": "code",
        "scope": "openid",
        "redirect_uri": redirect_uri,
        "state": "s",
    }
    if pkce:
        params.update(code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        params.update(code_challenge_method="S256")
    return requests.get(
        f"{ISSUER}/protocol/openid-connect/auth", params=params, allow_redirects=False, timeout=10
    )


def test_extension_client_needs_pkce_and_its_exact_redirect():
    redirect = f"https://{EXTENSION_ID}.chromiumapp.org/"
    assert auth_request("inflow-extension", redirect).status_code == 200  # the login page
    resp = auth_request("inflow-extension", redirect, pkce=False)
    assert resp.status_code == 302
    assert "error=invalid_request" in resp.headers["Location"]
    assert "code_challenge" in resp.headers["Location"]
    wrong = f"https://{EXTENSION_ID}.chromiumapp.org/elsewhere"
    assert auth_request("inflow-extension", wrong).status_code == 400


@pytest.mark.parametrize(
    ("redirect", "status"),
    [
        ("http://127.0.0.1:8080/admin/callback", 200),
        ("http://127.0.0.1:54321/admin/callback", 200),  # loopback: any port (RFC 8252)
        ("http://localhost:8080/admin/callback", 200),
        ("http://localhost:54321/admin/callback", 400),
        ("http://127.0.0.1:54321/elsewhere", 400),
        ("https://evil.example/admin/callback", 400),
        # the learner web app signs in through the same client (docs/learn.md)
        ("http://127.0.0.1:8080/learn/callback", 200),
        ("http://127.0.0.1:54321/learn/callback", 200),
        ("http://localhost:8080/learn/callback", 200),
        ("http://localhost:54321/learn/callback", 400),
        ("https://evil.example/learn/callback", 400),
    ],
)
def test_admin_client_redirects(redirect, status):
    assert auth_request("inflow-admin", redirect).status_code == status


def test_docs_sso_md_describes_the_realm_as_it_is():
    """docs/sso.md listed only the console's /admin callbacks: whoever set up a production realm
    from it left out /learn/callback and the learner web app's sign-in failed with Keycloak's
    "Invalid parameter: redirect_uri". Every redirect URI of inflow-admin, every realm role and
    each demo user's roles and groups as the realm file has them are in the doc."""
    doc = (ROOT / "docs" / "sso.md").read_text(encoding="utf-8")
    realm = json.loads((ROOT / "auth" / "realm-inflow.json").read_text(encoding="utf-8"))
    (admin,) = [c for c in realm["clients"] if c["clientId"] == "inflow-admin"]
    for uri in admin["redirectUris"]:
        assert f"`{uri}`" in doc, uri
    for role in realm["roles"]["realm"]:
        assert f"`{role['name']}`" in doc, role["name"]
    rows = {line.split("|")[1].strip(): line for line in doc.splitlines() if line.startswith("| `")}
    for user in realm["users"]:
        if user["username"].startswith("service-account-"):
            continue
        cells = [c.strip() for c in rows[f"`{user['username']}`"].split("|")]
        assert set(cells[3].split(", ")) == set(user["realmRoles"]), user["username"]
        assert set(cells[4].split(", ")) == {g.strip("/") for g in user["groups"]}, user["username"]


def test_refresh_tokens_rotate_and_cannot_be_reused():
    client = openid()
    tokens = password_tokens("learner")
    refreshed = client.refresh_token(tokens["refresh_token"])
    assert refreshed["access_token"] != tokens["access_token"]
    with pytest.raises(KeycloakError, match="invalid_grant"):
        client.refresh_token(tokens["refresh_token"])


def test_access_token_lifespan_helper_shortens_one_client():
    with access_token_lifespan(10, client_id=TEST_CLIENT):
        claims = parts(access_token("learner"))[1]
        assert claims["exp"] - claims["iat"] == 10
    claims = parts(access_token("learner"))[1]
    assert claims["exp"] - claims["iat"] == 300
