"""Every node in step (server/follow.py, docs/scale-out.md): two Inflow nodes (two apps, each with
its own data folder and Whoosh index) on one PostgreSQL. What an author changes on node one is
what learners find on node two, within a few seconds at most (here: waited for up to 10 s; the
speed is measured by bench/bench_follow.py), by updating node two's index from the change log,
not by rebuilding it. The library is not the demo's: a made-up brewery's ordering app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.db.cluster_tables import content_changes
from server.db.content_tables import aids as aids_table
from server.db.content_tables import meta
from server.library import Library
from server.settings import Settings
from tests.smtp import SmtpServer
from tests.test_change_log import APP, ORDERS  # the same brewery app
from tests.test_peer_questions import TRIPS, Q, answered, write_library
from tests.test_peer_questions import learner as asker
from tests.test_peer_recommendations import NORTH, panel_recs, recommend, write_content
from tests.tokens import TokenMaker

A = "/api/v1/admin"
DEADLINE = 10.0  # seconds a change may take to show on the other node in these tests
T = TypeVar("T")


@pytest.fixture
def author(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="admin-1", roles=("learner", "author", "admin"))


@pytest.fixture
def learner(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="learner-1", roles=("learner",), groups=("sales",))


@pytest.fixture
async def nodes(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Any
) -> tuple[TestClient, TestClient]:
    """Two nodes on one empty database; node two polls the change log every 0.5 s besides
    listening (the missed-notification test relies on the poll)."""
    one = await aiohttp_client(
        create_app(make_settings(data_dir=tmp_path / "node-1", content_dir=None))
    )
    two = await aiohttp_client(
        create_app(
            make_settings(data_dir=tmp_path / "node-2", content_dir=None, follow_poll_seconds=0.5)
        )
    )
    await _eventually(lambda: _listening(two), lambda ok: ok)
    return one, two


async def _listening(client: TestClient) -> bool:
    return client.app[keys.FOLLOWER].connected


async def _eventually(fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
    """`fetch()` again until `done(value)`, for up to DEADLINE seconds; the last value."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while True:
        value = await fetch()
        if done(value) or loop.time() > end:
            return value
        await asyncio.sleep(0.1)


async def _search(client: TestClient, who: dict[str, str], q: str) -> list[str]:
    resp = await client.get("/api/v1/search", params={"q": q}, headers=who)
    assert resp.status == 200, await resp.text()
    return [a["id"] for a in (await resp.json())["results"]]


async def _suggested(client: TestClient, who: dict[str, str], url: str) -> list[str]:
    resp = await client.post("/api/v1/suggest", json={"url": url}, headers=who)
    assert resp.status == 200, await resp.text()
    return [a["id"] for a in (await resp.json())["aids"]]


async def _contexts(client: TestClient, who: dict[str, str], url: str) -> list[str]:
    resp = await client.post("/api/v1/suggest", json={"url": url}, headers=who)
    assert resp.status == 200, await resp.text()
    return [c["id"] for c in (await resp.json())["contexts"]]


async def _create(client: TestClient, who: dict[str, str], aid_id: str, title: str) -> str:
    body = {
        "id": aid_id,
        "title": title,
        "summary": title,
        "body": f"{title}: scan the collar, then book the pickup.",
        "apps": ["orders"],
        "status": "published",
    }
    resp = await client.post(f"{A}/aids", json=body, headers=who)
    assert resp.status == 201, await resp.text()
    return resp.headers["ETag"]


def _library(client: TestClient) -> Library:
    return client.app[keys.LIBRARY]


