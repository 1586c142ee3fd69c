"""Tokens signed by a key made in the test run, for unit tests of everything behind the verifier.

Tests that prove the verifier against Keycloak use the real Keycloak (tests/keycloak.py); these
forged-but-valid tokens let the core API tests run with the real verification path and a JWKS file.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "http://127.0.0.1:8081/realms/inflow"


@dataclass
class TokenMaker:
    key: rsa.RSAPrivateKey
    kid: str
    issuer: str = ISSUER

    @classmethod
    def create(cls) -> TokenMaker:
        return cls(
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            f"test-{uuid.uuid4().hex[:8]}",
        )

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return {"keys": [jwk]}

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwks()), encoding="utf-8")
        return path

    def token(
        self,
        sub: str = "user-1",
        roles: tuple[str, ...] = ("learner",),
        groups: tuple[str, ...] = (),
        **extra: Any,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": ["inflow-api", "account"],
            "sub": sub,
            "typ": "Bearer",
            "azp": "inflow-extension",
            "iat": now,
            "exp": now + 300,
            "preferred_username": sub,
            "realm_access": {"roles": list(roles)},
            "groups": list(groups),
        }
        claims.update(extra)
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def auth(self, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**kw)}"}
