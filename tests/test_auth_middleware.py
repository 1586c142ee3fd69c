"""The auth middleware and decorators on a tiny aiohttp app built here."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from server import keys
from server.app import authenticator_ctx
from server.security import auth_middleware, public, requires
from server.settings import AuthSettings, Settings
from tests.keycloak import TokenForge, access_token, auth_settings, service_tokens


async def who(request: web.Request) -> web.Response:
    identity = request[keys.IDENTITY]
    return web.json_response({"user": identity.username if identity else None})


@public
async def open_handler(request: web.Request) -> web.Response:
    return await who(request)


async def signed_in_handler(request: web.Request) -> web.Response:
    return await who(request)


@requires("author")
async def author_handler(request: web.Request) -> web.Response:
    return await who(request)


@requires("api-write", "reviewer")
async def write_handler(request: web.Request) -> web.Response:
    return await who(request)


@requires("author")
class AuthorView(web.View):
    async def get(self) -> web.Response:
        return await who(self.request)


class UnmarkedView(web.View):
    async def get(self) -> web.Response:
        return await who(self.request)


def build_app(auth: AuthSettings) -> web.Application:
    app = web.Application(middlewares=[auth_middleware])
    app[keys.SETTINGS] = Settings(auth=auth)
    app.cleanup_ctx.append(authenticator_ctx)
    app.router.add_get("/api/v1/open", open_handler)
    app.router.add_get("/api/v1/me", signed_in_handler)
    app.router.add_get("/api/v1/author", author_handler)
    app.router.add_get("/api/v1/write", write_handler)
    app.router.add_view("/api/v1/author-view", AuthorView)
    app.router.add_view("/api/v1/unmarked-view", UnmarkedView)
    app.router.add_get("/api/v1/openapi.json", signed_in_handler)  # unmarked, public by path
    app.router.add_get("/healthz", signed_in_handler)  # outside /api/: passes through
    return app


@pytest.fixture(scope="module")
def forge() -> TokenForge:
    return TokenForge()


@pytest.fixture
async def client(aiohttp_client: Any, forge: TokenForge, tmp_path: Any) -> Any:
    return await aiohttp_client(build_app(forge.auth_settings(tmp_path)))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_no_token_is_401_with_a_bare_challenge(client):
    resp = await client.get("/api/v1/me")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="inflow"'
    assert resp.content_type == "application/problem+json"
    body = await resp.json(content_type=None)
    assert body["type"] == "https://inflow.example/problems/unauthorized" and body["status"] == 401
    assert body["title"] == "Unauthorized" and "bearer token" in body["detail"]


async def test_invalid_token_is_401_with_the_reason(client, forge):
    expired = forge.token(now=1_000_000_000)
    resp = await client.get("/api/v1/me", headers=bearer(expired))
    assert resp.status == 401
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="inflow", error="invalid_token", error_description=')
    assert "token expired" in challenge
    body = await resp.json(content_type=None)
    assert body["detail"].startswith("token expired")


async def test_reason_with_quotes_stays_a_valid_header(client, forge):
    token = forge.sign(forge.claims(iss='evil" , error="none'))
    resp = await client.get("/api/v1/me", headers=bearer(token))
    assert resp.status == 401
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.count('"') == 6  # realm, error, error_description: nothing injected


async def test_malformed_authorization_header(client):
    resp = await client.get("/api/v1/me", headers={"Authorization": "Bearer"})
    assert resp.status == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    resp = await client.get("/api/v1/me", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="inflow"'


async def test_signed_in_with_a_role_passes(client, forge):
    resp = await client.get("/api/v1/me", headers=bearer(forge.token("learner")))
    assert resp.status == 200
    assert await resp.json() == {"user": "learner"}


async def test_signed_in_without_any_inflow_role_is_403(client, forge):
    token = forge.token("nobody", roles=("offline_access",))
    resp = await client.get("/api/v1/me", headers=bearer(token))
    assert resp.status == 403
    body = await resp.json(content_type=None)
    assert "learner" in body["detail"] and "author" in body["detail"]


async def test_missing_role_is_403_naming_it(client, forge):
    resp = await client.get("/api/v1/author", headers=bearer(forge.token("learner")))
    assert resp.status == 403
    assert resp.content_type == "application/problem+json"
    body = await resp.json(content_type=None)
    assert body["status"] == 403 and body["title"] == "Forbidden"
    assert body["detail"] == "this needs the role 'author'"
    assert body["required_roles"] == ["author"]
    assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]


async def test_role_present_passes_and_admin_always_passes(client, forge):
    author = forge.token("author", roles=("learner", "author"))
    assert (await client.get("/api/v1/author", headers=bearer(author))).status == 200
    admin = forge.token("admin", roles=("admin",))
    for path in ("/api/v1/author", "/api/v1/write", "/api/v1/me", "/api/v1/author-view"):
        assert (await client.get(path, headers=bearer(admin))).status == 200, path


async def test_any_of_several_roles_and_client_roles(client, forge):
    machine = forge.token("service-account-inflow-cli", roles=(), client_roles=("api-write",))
    assert (await client.get("/api/v1/write", headers=bearer(machine))).status == 200
    assert (await client.get("/api/v1/me", headers=bearer(machine))).status == 200
    resp = await client.get("/api/v1/write", headers=bearer(forge.token("learner")))
    assert (await resp.json(content_type=None))["detail"] == (
        "this needs the role 'api-write' or 'reviewer'"
    )


async def test_public_needs_no_token_but_identifies_a_valid_one(client, forge):
    assert await (await client.get("/api/v1/open")).json() == {"user": None}
    resp = await client.get("/api/v1/open", headers=bearer(forge.token("author")))
    assert await resp.json() == {"user": "author"}
    resp = await client.get("/api/v1/open", headers=bearer("garbage"))
    assert resp.status == 200 and await resp.json() == {"user": None}


async def test_class_based_views(client, forge):
    learner = bearer(forge.token("learner"))
    assert (await client.get("/api/v1/author-view", headers=learner)).status == 403
    assert (await client.get("/api/v1/unmarked-view")).status == 401
    assert (await client.get("/api/v1/unmarked-view", headers=learner)).status == 200


async def test_public_paths_and_paths_outside_the_api(client):
    assert (await client.get("/api/v1/openapi.json")).status == 200
    assert (await client.get("/healthz")).status == 200


async def test_preflight_and_unknown_routes_pass_through(client):
    resp = await client.options("/api/v1/me")
    assert resp.status == 405  # no CORS handler in this tiny app; the point: not 401
    assert (await client.get("/api/v1/nothing-here")).status == 404


async def test_keys_unavailable_is_503(aiohttp_client, forge):
    auth = AuthSettings(
        server_url="http://127.0.0.1:9", issuer=forge.issuer, jwks_cooldown_seconds=0
    )
    client = await aiohttp_client(build_app(auth))
    resp = await client.get("/api/v1/me", headers=bearer(forge.token()))
    assert resp.status == 503
    body = await resp.json(content_type=None)
    assert body["detail"].startswith("authentication is unavailable: no signing keys yet")


@pytest.mark.keycloak
async def test_real_keycloak_tokens_through_the_middleware(aiohttp_client, keycloak):
    client = await aiohttp_client(build_app(auth_settings()))
    learner = bearer(access_token("learner"))
    author = bearer(access_token("author"))
    assert (await client.get("/api/v1/me")).status == 401
    assert (await client.get("/api/v1/me", headers=learner)).status == 200
    resp = await client.get("/api/v1/author", headers=learner)
    assert resp.status == 403
    assert (await resp.json(content_type=None))["required_roles"] == ["author"]
    resp = await client.get("/api/v1/author", headers=author)
    assert resp.status == 200 and await resp.json() == {"user": "author"}
    machine = bearer(service_tokens()["access_token"])
    assert (await client.get("/api/v1/write", headers=machine)).status == 200