async def test_an_aid_made_edited_unpublished_and_deleted_on_one_node_follows_on_the_other(
    nodes: tuple[TestClient, TestClient], author: dict[str, str], learner: dict[str, str]
) -> None:
    """Before the change log a node's index and catalog moved only with its own writes: an aid
    published through node one was missing from node two's search and suggest until a restart,
    and an unpublished one stayed there."""
    one, two = nodes
    assert (await one.post(f"{A}/apps", json=APP, headers=author)).status == 201
    etag = await _create(one, author, "keg-return", "Return an empty keg")
    resp = await one.get(f"{A}/contexts/orders-kegs", headers=author)
    resp = await one.put(
        f"{A}/contexts/orders-kegs/aids",
        json={"aids": ["keg-return"]},
        headers={**author, "If-Match": resp.headers["ETag"]},
    )
    assert resp.status == 200, await resp.text()
    rebuilds = _library(two).rebuilds
    generation = _library(two).index.generation
    page = f"{ORDERS}/kegs/42"

    # created: found by search, suggested on its page
    assert await _eventually(lambda: _search(two, learner, "keg"), bool) == ["keg-return"]
    assert await _eventually(lambda: _suggested(two, learner, page), bool) == ["keg-return"]

    # edited: the new words find it on node two
    resp = await one.patch(
        f"{A}/aids/keg-return",
        json={"body": "Rinse the keg with hot water before the pickup."},
        headers={**author, "If-Match": etag},
    )
    assert resp.status == 200, await resp.text()
    etag = resp.headers["ETag"]
    assert await _eventually(lambda: _search(two, learner, "rinse"), bool) == ["keg-return"]

    # unpublished: gone for learners on node two
    resp = await one.post(
        f"{A}/aids/keg-return/transitions",
        json={"to": "draft"},
        headers={**author, "If-Match": etag},
    )
    assert resp.status == 200, await resp.text()
    etag = resp.headers["ETag"]
    assert await _eventually(lambda: _search(two, learner, "rinse"), lambda r: not r) == []
    assert await _eventually(lambda: _suggested(two, learner, page), lambda r: not r) == []

    # deleted: gone from node two's index and catalog
    resp = await one.delete(f"{A}/aids/keg-return", headers={**author, "If-Match": etag})
    assert resp.status in (200, 204), await resp.text()
    resp = await _eventually(
        lambda: two.get(f"{A}/aids/keg-return", headers=author), lambda r: r.status == 404
    )
    assert resp.status == 404
    assert await _search(two, author, "rinse") == []

    # all of it incrementally: node two's index moved on by commits, never rebuilt
    assert _library(two).rebuilds == rebuilds
    assert _library(two).index.generation > generation
    assert (await _library(two).agreement())["ok"]


async def test_an_app_rule_changed_on_one_node_changes_the_other_nodes_resolution(
    nodes: tuple[TestClient, TestClient], author: dict[str, str], learner: dict[str, str]
) -> None:
    one, two = nodes
    assert (await one.post(f"{A}/apps", json=APP, headers=author)).status == 201
    casks = f"{ORDERS}/casks/7"
    assert await _eventually(lambda: _contexts(two, learner, f"{ORDERS}/kegs/1"), bool) == [
        "orders-kegs"
    ]
    assert await _contexts(two, learner, casks) == []
    resp = await one.get(f"{A}/contexts/orders-kegs", headers=author)
    resp = await one.patch(
        f"{A}/contexts/orders-kegs",
        json={"rules": [f"{ORDERS}/casks/**"]},
        headers={**author, "If-Match": resp.headers["ETag"]},
    )
    assert resp.status == 200, await resp.text()
    assert await _eventually(lambda: _contexts(two, learner, casks), bool) == ["orders-kegs"]
    assert await _contexts(two, learner, f"{ORDERS}/kegs/1") == []
    # the rules document the extension caches follows too (its ETag is the content version)
    rules_one = await (await one.get("/api/v1/rules", headers=learner)).json()
    rules_two = await (await two.get("/api/v1/rules", headers=learner)).json()
    assert rules_two["version"] == rules_one["version"]


async def test_a_missed_notification_is_caught_by_the_poll(
    nodes: tuple[TestClient, TestClient], author: dict[str, str], learner: dict[str, str], pg: Any
) -> None:
    """A notification can be lost (it is sent while the listener is reconnecting, or by a writer
    whose NOTIFY never came): the poll still brings the change to node two."""
    one, two = nodes
    assert (await one.post(f"{A}/apps", json=APP, headers=author)).status == 201
    await _create(one, author, "keg-seal", "Seal a keg")
    assert await _eventually(lambda: _search(two, learner, "seal"), bool) == ["keg-seal"]

    # a change committed with its change-log row but no NOTIFY
    engine = sa.create_engine(two.app[keys.SETTINGS].database_url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.update(aids_table)
                .where(aids_table.c.id == "keg-seal")
                .values(body="Wax the bung before the seal.", version=aids_table.c.version + 1)
            )
            value = sa.cast(sa.cast(meta.c.value, sa.Integer) + 1, sa.Text)
            version = conn.execute(
                sa.update(meta)
                .where(meta.c.key == "content_version")
                .values(value=value)
                .returning(meta.c.value)
            ).scalar_one()
            conn.execute(
                sa.insert(content_changes).values(
                    version=int(version),
                    at="2030-01-01T00:00:00Z",
                    upserts=json.dumps(["keg-seal"]),
                )
            )
    finally:
        engine.dispose()
    assert await _eventually(lambda: _search(two, learner, "bung"), bool) == ["keg-seal"]


