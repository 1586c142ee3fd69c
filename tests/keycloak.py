"""Helpers for tests that need the real Keycloak (auth/keycloak.sh, realm files in auth/).

    from tests.keycloak import keycloak, password_tokens, access_token, service_tokens

- `keycloak` (session fixture): starts Keycloak with `auth/keycloak.sh start` when the discovery
  document does not answer, so plain `pytest` works; returns a `KeycloakInfo`.
- `password_tokens(user)`: the token response (access, refresh, id) for a demo user, through the
  dev-only `inflow-test` client (password grant); `access_token(user)` just the access token.
- `service_tokens()`: client-credentials tokens of the `inflow-cli` service account.
- `admin()`: a python-keycloak `KeycloakAdmin` logged in as the bootstrap admin (admin/admin).
- `access_token_lifespan(seconds)`: temporarily shorten the access-token lifespan of one client
  (default `inflow-extension`) through the admin API, e.g. to test silent refresh.
- `temporary_realm(name)`: a throw-away copy of the inflow realm, for tests that change keys.
- `auth_settings(**changes)`: `AuthSettings` pointing at this Keycloak.
- `TokenForge`: Keycloak-shaped tokens signed with a local key + a JWKS file for `jwks_file`, for
  tests that need identities but not Keycloak.

Note on the name: pytest may put `tests/` itself on sys.path (rootdir-less "prepend" import mode),
where this file would shadow the python-keycloak package, also named `keycloak`. `_library()`
imports the real package with that folder hidden, so both work either way.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import jwt.algorithms
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from server.settings import AuthSettings

ROOT = Path(__file__).resolve().parent.parent
KEYCLOAK_SH = ROOT / "auth" / "keycloak.sh"
REALM_FILE = ROOT / "auth" / "realm-inflow.json"
KEYCLOAK_URL = os.environ.get("INFLOW_TEST_KEYCLOAK_URL", "http://127.0.0.1:8081")
REALM = "inflow"
OTHER_REALM = "other"
TEST_CLIENT = "inflow-test"  # public, password grant; dev realm only
NOAUD_CLIENT = "inflow-test-noaud"  # like inflow-test, but aud is only "account"
CLI_CLIENT = "inflow-cli"
CLI_SECRET = "inflow-cli-dev-secret"
ADMIN_USER = "admin"  # bootstrap admin of the master realm (KC_BOOTSTRAP_ADMIN_*)
ADMIN_PASSWORD = "admin"


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    roles: frozenset[str]
    groups: frozenset[str]


DEMO_USERS = {
    u.username: u
    for u in (
        DemoUser("learner", "learner", frozenset({"learner"}), frozenset({"sales"})),
        DemoUser("author", "author", frozenset({"learner", "author"}), frozenset({"people"})),
        DemoUser(
            "admin",
            "admin",
            frozenset({"learner", "author", "admin", "reviewer"}),
            frozenset({"managers"}),
        ),
        DemoUser(
            "manager",
            "manager",
            frozenset({"learner", "manager"}),
            frozenset({"finance", "managers"}),
        ),
    )
}
CLI_ROLES = frozenset({"author", "api-write"})


def _library() -> ModuleType:
    """The python-keycloak package, even when this file could shadow it on sys.path."""
    here = Path(__file__).resolve().parent
    cached = sys.modules.get("keycloak")
    if cached is not None:
        origin = Path(getattr(cached, "__file__", None) or "").resolve()
        if origin.parent != here:
            return cached
        del sys.modules["keycloak"]
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != here]
    try:
        return importlib.import_module("keycloak")
    finally:
        sys.path[:] = saved


_kc = _library()
KeycloakAdmin = _kc.KeycloakAdmin
KeycloakOpenID = _kc.KeycloakOpenID
KeycloakError = _kc.exceptions.KeycloakError


@dataclass(frozen=True)
class KeycloakInfo:
    url: str
    realm: str

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{self.realm}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"


def discovery_url(realm: str = REALM, url: str = KEYCLOAK_URL) -> str:
    return f"{url}/realms/{realm}/.well-known/openid-configuration"


def keycloak_answers(timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(discovery_url(), timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def ensure_keycloak() -> None:
    """Start the dev Keycloak unless it answers already (first start takes about a minute)."""
    if keycloak_answers():
        return
    if KEYCLOAK_URL != "http://127.0.0.1:8081":
        pytest.fail(f"Keycloak at {KEYCLOAK_URL} does not answer (INFLOW_TEST_KEYCLOAK_URL)")
    result = subprocess.run(
        [str(KEYCLOAK_SH), "start"], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0 or not keycloak_answers():
        pytest.fail(
            f"auth/keycloak.sh start failed (exit {result.returncode}):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )


@pytest.fixture(scope="session")
def keycloak() -> KeycloakInfo:
    """The real Keycloak, started if needed. Left running at the end (others use it)."""
    ensure_keycloak()
    return KeycloakInfo(KEYCLOAK_URL, REALM)


def openid(client_id: str = TEST_CLIENT, *, realm: str = REALM, secret: str | None = None) -> Any:
    return KeycloakOpenID(
        server_url=KEYCLOAK_URL, realm_name=realm, client_id=client_id, client_secret_key=secret
    )


def password_tokens(
    username: str,
    password: str | None = None,
    *,
    client_id: str = TEST_CLIENT,
    realm: str = REALM,
) -> dict[str, Any]:
    """Token response (access_token, refresh_token, id_token, ...) for a user: password grant."""
    if password is None:
        password = DEMO_USERS[username].password if username in DEMO_USERS else username
    tokens: dict[str, Any] = openid(client_id, realm=realm).token(
        username, password, scope="openid"
    )
    return tokens


def access_token(username: str, **kwargs: Any) -> str:
    return str(password_tokens(username, **kwargs)["access_token"])


def service_tokens(realm: str = REALM) -> dict[str, Any]:
    """Client-credentials tokens of the inflow-cli service account (roles author + api-write)."""
    tokens: dict[str, Any] = openid(CLI_CLIENT, realm=realm, secret=CLI_SECRET).token(
        grant_type="client_credentials"
    )
    return tokens


def admin(realm: str = REALM) -> Any:
    """KeycloakAdmin acting on `realm`, logged in as the bootstrap admin of the master realm."""
    return KeycloakAdmin(
        server_url=KEYCLOAK_URL,
        username=ADMIN_USER,
        password=ADMIN_PASSWORD,
        realm_name=realm,
        user_realm_name="master",
    )


@contextmanager
def access_token_lifespan(seconds: int, client_id: str = "inflow-extension") -> Iterator[None]:
    """Give one client's access tokens a short life (e.g. 10 s) for the duration of a test.

    Uses the client attribute `access.token.lifespan` (overrides the realm's 300 s), so the realm,
    its issuer and other clients stay as they are; restored afterwards.
    """
    kc = admin()
    uuid = kc.get_client_id(client_id)
    client = kc.get_client(uuid)
    attributes = dict(client.get("attributes") or {})
    before = attributes.get("access.token.lifespan")
    kc.update_client(uuid, {"attributes": {**attributes, "access.token.lifespan": str(seconds)}})
    try:
        yield
    finally:
        restored = dict(attributes)
        restored["access.token.lifespan"] = before if before is not None else ""
        kc.update_client(uuid, {"attributes": restored})


def realm_copy(name: str) -> dict[str, Any]:
    """The inflow realm file under another name (no fixed ids: Keycloak assigns its own)."""
    realm: dict[str, Any] = copy.deepcopy(json.loads(REALM_FILE.read_text(encoding="utf-8")))
    realm["realm"] = name
    realm["displayName"] = f"{name} (temporary test realm)"
    return realm


@contextmanager
def temporary_realm(name: str) -> Iterator[KeycloakInfo]:
    """A fresh copy of the inflow realm, deleted afterwards (for tests that rotate keys)."""
    kc = admin("master")
    with suppress(KeycloakError):
        kc.delete_realm(name)  # left over from an interrupted run
    kc.create_realm(realm_copy(name))
    try:
        yield KeycloakInfo(KEYCLOAK_URL, name)
    finally:
        kc.delete_realm(name)


def auth_settings(realm: str = REALM, **changes: Any) -> AuthSettings:
    """AuthSettings for the test Keycloak (accepts the inflow-test client's tokens)."""
    base = AuthSettings(server_url=KEYCLOAK_URL, realm=realm, extra_client_ids=(TEST_CLIENT,))
    return dataclasses.replace(base, **changes)


class TokenForge:
    """Keycloak-shaped access tokens signed with a local RSA key, for tests without Keycloak.

    forge = TokenForge()
    settings = forge.auth_settings(tmp_path)        # jwks_file + issuer of the forge
    token = forge.token("author", roles={"learner", "author"}, groups={"people"})
    """

    def __init__(
        self, issuer: str = "https://sso.test/realms/inflow", kid: str = "forge-key"
    ) -> None:
        self.issuer = issuer
        self.kid = kid
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        self.jwks: dict[str, Any] = {"keys": [{**jwk, "kid": kid, "alg": "RS256", "use": "sig"}]}

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwks), encoding="utf-8")
        return path

    def auth_settings(self, tmp_path: Path, **changes: Any) -> AuthSettings:
        jwks_file = self.write_jwks(tmp_path / "forge-jwks.json")
        base = AuthSettings(issuer=self.issuer, jwks_file=jwks_file)
        return dataclasses.replace(base, **changes)

    def claims(
        self,
        username: str = "learner",
        *,
        roles: Iterable[str] = ("learner",),
        groups: Iterable[str] = (),
        client_roles: Iterable[str] = (),
        now: float | None = None,
        lifetime: int = 300,
        **extra: Any,
    ) -> dict[str, Any]:
        now = time.time() if now is None else now
        claims: dict[str, Any] = {
            "exp": int(now) + lifetime,
            "iat": int(now),
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": ["inflow-api", "account"],
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.issuer}/{username}")),
            "typ": "Bearer",
            "azp": TEST_CLIENT,
            "realm_access": {"roles": sorted(roles)},
            "groups": sorted(groups),
            "preferred_username": username,
        }
        if client_roles:
            claims["resource_access"] = {"inflow-api": {"roles": sorted(client_roles)}}
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(
        self, claims: dict[str, Any], *, kid: str | None = None, key: Any = None, **header: Any
    ) -> str:
        headers = {"kid": kid or self.kid, "typ": "JWT", **header}
        return jwt.encode(claims, key or self.private_key, algorithm="RS256", headers=headers)

    def token(self, username: str = "learner", **kwargs: Any) -> str:
        return self.sign(self.claims(username, **kwargs))
