from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.settings import AuthSettings, Settings
from tests.tokens import ISSUER, TokenMaker

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "content" / "demo"

pytest_plugins = ["tests.keycloak"]


@pytest.fixture(scope="session")
def tokens() -> TokenMaker:
    return TokenMaker.create()


@pytest.fixture
def make_settings(tmp_path: Path, tokens: TokenMaker) -> Callable[..., Settings]:
    jwks = tokens.write_jwks(tmp_path / "jwks.json")

    def make(**changes: Any) -> Settings:
        auth = AuthSettings(jwks_file=jwks, issuer=ISSUER)
        base = Settings(data_dir=tmp_path / "data", content_dir=DEMO, auth=auth, search_threads=2)
        return base.with_(**changes)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings))


@pytest.fixture
def learner(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="learner-1", roles=("learner",), groups=("sales",))


@pytest.fixture
def manager(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="manager-1", roles=("learner",), groups=("finance", "managers"))


@pytest.fixture
def admin(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="admin-1", roles=("learner", "author", "admin"))