async def test_a_dropped_listen_connection_reconnects_and_catches_up(
    nodes: tuple[TestClient, TestClient], author: dict[str, str], learner: dict[str, str], pg: Any
) -> None:
    """PostgreSQL ends the listener's session (a restart, a network cut, an idle timeout): the
    node connects again by itself and applies what it missed meanwhile."""
    one, two = nodes
    follower = two.app[keys.FOLLOWER]
    assert (await one.post(f"{A}/apps", json=APP, headers=author)).status == 201
    with pg.admin.connect() as conn:
        ended = conn.execute(sa.select(sa.func.pg_terminate_backend(follower.backend_pid)))
        assert ended.scalar_one() is True
    await _create(one, author, "keg-tap", "Tap a keg")  # NOTIFY while nobody listens on two
    assert await _eventually(lambda: _search(two, learner, "tap"), bool) == ["keg-tap"]
    await _eventually(lambda: _listening(two), lambda ok: ok)
    assert follower.reconnects >= 1
    resp = await two.get("/readyz")
    body = await resp.json()
    assert resp.status == 200, body
    assert body["checks"]["follow"]["ok"] is True


async def test_a_pruned_gap_makes_the_other_node_rebuild_and_still_agree(
    nodes: tuple[TestClient, TestClient], author: dict[str, str], learner: dict[str, str]
) -> None:
    """Node two stopped following (here: its follower stopped) while node one wrote and the
    change log was pruned past node two's version: node two cannot know which aids changed, so
    it rebuilds from the database and then agrees with it."""
    one, two = nodes
    await two.app[keys.FOLLOWER].stop()
    assert (await one.post(f"{A}/apps", json=APP, headers=author)).status == 201
    for i in range(3):
        await _create(one, author, f"hop-{i}", f"Hop variety {i}")
    storage = _library(one).storage
    assert await storage.call(storage.prune_changes_sync, "9999", None) == 4
    rebuilds = _library(two).rebuilds
    await _library(two).catch_up()
    assert _library(two).rebuilds == rebuilds + 1
    assert sorted(await _search(two, learner, "variety")) == ["hop-0", "hop-1", "hop-2"]
    assert (await _library(two).agreement())["ok"]


async def test_an_answer_accepted_on_one_node_is_offered_as_similar_on_the_other(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    tmp_path: Any,
    tokens: TokenMaker,
    smtp_server: SmtpServer,
) -> None:
    """Each node keeps its own index of answered questions: before it followed the database,
    an answer accepted through node one was never offered on node two ("answered before") until
    node two restarted, so learners there asked the same question again."""
    library = write_library(tmp_path / "harbor")
    one = await aiohttp_client(
        create_app(
            make_settings(data_dir=tmp_path / "n1", content_dir=library, **smtp_server.settings())
        )
    )
    two = await aiohttp_client(
        create_app(make_settings(data_dir=tmp_path / "n2", content_dir=None, follow_poll_seconds=1))
    )
    await answered(one, tokens, TRIPS, "How do I log a detour on a trip?", "Add a waypoint.")

    async def similar() -> list[str]:
        resp = await two.post(
            f"{Q}/similar", json={"url": TRIPS, "q": "detour trip"}, headers=asker(tokens, "d-7")
        )
        assert resp.status == 200, await resp.text()
        return [a["question"] for a in (await resp.json())["answers"]]

    assert await _eventually(similar, bool) == ["How do I log a detour on a trip?"]


async def test_a_recommendation_made_on_one_node_shows_on_the_other(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    tmp_path: Any,
    tokens: TokenMaker,
    learner: dict[str, str],
) -> None:
    """Each node keeps every mentor recommendation in memory: another node's were reloaded only
    every 5 minutes, so a learner on node two did not see "Rosa Ortiz recommends this" for that
    long after Rosa recommended the aid through node one."""
    content = write_content(tmp_path / "brightwater")
    one = await aiohttp_client(
        create_app(make_settings(data_dir=tmp_path / "n1", content_dir=content))
    )
    two = await aiohttp_client(
        create_app(make_settings(data_dir=tmp_path / "n2", content_dir=None, follow_poll_seconds=1))
    )
    rosa = tokens.auth(sub="mentor-rosa", roles=("mentor",))
    assert await panel_recs(two, learner) == []
    assert (await recommend(one, rosa, NORTH)).status == 201
    recs = await _eventually(lambda: panel_recs(two, learner), bool)
    assert [(r["aid_id"], r["text"]) for r in recs] == [(NORTH, "Rosa Ortiz recommends this")]
