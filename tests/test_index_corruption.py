"""A damaged search index: detected at open and on the first failing read, reported by /readyz and
`inflow check`, answered with 503 + Retry-After (not 500) meanwhile, and rebuilt from the database.

Incident guarded: with a deleted, truncated or zeroed segment file the server started, /readyz
said ready, every search answered 500, and `inflow check` exited 0.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.library import Library
from server.settings import Settings

CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "deleted": lambda f: f.unlink(),
    "truncated": lambda f: f.write_bytes(f.read_bytes()[: f.stat().st_size // 2]),
    "zeroed": lambda f: f.write_bytes(bytes(f.stat().st_size)),
}


def segment_file(index_dir: Path) -> Path:
    live = index_dir / (index_dir / "CURRENT").read_text().strip()
    return next(live.glob("*.seg"))


async def search(client: TestClient, headers: dict[str, str]) -> Any:
    return await client.get("/api/v1/search", params={"q": "expense"}, headers=headers)


async def assert_healthy(client: TestClient, learner: dict[str, str]) -> None:
    ready = await client.get("/readyz")
    assert ready.status == 200, await ready.text()
    resp = await search(client, learner)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["results"]


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
async def test_corrupt_index_at_start_up_is_rebuilt_before_serving(
    aiohttp_client: Any, settings: Settings, learner: dict[str, str], how: str
) -> None:
    first = await aiohttp_client(create_app(settings))
    damaged = segment_file(settings.index_dir)
    await first.close()
    CORRUPTIONS[how](damaged)

    client = await aiohttp_client(create_app(settings))
    await assert_healthy(client, learner)
    assert segment_file(settings.index_dir).parent != damaged.parent  # a new generation


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
async def test_corrupt_index_while_running_answers_503_reports_and_heals(
    client: TestClient, learner: dict[str, str], settings: Settings, how: str
) -> None:
    library: Library = client.server.app[keys.LIBRARY]
    damaged = segment_file(settings.index_dir)
    CORRUPTIONS[how](damaged)  # before the first search: its searcher opens the files

    async with library._lock:  # a content change in flight holds the rebuild back a moment
        resp = await search(client, learner)
        assert resp.status == 503, await resp.text()
        assert resp.content_type == "application/problem+json"
        assert int(resp.headers["Retry-After"]) > 0
        assert "search index is corrupt" in (await resp.json())["detail"]
        suggest = await client.post(
            "/api/v1/suggest",
            json={"url": "http://127.0.0.1:8080/demo/expenses/", "title": "Expense report"},
            headers=learner,
        )
        assert suggest.status in {200, 503}, await suggest.text()  # rules alone may answer

        ready = await client.get("/readyz")
        assert ready.status == 503
        index = (await ready.json())["checks"]["index"]
        assert index["ok"] is False
        assert index["detail"].startswith("index corrupt")
        assert damaged.name in index["detail"]

    heal = library._heal_task
    assert heal is not None
    await heal
    await assert_healthy(client, learner)
