"""/readyz tells, check by check, whether the server can do its job."""

from __future__ import annotations

import dataclasses
import socket
from typing import Any

from server import keys
from server.app import create_app
from server.settings import AuthSettings
from tests.tokens import ISSUER, TokenMaker


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens


async def test_ready_with_database_index_and_keys(client: Any) -> None:
    resp = await client.get("/readyz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) >= {"database", "index", "identity"}
    assert all(check["ok"] is True for check in body["checks"].values())
    aids = len(client.server.app[keys.LIBRARY].catalog.aids)
    assert body["checks"]["database"]["detail"] == f"{aids} aids"


async def test_keycloak_down_at_start_up_is_not_ready_and_says_why(
    aiohttp_client: Any, make_settings: Any, tokens: TokenMaker
) -> None:
    port = _closed_port()
    settings = make_settings(
        auth=AuthSettings(
            server_url=f"http://127.0.0.1:{port}", issuer=ISSUER, jwks_cooldown_seconds=0
        )
    )
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/readyz")
    assert resp.status == 503
    body = await resp.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"]["ok"] and body["checks"]["index"]["ok"]
    identity = body["checks"]["identity"]
    assert identity["ok"] is False
    assert f"127.0.0.1:{port}" in identity["detail"]
    # and the API says the same to callers, instead of calling their tokens invalid
    api = await client.get("/api/v1/rules", headers=tokens.auth())
    assert api.status == 503, await api.text()
    assert api.headers["Retry-After"]
    assert "authentication is unavailable" in (await api.json())["detail"]


async def test_database_and_index_disagreeing_is_not_ready_and_says_why(client: Any) -> None:
    """Incident: /readyz compared the index's recorded state with itself, so it said "index ok"
    while `inflow check` reported that the database and the index differ."""
    library = client.server.app[keys.LIBRARY]
    aid = (await library.storage.all_aids())[0]
    changed = dataclasses.replace(aid, title=aid.title + " (edited behind the index's back)")
    await library.storage.import_content([], [changed], "test")  # the database only

    resp = await client.get("/readyz")
    assert resp.status == 503, await resp.text()
    body = await resp.json()
    assert body["status"] == "not ready"
    index = body["checks"]["index"]
    assert index["ok"] is False
    assert "index disagrees with the database" in index["detail"]
    assert (await library.check())["detail"] == index["detail"]  # the same check as the CLI

    await library.reconcile()
    assert (await client.get("/readyz")).status == 200
