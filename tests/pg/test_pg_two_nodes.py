"""Two Inflow nodes (two apps, each with its own data folder and index) on one PostgreSQL,
writing at the same time: nothing is lost, a duplicate is a 409 on whichever node loses, two
edits from the same version give one 200 and one 412, and every write moves the shared
content_version exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.peer.models import Tip, TipReport
from server.peer.store import PeerConflict
from server.settings import Settings
from server.storage import Storage
from tests.tokens import TokenMaker

A = "/api/v1/admin"


@pytest.fixture
def author(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="author-1", roles=("learner", "author"), groups=("people",))


@pytest.fixture
async def nodes(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Any
) -> tuple[TestClient, TestClient]:
    """Node one imports the demo content at start-up; node two finds it there."""
    one = await aiohttp_client(create_app(make_settings(data_dir=tmp_path / "node-1")))
    two = await aiohttp_client(
        create_app(make_settings(data_dir=tmp_path / "node-2", content_dir=None))
    )
    return one, two


def _storage(client: TestClient) -> Storage:
    return client.app[keys.LIBRARY].storage


def _aid(aid_id: str) -> dict[str, Any]:
    return {"id": aid_id, "title": f"Aid {aid_id}", "summary": "s", "body": "b", "apps": ["hr"]}


async def test_concurrent_creates_on_two_nodes_lose_nothing(
    nodes: tuple[TestClient, TestClient], author: dict[str, str]
) -> None:
    """Before PostgreSQL each node serialised writes in its own thread only: two nodes writing at
    once must still keep every aid, and count each write once in content_version (the index of
    every node compares itself with it)."""
    one, two = nodes
    before = await _storage(one).content_version()
    assert before == await _storage(two).content_version() > 0
    n = 12
    resps = await asyncio.gather(
        *(one.post(f"{A}/aids", json=_aid(f"one-{i}"), headers=author) for i in range(n)),
        *(two.post(f"{A}/aids", json=_aid(f"two-{i}"), headers=author) for i in range(n)),
    )
    assert [r.status for r in resps] == [201] * (2 * n)
    for client in nodes:
        stored = {a.id for a in await _storage(client).all_aid_metas()}
        assert {f"{node}-{i}" for node in ("one", "two") for i in range(n)} <= stored
        assert await _storage(client).content_version() == before + 2 * n
    # each node's own writes reached its own search index
    resp = await two.get(f"{A}/aids/two-3", headers=author)
    assert resp.status == 200


async def test_the_same_id_on_two_nodes_at_once_is_one_201_and_one_409(
    nodes: tuple[TestClient, TestClient], author: dict[str, str]
) -> None:
    one, two = nodes
    for i in range(5):
        first, second = await asyncio.gather(
            one.post(f"{A}/aids", json=_aid(f"same-{i}"), headers=author),
            two.post(f"{A}/aids", json=_aid(f"same-{i}"), headers=author),
        )
        assert sorted([first.status, second.status]) == [201, 409], i
        loser = first if first.status == 409 else second
        assert loser.content_type == "application/problem+json"


async def test_two_edits_from_the_same_version_on_two_nodes_one_wins(
    nodes: tuple[TestClient, TestClient], author: dict[str, str]
) -> None:
    """If-Match across nodes: the check runs inside the write transaction, which holds the
    content store's lock, so the second edit sees the first's version and answers 412."""
    one, two = nodes
    resp = await one.post(f"{A}/aids", json=_aid("contested"), headers=author)
    assert resp.status == 201
    etag = resp.headers["ETag"]
    url = f"{A}/aids/contested"
    for round_ in range(4):
        first, second = await asyncio.gather(
            one.patch(url, json={"summary": f"one {round_}"}, headers={**author, "If-Match": etag}),
            two.patch(url, json={"summary": f"two {round_}"}, headers={**author, "If-Match": etag}),
        )
        assert sorted([first.status, second.status]) == [200, 412], round_
        winner = first if first.status == 200 else second
        etag = winner.headers["ETag"]
    stored = await _storage(two).get_aid("contested")
    assert stored.version == 5
    versions = await _storage(one).call(_storage(one).aid_versions_sync, "contested")
    assert [v["version"] for v in versions] == [5, 4, 3, 2, 1]


async def test_peer_writes_from_two_nodes(nodes: tuple[TestClient, TestClient]) -> None:
    """PeerStore on both nodes: tips written at once are all kept, and one person reporting the
    same tip on both nodes at once is stored once (the other gets the domain 409)."""
    one, two = nodes
    p1, p2 = one.app[keys.PEER], two.app[keys.PEER]
    tips = await asyncio.gather(
        *(p.add(Tip(app_id="crm", body=f"tip {i}")) for i in range(8) for p in (p1, p2))
    )
    assert len({t.id for t in tips}) == 16
    assert await p2.count(Tip) == await p1.count(Tip) >= 16
    results = await asyncio.gather(
        p1.add(TipReport(tip_id=tips[0].id, reporter_key="k1")),
        p2.add(TipReport(tip_id=tips[0].id, reporter_key="k1")),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == sorted(["TipReport", "PeerConflict"])
    assert any(isinstance(r, PeerConflict) for r in results)
    assert await p1.count(TipReport, tip_id=tips[0].id) == 1
